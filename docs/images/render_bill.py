"""Renders docs/images/bill-payment.png from a sample bill: ``.venv/bin/python docs/images/render_bill.py``.

The same ``render_bill`` the API uses; pypdfium2 (requirements-dev.txt) rasterises the PDF, no system tool needed.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.environ.setdefault("PAYHUB_STAGE", "local")

import pypdfium2  # noqa: E402

from chalicelib.bills import bills  # noqa: E402

BILL = {"object": "bill", "kind": "payment", "id": "bill_pay_7q2kx4m9v3hbn5c8t6wzr1ya",
        "merchant": {"id": "mch_demo", "name": "茶馆 Tea House"}, "payment_id": "pay_7q2kx4m9v3hbn5c8t6wzr1ya",
        "merchant_order_no": "1001", "description": "绿茶 Green tea ×2", "method": "wechat.native",
        "channel": "wechatpay", "channel_transaction_id": "4200001234202603011234567890",
        "amount": 8888, "currency": "CNY", "amount_refunded": 888, "fee": None, "fee_note": bills.FEE_NOTE,
        "status": "succeeded", "created_at": "2026-03-01T02:14:05.120Z", "paid_at": "2026-03-01T02:14:31.502Z",
        "version": 4}

if __name__ == "__main__":
    page = pypdfium2.PdfDocument(bills.render_bill(BILL))[0]
    image = page.render(scale=150 / 72).to_pil()
    image = image.crop((0, 0, image.width, int(image.height * 0.55)))  # the bill; the rest of the page is blank
    image.save(os.path.join(ROOT, "docs", "images", "bill-payment.png"), optimize=True)
