"""Renders docs/images/bill-payment.png from a sample bill: ``.venv/bin/python docs/images/render_bill.py``.

The same ``render_bill`` the API uses; pypdfium2 (requirements-dev.txt) rasterises the PDF, no system tool needed.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
os.environ.setdefault("PAYHUB_STAGE", "local")

import pypdfium2  # noqa: E402
from documents import SAMPLE_BILL  # noqa: E402  (bench/documents.py: the sample the bench renders too)

from chalicelib.bills import bills  # noqa: E402

if __name__ == "__main__":
    page = pypdfium2.PdfDocument(bills.render_bill(dict(SAMPLE_BILL, fee_note=bills.FEE_NOTE)))[0]
    image = page.render(scale=150 / 72).to_pil()
    image = image.crop((0, 0, image.width, int(image.height * 0.55)))  # the bill; the rest of the page is blank
    image.save(os.path.join(ROOT, "docs", "images", "bill-payment.png"), optimize=True)
