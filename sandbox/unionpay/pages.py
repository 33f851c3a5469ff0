"""The few HTML pages a payer's browser sees: the cashier (after the gateway form), the 3-D Secure style
challenge, the auto-submitting return to the merchant's ``frontUrl``, and an error page."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from sandbox.common.httpserver import Response

_STYLE = "body{font-family:sans-serif;max-width:32em;margin:3em auto}button{margin-right:1em;padding:.5em 1em}"


def _page(title: str, body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    html = (f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>")
    return Response(status, html.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8", **(headers or {})})


def _buttons(action: str) -> str:
    return (f"<form method='post' action='{escape(action)}'>"
            "<button name='result' value='success'>支付 / Pay</button>"
            "<button name='result' value='fail'>失败 / Fail</button></form>")


def cashier(order_id: str, amount_fen: int, merchant_name: str, action: str) -> Response:
    body = (f"<p>商户 / Merchant: {escape(merchant_name)}</p><p>订单号 / Order: {escape(order_id)}</p>"
            f"<p>金额 / Amount: ¥{amount_fen // 100}.{amount_fen % 100:02d}</p>{_buttons(action)}")
    return _page("银联在线支付 (sandbox)", body, headers={"X-Sandbox-RespCode": "00", "X-Sandbox-OrderId": order_id})


def challenge(order_id: str, card_masked: str, action: str) -> Response:
    body = (f"<p>订单号 / Order: {escape(order_id)}</p><p>卡号 / Card: {escape(card_masked)}</p>"
            f"<p>Confirm this payment with your bank.</p>{_buttons(action)}")
    return _page("银联安全认证 / UnionPay authentication (sandbox)", body)


def done(message: str) -> Response:
    return _page("银联在线支付 (sandbox)", f"<p>{escape(message)}</p>")


def auto_post(url: str, fields: Mapping[str, str]) -> Response:
    inputs = "".join(f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in fields.items())
    body = (f"<form id='back' method='post' action='{escape(url)}'>{inputs}<button>返回商户 / Back to the shop</button>"
            "</form><script>document.getElementById('back').submit()</script>")
    return _page("返回商户 / Returning", body)


def error(code: str, message: str, status: int = 400) -> Response:
    return _page("交易失败 / Transaction refused", f"<p>[{escape(code)}] {escape(message)}</p>", status,
                 headers={"X-Sandbox-RespCode": code})
