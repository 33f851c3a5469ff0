"""The v3 endpoints the hub calls. Each handler gets the authenticated merchant and returns (status, JSON).

Parsing and field checks live here; business rules (uniqueness, transitions, refund limits) live in state.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sandbox.common.httpserver import Request

from . import bill
from .errors import NoStatementExist, ParamError
from .resources import refund_json, transaction_json
from .state import Merchant, OrderRequest, RefundRequest, SandboxState, TradeType
from .statement_faults import StatementFaultBook

_OUT_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{6,32}$")
_PRODUCTS: dict[str, TradeType] = {"jsapi": "JSAPI", "app": "APP", "h5": "MWEB", "native": "NATIVE"}
BILL_URL_TTL_S = 300


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    payload: Any  # None -> empty body (204)
    signed: bool = True  # bill files are the one unsigned answer on WeChat


@dataclass(frozen=True, slots=True)
class _BillFile:
    mchid: str
    content: bytes
    expires_at_s: float


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParamError(f"{name} must be a JSON object")
    return value


def _text(body: Mapping[str, Any], name: str, *, required: bool = True, max_len: int = 256) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ParamError(f"{name} is required and must be a non-empty string of at most {max_len} characters")
    return value


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ParamError(f"{name} must be an integer number of fen greater than 0")
    return value


def _currency(amount: Mapping[str, Any]) -> str:
    currency = amount.get("currency", "CNY")
    if currency != "CNY":
        raise ParamError("amount.currency must be CNY")
    return "CNY"


def _out_no(body: Mapping[str, Any], name: str) -> str:
    value = _text(body, name, max_len=32)
    if not _OUT_NO.match(value):
        raise ParamError(f"{name} must be 6-32 of [0-9A-Za-z_-|*@]")
    return value


def _same_mchid(merchant: Merchant, value: Any) -> None:
    if value != merchant.mchid:
        raise ParamError("mchid does not match the merchant in the Authorization header")


def _time_expire(body: Mapping[str, Any]) -> datetime | None:
    raw = body.get("time_expire")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ParamError("time_expire must be RFC 3339 with an offset, e.g. 2024-01-01T12:00:00+08:00")
    return moment


class V3Api:
    def __init__(self, state: SandboxState, on_refund_accepted: Callable[[Merchant, str], None],
                 statement_faults: StatementFaultBook | None = None) -> None:
        self._state = state
        self._on_refund_accepted = on_refund_accepted
        self._statement_faults = statement_faults or StatementFaultBook()
        self._bills: dict[str, _BillFile] = {}
        self._bills_lock = threading.Lock()

    # -- orders ------------------------------------------------------------------------------------------

    def create_order(self, request: Request, merchant: Merchant) -> Answer:
        product = request.path.rsplit("/", 1)[-1]
        trade_type = _PRODUCTS[product]
        body = _object(request.json(), "body")
        _same_mchid(merchant, body.get("mchid"))
        appid = _text(body, "appid", max_len=32)
        if appid not in merchant.appids:
            raise ParamError("appid和mch_id不匹配: appid is not bound to this mchid")
        amount = _object(body.get("amount"), "amount")
        payer = body.get("payer") or {}
        openid = payer.get("openid") if isinstance(payer, dict) else None
        if trade_type == "JSAPI" and not (isinstance(openid, str) and openid):
            raise ParamError("payer.openid is required for JSAPI")
        client_ip = self._h5_client_ip(body) if trade_type == "MWEB" else None
        order_request = OrderRequest(
            mchid=merchant.mchid, appid=appid, trade_type=trade_type, out_trade_no=_out_no(body, "out_trade_no"),
            description=_text(body, "description", max_len=127), notify_url=self._notify_url(body, required=True),
            total_fen=_positive_int(amount.get("total"), "amount.total"), currency=_currency(amount),
            attach=_text(body, "attach", required=False, max_len=128),
            payer_openid=openid if isinstance(openid, str) and openid else None, payer_client_ip=client_ip,
            time_expire=_time_expire(body),
        )
        order = self._state.create_order(order_request)
        if trade_type == "MWEB":
            package = secrets.token_hex(5)
            url = f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id={order.prepay_id}&package={package}"
            return Answer(200, {"h5_url": url})
        if trade_type == "NATIVE":
            return Answer(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={order.prepay_id[-10:]}"})
        return Answer(200, {"prepay_id": order.prepay_id})

    @staticmethod
    def _h5_client_ip(body: Mapping[str, Any]) -> str:
        scene = _object(body.get("scene_info"), "scene_info")
        ip = _text(scene, "payer_client_ip", max_len=45)
        h5_info = _object(scene.get("h5_info"), "scene_info.h5_info")
        _text(h5_info, "type", max_len=32)
        return ip

    @staticmethod
    def _notify_url(body: Mapping[str, Any], *, required: bool) -> str:
        url = _text(body, "notify_url", required=required)
        if url and not url.startswith(("https://", "http://")):
            raise ParamError("notify_url must be an absolute http(s) URL")  # plain http allowed: local hubs
        return url

    def query_by_out_trade_no(self, request: Request, merchant: Merchant) -> Answer:
        _same_mchid(merchant, request.query.get("mchid"))
        order = self._state.order(merchant.mchid, request.path_params["out_trade_no"])
        return Answer(200, transaction_json(order))

    def query_by_transaction_id(self, request: Request, merchant: Merchant) -> Answer:
        _same_mchid(merchant, request.query.get("mchid"))
        order = self._state.order_by_transaction_id(merchant.mchid, request.path_params["transaction_id"])
        return Answer(200, transaction_json(order))

    def close(self, request: Request, merchant: Merchant) -> Answer:
        _same_mchid(merchant, _object(request.json(), "body").get("mchid"))
        self._state.close_order(merchant.mchid, request.path_params["out_trade_no"])
        return Answer(204, None)

    # -- refunds -----------------------------------------------------------------------------------------

    def create_refund(self, request: Request, merchant: Merchant) -> Answer:
        body = _object(request.json(), "body")
        amount = _object(body.get("amount"), "amount")
        transaction_id = body.get("transaction_id")
        if not transaction_id and not body.get("out_trade_no"):
            raise ParamError("one of transaction_id or out_trade_no is required")
        refund_request = RefundRequest(
            mchid=merchant.mchid, out_refund_no=_out_no(body, "out_refund_no"),
            out_trade_no=body.get("out_trade_no") or None,
            transaction_id=transaction_id if isinstance(transaction_id, str) and transaction_id else None,
            refund_fen=_positive_int(amount.get("refund"), "amount.refund"),
            total_fen=_positive_int(amount.get("total"), "amount.total"), currency=_currency(amount),
            reason=_text(body, "reason", required=False, max_len=80),
            notify_url=self._notify_url(body, required=False) or None,
        )
        refund, created = self._state.create_refund(refund_request)
        if created:
            self._on_refund_accepted(merchant, refund.request.out_refund_no)
        return Answer(200, refund_json(refund))

    def query_refund(self, request: Request, merchant: Merchant) -> Answer:
        return Answer(200, refund_json(self._state.refund(merchant.mchid, request.path_params["out_refund_no"])))

    # -- bills -------------------------------------------------------------------------------------------

    def trade_bill(self, request: Request, merchant: Merchant) -> Answer:
        try:
            day = date.fromisoformat(request.query.get("bill_date", ""))
        except ValueError as exc:
            raise ParamError("bill_date must be YYYY-MM-DD") from exc
        bill_type = request.query.get("bill_type", "ALL")
        if bill_type not in ("ALL", "SUCCESS", "REFUND"):
            raise ParamError("bill_type must be ALL, SUCCESS or REFUND")
        tar_type = request.query.get("tar_type")
        if tar_type not in (None, "GZIP"):
            raise ParamError("tar_type must be GZIP when given")
        entries = self._state.ledger_for_day(merchant.mchid, day)
        faults = self._statement_faults.for_bill(merchant.mchid, day)
        if not entries and not any(fault.kind in ("extra_row", "corrupt") for fault in faults):
            raise NoStatementExist("该日期无账单: no movements on that day")
        # Sandbox bills are available at once (WeChat's are T+1 after 10:00) so development need not wait a day.
        bill_merchant = bill.BillMerchant(merchant.mchid, min(merchant.appids), merchant.fee_rate_bps)
        rendered = bill.render_trade_bill(entries, cast(bill.BillType, bill_type), self._state.refund_progress,
                                          faults, bill_merchant)
        content = bill.package(rendered, tar_type)
        token = secrets.token_urlsafe(24)
        with self._bills_lock:
            self._bills[token] = _BillFile(merchant.mchid, content, time.monotonic() + BILL_URL_TTL_S)
        host = request.headers.get("host", "127.0.0.1")
        return Answer(200, {"hash_type": "SHA1", "hash_value": bill.sha1_hex(content),
                            "download_url": f"http://{host}/v3/billdownload/file?token={token}"})

    def download_bill(self, request: Request, merchant: Merchant) -> Answer:
        with self._bills_lock:
            found = self._bills.get(request.query.get("token", ""))
        if found is None or found.mchid != merchant.mchid or found.expires_at_s < time.monotonic():
            raise ParamError("download token is unknown or expired")
        return Answer(200, found.content, signed=False)
