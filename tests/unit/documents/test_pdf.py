"""Documents render in the bundled CJK font, read back as the text they were given, and render deterministically."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.documents.fonts import cjk_font_path
from chalicelib.documents.pdf import Document, Fields, Note, Table, money, render
from tests.pdf_text import pdf_pages, pdf_text

CREATED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _document(rows: int = 3) -> Document:
    return Document(
        title="电子账单 Payment bill", subtitle="茶馆 Tea House", created=CREATED, footer="payhub",
        parts=[Fields("付款 Payment", [("商户订单号 Order", "订单-1001"), ("金额 Amount", money(8888, "CNY"))]),
               Table("明细 Lines", ["时间 Time", "金额 Amount"],
                     [[f"2026-03-01 10:{n % 60:02d}", money(n, "CNY")] for n in range(rows)], align=("L", "R")),
               Note("注：手续费以渠道账单为准。")])


def test_the_font_comes_from_a_package_not_the_machine():
    path = cjk_font_path()
    assert "site-packages" in str(path) or "dist-packages" in str(path)
    assert path.stat().st_size > 1_000_000


def test_chinese_and_latin_text_read_back():
    text = pdf_text(render(_document()))
    for expected in ("电子账单 Payment bill", "茶馆 Tea House", "商户订单号 Order", "订单-1001", "88.88 CNY",
                     "注：手续费以渠道账单为准。", "0.02 CNY"):
        assert expected in text


def test_rendering_is_deterministic_and_small():
    first = render(_document())
    assert first == render(_document())
    assert first.startswith(b"%PDF-")
    assert len(first) < 60_000  # only the glyphs used are embedded, not the 5 MB font


def test_a_long_table_flows_onto_more_pages_with_every_row():
    data = render(_document(rows=150))
    assert pdf_pages(data) >= 3
    text = pdf_text(data)
    assert "1.49 CNY" in text and text.count("时间 Time") == pdf_pages(data)  # headings repeated on each page


@pytest.mark.parametrize(("minor", "currency", "shown"), [
    (8888, "CNY", "88.88 CNY"), (5, "CNY", "0.05 CNY"), (-120, "CNY", "-1.20 CNY"), (500, "JPY", "500 JPY"),
    (1234, "KWD", "1.234 KWD"), (None, "CNY", "—"),
])
def test_money_is_shown_in_the_currency_decimals(minor, currency, shown):
    assert money(minor, currency) == shown
