"""Which payment methods the hosted page can drive in a payer's browser, and how each is shown.

WeChat JSAPI is offered only inside WeChat's in-app browser, where it replaces WeChat Native and H5 as "WeChat Pay"
(``checkout/wechat.py``). Methods that need a native app (mini-program and app payments, Alipay app) or a
channel's own script (Stripe card fields, ``stripe.card``) are not offered on the page: the hub's
Content-Security-Policy allows no third-party script. Stripe is offered as ``stripe.checkout`` instead: the
payer is sent to Stripe's own hosted payment page (a Checkout Session) and comes back, like PayPal.
"""

from __future__ import annotations

from chalicelib.domain.errors import HubError, InvalidRequest
from chalicelib.service.routing import choose_account

# method -> how the page shows it before the channel answers ("qr", "redirect", "card"). The channel's answer (the
# attempt's action) decides the screen itself.
PAGE_METHODS: dict[str, str] = {
    "wechat.native": "qr",
    "wechat.h5": "redirect",
    "wechat.jsapi": "jsapi",  # inside WeChat's browser only
    "alipay.qr": "qr",
    "alipay.page": "redirect",
    "alipay.wap": "redirect",
    "unionpay.gateway": "redirect",
    "unionpay.quickpass": "qr",
    "unionpay.card": "card",
    "ecny.wallet": "qr",
    "paypal.wallet": "redirect",
    "stripe.checkout": "redirect",
}


def check_allowed(methods: list[str]) -> None:
    for i, method in enumerate(methods):
        if method not in PAGE_METHODS:
            raise InvalidRequest(f"allowed_methods[{i}]: {method!r} cannot be paid on the hosted page "
                                 f"(page methods: {', '.join(PAGE_METHODS)})", param=f"allowed_methods.{i}")


def offered(allowed: list[str], currency: str, merchant_id: str, *, payer: dict[str, object],
            in_wechat: bool = False) -> list[str]:
    """The allowed methods that routing finds an account for now, in the merchant's order. A method whose channel
    has no usable account (or that routing filters out as unhealthy) is simply not shown. Inside WeChat's browser the
    WeChat methods become one ``wechat.jsapi`` when it can be paid; outside, ``wechat.jsapi`` is not shown."""
    from chalicelib.checkout import wechat

    jsapi = in_wechat and any(m in wechat.WEB_METHODS for m in allowed) and _jsapi_ready(currency, merchant_id, payer)
    found: list[str] = []
    for method in allowed:
        if jsapi and method in wechat.WEB_METHODS:
            if wechat.JSAPI not in found:
                found.append(wechat.JSAPI)
            continue
        if method == wechat.JSAPI:
            continue  # outside WeChat's browser (or without a way to the openid) there is no bridge to pay with
        if method == "wechat.h5" and not payer.get("ip"):
            continue  # WeChat H5 needs the payer's IP, which only the merchant can state
        try:
            choose_account(method, currency, merchant_id)
        except HubError:
            continue
        found.append(method)
    return found


def _jsapi_ready(currency: str, merchant_id: str, payer: dict[str, object]) -> bool:
    from chalicelib.checkout import wechat

    try:
        account = choose_account(wechat.JSAPI, currency, merchant_id)
    except HubError:
        return False
    return wechat.jsapi_ready(account, dict(payer))


def remembered_first(methods: list[str], remembered: str | None) -> list[str]:
    if remembered in methods:
        return [remembered, *(m for m in methods if m != remembered)]
    return methods
