"""The cashier page a payer sees after opening an order (browser redirect, form post, app or QR scan), and the
signed synchronous return to the merchant's ``return_url`` once paid."""

from __future__ import annotations

import html
from urllib.parse import quote, urlencode

from .crypto import AlipayKey, canonical
from .notify import yuan
from .state import Merchant, Order, alipay_time, now_utc


def _page(title: str, body: str) -> bytes:
    return (f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>").encode()


def cashier_page(order: Order) -> bytes:
    action = f"/cashier/{quote(order.app_id, safe='')}/{quote(order.out_trade_no, safe='')}/pay"
    details = (f"<dl><dt>商品</dt><dd>{html.escape(order.terms.subject)}</dd>"
               f"<dt>金额</dt><dd id=\"amount\">¥{yuan(order.terms.total_fen)}</dd>"
               f"<dt>订单号</dt><dd id=\"out_trade_no\">{html.escape(order.out_trade_no)}</dd>"
               f"<dt>状态</dt><dd id=\"trade_status\">{order.status}</dd></dl>")
    if order.status != "WAIT_BUYER_PAY":
        return _page("支付宝收银台 (sandbox)", details)
    buttons = "".join(
        f"<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"result\" value=\"{result}\">"
        f"<button type=\"submit\">{label}</button></form>"
        for result, label in (("success", "确认付款 Pay"), ("fail", "支付失败 Fail")))
    return _page("支付宝收银台 (sandbox)", details + buttons)


def error_page(sub_code: str, message: str) -> bytes:
    return _page("支付宝 - 错误", f"<p id=\"sub_code\">{html.escape(sub_code)}</p><p>{html.escape(message)}</p>")


def done_page(order: Order) -> bytes:
    return _page("支付成功" if order.status == "TRADE_SUCCESS" else "支付未完成",
                 f"<p id=\"trade_status\">{order.status}</p><p>{html.escape(order.out_trade_no)}</p>")


def return_url(merchant: Merchant, order: Order, key: AlipayKey) -> str | None:
    """Where the browser goes after paying: the merchant's return_url with signed trade fields (for display
    only; merchants must rely on the notify or a query, never on this redirect)."""
    if not order.terms.return_url or order.status != "TRADE_SUCCESS":
        return None
    params = {
        "charset": "utf-8", "out_trade_no": order.out_trade_no, "method": f"{order.terms.method}.return",
        "total_amount": yuan(order.terms.total_fen), "trade_no": order.trade_no, "auth_app_id": merchant.app_id,
        "version": "1.0", "app_id": merchant.app_id, "sign_type": merchant.sign_type, "seller_id": merchant.pid,
        "timestamp": alipay_time(now_utc()),
    }
    params["sign"] = key.sign(canonical(params, ("sign", "sign_type")))
    separator = "&" if "?" in order.terms.return_url else "?"
    return order.terms.return_url + separator + urlencode(params)
