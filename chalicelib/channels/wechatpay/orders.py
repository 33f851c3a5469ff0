"""Order placement for each WeChat product: the request body and the client action built from the answer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from chalicelib.channels.base import ClientAction, CreateRequest, CreateResult
from chalicelib.channels.wechatpay.credentials import WeChatCredentials
from chalicelib.channels.wechatpay.signing import (
    MerchantSigner,
    app_pay_sign_message,
    jsapi_pay_sign_message,
)
from chalicelib.domain.errors import ChannelError, InvalidRequest

BEIJING = timezone(timedelta(hours=8))
PRODUCT_BY_METHOD: Mapping[str, str] = {
    "wechat.jsapi": "jsapi",
    "wechat.miniprogram": "jsapi",  # mini-programs use the JSAPI endpoint with the mini-program's appid
    "wechat.native": "native",
    "wechat.h5": "h5",
    "wechat.app": "app",
}


def beijing_rfc3339(moment: datetime) -> str:
    """WeChat wants RFC 3339 in Beijing time; a naive datetime is taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(BEIJING).isoformat(timespec="seconds")


def create_path(method: str) -> str:
    return f"/v3/pay/transactions/{PRODUCT_BY_METHOD[method]}"


def create_body(credentials: WeChatCredentials, request: CreateRequest) -> dict[str, Any]:
    if request.amount.currency != "CNY":
        raise InvalidRequest("WeChat Pay accepts CNY only", param="currency")
    if request.amount.minor <= 0:
        raise InvalidRequest("amount must be positive", param="amount")
    body: dict[str, Any] = {
        "appid": credentials.appid,
        "mchid": credentials.mchid,
        "description": request.description,
        "out_trade_no": request.attempt_id,
        "time_expire": beijing_rfc3339(request.expires_at),
        "notify_url": request.notify_url,
        "amount": {"total": request.amount.minor, "currency": "CNY"},  # CNY minor units are fen
    }
    product = PRODUCT_BY_METHOD[request.method]
    if product == "jsapi":
        if not request.payer.openid:
            raise InvalidRequest("payer.openid is required for JSAPI and mini-program payments", param="payer.openid")
        body["payer"] = {"openid": request.payer.openid}
    elif product == "h5":
        if not request.payer.ip:
            raise InvalidRequest("payer.ip is required for H5 payments", param="payer.ip")
        body["scene_info"] = {"payer_client_ip": request.payer.ip, "h5_info": {"type": "Wap"}}
    return body


def _required(answer: Mapping[str, Any], name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise ChannelError(f"WeChat Pay answer lacks {name}")
    return value


def create_result(
    credentials: WeChatCredentials,
    request: CreateRequest,
    answer: Mapping[str, Any],
    signer: MerchantSigner,
    *,
    timestamp: int,
    nonce: str,
) -> CreateResult:
    product = PRODUCT_BY_METHOD[request.method]
    if product == "native":
        code_url = _required(answer, "code_url")
        return CreateResult(code_url, ClientAction("qr_code", {"code_url": code_url}))
    if product == "h5":
        h5_url = _required(answer, "h5_url")
        url = h5_url + (f"&redirect_url={quote(request.return_url, safe='')}" if request.return_url else "")
        return CreateResult(h5_url, ClientAction("redirect_url", {"url": url}))
    prepay_id = _required(answer, "prepay_id")
    ts = str(timestamp)
    if product == "app":
        sign = signer.sign(app_pay_sign_message(credentials.appid, ts, nonce, prepay_id))
        params = {
            "appid": credentials.appid,
            "partnerid": credentials.mchid,
            "prepayid": prepay_id,
            "package": "Sign=WXPay",
            "noncestr": nonce,
            "timestamp": ts,
            "sign": sign,
        }
        return CreateResult(prepay_id, ClientAction("app_params", params))
    pay_sign = signer.sign(jsapi_pay_sign_message(credentials.appid, ts, nonce, prepay_id))
    jsapi: dict[str, str] = {
        "appId": credentials.appid,
        "timeStamp": ts,
        "nonceStr": nonce,
        "package": f"prepay_id={prepay_id}",
        # Not part of the signed message; WeChat documents "RSA" only (docs/channels/wechatpay.md#client-pay-signs).
        "signType": "RSA",
        "paySign": pay_sign,
    }
    if request.method == "wechat.miniprogram":
        del jsapi["appId"]  # wx.requestPayment takes the appid from the mini-program itself
    return CreateResult(prepay_id, ClientAction("jsapi_params", jsapi))
