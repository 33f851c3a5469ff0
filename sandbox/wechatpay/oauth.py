"""WeChat's web authorisation (网页授权, ``snsapi_base``) and the in-app client's JSAPI payment, as the sandbox plays
them.

* ``GET /connect/oauth2/authorize`` (open.weixin.qq.com): the payer's WeChat approves silently (``snsapi_base``
  never asks) and redirects to ``redirect_uri`` with a one-time ``code`` and the ``state`` it was given.
* ``GET /sns/oauth2/access_token`` (api.weixin.qq.com): the merchant's server trades the code, with the official
  account's AppSecret, for the payer's ``openid`` under that appid. A code works once and for 5 minutes. Errors are
  WeChat's ``{"errcode", "errmsg"}`` with HTTP 200, as WeChat answers them.
* ``POST /_sandbox/jsapi/pay``: what the WeChat client does when a page calls
  ``WeixinJSBridge.invoke('getBrandWCPayRequest', params)``: it checks ``paySign`` (RSA-SHA256 over
  ``appId\\ntimeStamp\\nnonceStr\\npackage\\n`` with the merchant's registered public key) and that the payer is the
  openid the order was placed for, then pays and sends the signed callback. It answers the bridge's ``err_msg``.

Who the payer is: the WeChat user logged in to the client, named by the ``sandbox_wechat_user`` cookie on the
sandbox's host for the authorize step and by ``user`` in the pay action (default ``sandbox-payer``). An openid is
derived per (appid, user), so two official accounts see two different openids for one person, as in WeChat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from sandbox.common.control import ControlError
from sandbox.common.control import json_body as _body
from sandbox.common.httpserver import Request, Response, json_response

from . import auth
from .state import IllegalTransition, Merchant, Order, SandboxState

CODE_TTL_S = 300.0  # WeChat: a code is good for one use within 5 minutes
DEFAULT_USER = "sandbox-payer"
SIGN_OK, SIGN_FAIL, SIGN_CANCEL = ("get_brand_wcpay_request:ok", "get_brand_wcpay_request:fail",
                                   "get_brand_wcpay_request:cancel")


@dataclass(slots=True)
class _Code:
    appid: str
    openid: str
    issued: float
    used: bool = False


def _errcode(errcode: int, errmsg: str) -> Response:
    # WeChat answers its errors with HTTP 200 and this body; the rid suffix is what it appends to every errmsg.
    return json_response(200, {"errcode": errcode, "errmsg": f"{errmsg} rid: {secrets.token_hex(12)}"})


def _page_error(message: str) -> Response:
    # open.weixin.qq.com shows a page, not JSON, when the authorize link itself is wrong.
    return Response(400, message.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})


class OAuthAndJsapi:
    def __init__(self, state: SandboxState, on_paid: Callable[[Merchant, Order], None], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._state = state
        self._on_paid = on_paid
        self._clock = clock
        self._lock = threading.Lock()
        self._app_secrets: dict[str, str] = {}
        self._codes: dict[str, _Code] = {}
        self._openid_key = secrets.token_bytes(32)  # openids differ from one sandbox run to the next

    # -- the official account's AppSecret ------------------------------------------------------------------

    def app_secret(self, appid: str) -> str:
        """The appid's AppSecret, made the first time the appid is registered (WeChat's console shows it)."""
        with self._lock:
            return self._app_secrets.setdefault(appid, secrets.token_hex(16))

    def openid(self, appid: str, user: str) -> str:
        digest = hmac.new(self._openid_key, f"{appid}\n{user}".encode(), hashlib.sha256).digest()
        return "o" + base64.urlsafe_b64encode(digest).decode()[:27]

    # -- open.weixin.qq.com/connect/oauth2/authorize ---------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        q = request.query
        appid, redirect_uri, scope = q.get("appid", ""), q.get("redirect_uri", ""), q.get("scope", "")
        with self._lock:
            known = appid in self._app_secrets
        if not known:
            return _page_error("appid 参数错误 (unknown appid)")
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or not target.netloc:
            return _page_error("redirect_uri 参数错误 (must be an absolute http(s) URL)")
        if q.get("response_type") != "code":
            return _page_error("response_type 参数错误 (must be code)")
        if scope not in ("snsapi_base", "snsapi_userinfo"):
            return _page_error("scope 参数错误 (snsapi_base or snsapi_userinfo)")
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = _Code(appid, self.openid(appid, _user_of(request)), self._clock())
        joiner = "&" if target.query else "?"
        location = f"{redirect_uri}{joiner}code={code}&state={quote(q.get('state', ''), safe='')}"
        return Response(302, b"", {"Location": location, "Cache-Control": "no-store"})

    # -- api.weixin.qq.com/sns/oauth2/access_token -----------------------------------------------------------

    def access_token(self, request: Request) -> Response:
        q = request.query
        appid, secret, code = q.get("appid", ""), q.get("secret", ""), q.get("code", "")
        if q.get("grant_type") != "authorization_code":
            return _errcode(40002, "invalid grant_type")
        with self._lock:
            expected = self._app_secrets.get(appid)
            if expected is None:
                return _errcode(40013, "invalid appid")
            if not hmac.compare_digest(expected.encode(), secret.encode()):
                return _errcode(40125, "invalid appsecret")
            held = self._codes.get(code)
            if held is None or held.appid != appid:
                return _errcode(40029, "invalid code")
            if held.used:
                return _errcode(40163, "code been used")
            if self._clock() - held.issued > CODE_TTL_S:
                return _errcode(42003, "code expired")
            held.used = True
        return json_response(200, {
            "access_token": secrets.token_urlsafe(48), "expires_in": 7200,
            "refresh_token": secrets.token_urlsafe(48), "openid": held.openid, "scope": "snsapi_base",
            "is_snapshotuser": 0,
        })

    # -- the client paying a prepay_id (WeixinJSBridge getBrandWCPayRequest) --------------------------------

    def jsapi_pay(self, request: Request) -> Response:
        body = _body(request)
        fields = {}
        for name in ("appId", "timeStamp", "nonceStr", "package", "signType", "paySign"):
            value = body.get(name)
            if not isinstance(value, str) or not value:
                return _bridge(SIGN_FAIL, f"缺少参数 {name}")
            fields[name] = value
        user = body.get("user") if isinstance(body.get("user"), str) and body.get("user") else DEFAULT_USER
        result = body.get("result", "success")
        if result not in ("success", "fail"):
            raise ControlError(400, "PARAM_ERROR", "result must be success or fail")
        if not fields["package"].startswith("prepay_id="):
            return _bridge(SIGN_FAIL, "package 格式错误 (prepay_id=...)")
        order = self._state.order_by_prepay_id(fields["package"].removeprefix("prepay_id="))
        if order is None:
            return _bridge(SIGN_FAIL, "prepay_id 不存在")
        merchant = self._state.merchant(order.mchid)
        assert merchant is not None
        if fields["appId"] != order.request.appid:
            return _bridge(SIGN_FAIL, "appId 与下单时不一致")
        if fields["signType"] != "RSA" or merchant.sign_type != "RSA":
            return _bridge(SIGN_FAIL, "signType 必须为 RSA")
        message = "".join(f"{fields[n]}\n" for n in ("appId", "timeStamp", "nonceStr", "package")).encode()
        if not auth.verify_merchant_signature("RSA", merchant.merchant_public_key, message, fields["paySign"]):
            return _bridge(SIGN_FAIL, "支付验证签名失败")
        if order.request.payer_openid != self.openid(order.request.appid, user):
            return _bridge(SIGN_FAIL, "当前用户不是下单用户 (the order was placed for another openid)")
        if order.trade_state != "NOTPAY":
            return _bridge(SIGN_FAIL, f"订单状态 {order.trade_state}，不能支付")
        try:
            paid = self._state.settle_payment(order.mchid, order.out_trade_no, result == "success",
                                              order.request.payer_openid)
        except IllegalTransition as exc:
            return _bridge(SIGN_FAIL, str(exc))
        if paid.trade_state != "SUCCESS":
            return _bridge(SIGN_FAIL, "支付失败")
        self._on_paid(merchant, paid)
        return _bridge(SIGN_OK, "")


def _bridge(err_msg: str, err_desc: str) -> Response:
    answer: dict[str, Any] = {"err_msg": err_msg}
    if err_desc:
        answer["err_desc"] = err_desc
    return json_response(200, answer)


def _user_of(request: Request) -> str:
    try:
        jar = SimpleCookie(request.headers.get("cookie", ""))
    except CookieError:
        return DEFAULT_USER
    morsel = jar.get("sandbox_wechat_user")
    return morsel.value if morsel is not None and morsel.value else DEFAULT_USER
