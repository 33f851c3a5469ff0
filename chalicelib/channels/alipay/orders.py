"""Order placement for each Alipay product: the ``biz_content`` and the client action.

``alipay.qr`` is a server call (alipay.trade.precreate answers a ``qr_code``). The page, wap and app products
are never called server-side: the payer's browser or the Alipay app carries our signed parameters to the
gateway, so ``create`` only builds and signs them (docs/channels/alipay.md#products).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from chalicelib.channels.alipay.client import CHARSET
from chalicelib.channels.alipay.states import beijing_time, money_to_yuan
from chalicelib.channels.base import ClientAction, CreateRequest, InstalmentTerms
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.value_class import value_class

SUBJECT_CHARS_MAX = 256
HUABEI_TERMS = frozenset({3, 6, 12})


@value_class
class Product:
    api_method: str
    product_code: str
    server_call: bool  # precreate is called by us; the others are carried to Alipay by the payer


PRODUCTS: Mapping[str, Product] = {
    "alipay.page": Product("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY", server_call=False),
    "alipay.wap": Product("alipay.trade.wap.pay", "QUICK_WAP_WAY", server_call=False),
    "alipay.qr": Product("alipay.trade.precreate", "FACE_TO_FACE_PAYMENT", server_call=True),
    "alipay.app": Product("alipay.trade.app.pay", "QUICK_MSECURITY_PAY", server_call=False),
}


def biz_content(request: CreateRequest) -> dict[str, Any]:
    """``out_trade_no`` is the attempt id; ``time_expire`` makes Alipay refuse payment once the attempt expired,
    which matters for page/wap/app orders Alipay has not seen yet (closing them there is impossible)."""
    if request.amount.currency != "CNY":
        raise InvalidRequest("Alipay accepts CNY only", param="currency")
    if request.amount.minor <= 0:
        raise InvalidRequest("amount must be positive", param="amount")
    subject = request.description.strip()[:SUBJECT_CHARS_MAX]
    if not subject:
        raise InvalidRequest("description is required: it becomes the Alipay subject", param="description")
    product = PRODUCTS[request.method]
    biz: dict[str, Any] = {
        "out_trade_no": request.attempt_id,
        "total_amount": money_to_yuan(request.amount),
        "subject": subject,
        "product_code": product.product_code,
        "time_expire": beijing_time(request.expires_at),
    }
    if request.method == "alipay.wap" and request.return_url:
        biz["quit_url"] = request.return_url  # where the payer lands on leaving the cashier unpaid
    if request.instalments is not None:
        biz["extend_params"] = huabei_params(request.instalments)
    return biz


def huabei_params(terms: InstalmentTerms) -> dict[str, str]:
    """Huabei instalments (花呗分期) inside ``extend_params``: ``hb_fq_num`` 3, 6 or 12 and
    ``hb_fq_seller_percent`` 100 (the seller bears the fee) or 0 (the payer does), both as strings, as Alipay
    documents them; nothing else is accepted (docs/instalments.md#alipay)."""
    if terms.count not in HUABEI_TERMS:
        raise InvalidRequest(f"Huabei takes 3, 6 or 12 instalments, not {terms.count}", param="instalments.count")
    return {"hb_fq_num": str(terms.count), "hb_fq_seller_percent": "100" if terms.seller_pays_fee else "0"}


def qr_action(qr_code: str) -> ClientAction:
    # ``code_url`` is the key every QR action carries (WeChat's name); ``qr_code`` is Alipay's own.
    return ClientAction("qr_code", {"qr_code": qr_code, "code_url": qr_code})


def browser_action(gateway_url: str, params: Mapping[str, str], page_action: str) -> ClientAction:
    if page_action == "form_post":
        return ClientAction("form_post", {"url": f"{gateway_url}?{urlencode({'charset': CHARSET})}", "method": "POST",
                                          "fields": dict(params)})
    return ClientAction("redirect_url", {"url": f"{gateway_url}?{urlencode(params, encoding=CHARSET)}"})


def app_action(params: Mapping[str, str]) -> ClientAction:
    """The order string the Alipay app SDK takes: every signed parameter, URL-encoded, ``sign`` included."""
    return ClientAction("app_params", {"order_string": urlencode(sorted(params.items()), encoding=CHARSET)})
