"""Documents render in the bundled CJK font, read back as the text they were given, and render deterministically."""

from __future__ import annotations

import io
import shutil
import subprocess
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


# -- the hub's own writer, judged by readers it does not share code with: pypdf (text, metadata, objects), PDFium
# (pypdfium2: the pages drawn, where each character lands) and fontTools (the embedded font)

def _pdfium(data: bytes):
    import pypdfium2

    return pypdfium2.PdfDocument(data)


def _boxes(page, text: str) -> list[tuple[float, float, float, float]]:
    """PDFium's box (left, bottom, right, top, in points) of each character of the first ``text`` on ``page``."""
    textpage = page.get_textpage()
    found = textpage.search(text, match_case=True).get_next()
    assert found, f"{text!r} not on the page"
    start, count = found
    return [textpage.get_charbox(i) for i in range(start, start + count) if not text[i - start].isspace()]


def test_every_page_says_its_number_of_the_total():
    data = render(_document(rows=150))
    total = pdf_pages(data)
    from pypdf import PdfReader

    for number, page in enumerate(PdfReader(io.BytesIO(data)).pages, start=1):
        assert f"payhub    {number}/{total}" in page.extract_text(), number


def test_the_table_headings_start_every_page_above_its_rows():
    document = _pdfium(render(_document(rows=150)))
    assert len(document) >= 3
    for number, page in enumerate(document):
        heading = _boxes(page, "时间 Time")
        first_row = _boxes(page, "2026-03-01 10:")  # every data row starts with it
        assert heading[0][1] > first_row[0][3], "the headings are not above the rows"
        if number:
            assert page.get_height() - heading[0][3] < 25 * 72 / 25.4  # at the top of the pages after the first


def test_a_long_cell_wraps_inside_its_column_and_the_row_grows():
    long = "ORDER-2026-000123-A-VERY-LONG-REFERENCE-FROM-THE-SHOP-SYSTEM 订单备注很长很长很长很长很长很长"
    document = Document(title="T", created=CREATED, parts=[Table("Lines", ["No", "Order", "Amount"], [
        ["1", long, "1.00 CNY"], ["2", "short", "2.00 CNY"]], widths=(10, 30, 20), align=("L", "L", "R"))])
    data = render(document)
    text = pdf_text(data)
    assert "ORDER-2026-000123-A-" in text and "很长很长" in text and "2.00 CNY" in text
    page = _pdfium(data)[0]
    content = 180 * 72 / 25.4
    column = (15 * 72 / 25.4 + content * 10 / 60, 15 * 72 / 25.4 + content * 40 / 60)
    first, last = _boxes(page, "ORDER")[0], _boxes(page, "很长很长")[-1]
    assert last[3] < first[1]  # the end of the cell is on a lower line than its start
    for box in _boxes(page, "ORDER-2026-000123") + _boxes(page, "订单备注很长"):
        assert column[0] <= box[0] and box[2] <= column[1]  # every character inside its column
    amount, next_row = _boxes(page, "1.00 CNY"), _boxes(page, "short")
    assert next_row[0][3] < last[1]  # the next row starts below the wrapped cell
    assert abs(amount[-1][2] - (15 * 72 / 25.4 + content - 72 / 25.4)) < 1.5  # right-aligned, 1 mm padding


def test_a_row_taller_than_a_page_continues_on_the_next():
    document = Document(title="T", created=CREATED, parts=[Table("Lines", ["No", "Text"], [
        ["1", " ".join(f"word{n:03d}" for n in range(700))]], widths=(1, 9))])
    data = render(document)
    assert pdf_pages(data) >= 2
    text = pdf_text(data)
    assert all(f"word{n:03d}" in text for n in range(700))


def test_text_the_font_lacks_still_reads_back_and_the_embedded_font_draws_the_rest():
    from fontTools.ttLib import TTFont
    from pypdf import PdfReader

    shown = "茶馆 Tea ÀÁ½ 账单"
    missing = "😀𠀀"  # not in the font: drawn as its .notdef box, copied as themselves (ToUnicode)
    data = render(Document(title=shown, subtitle=missing, created=CREATED, parts=[]))
    text = pdf_text(data)
    assert shown in text and missing in text
    font = PdfReader(io.BytesIO(data)).pages[0]["/Resources"]["/Font"]["/F1"].get_object()
    assert font["/Subtype"] == "/Type0" and font["/Encoding"] == "/Identity-H"
    descendant = font["/DescendantFonts"][0].get_object()
    assert descendant["/Subtype"] == "/CIDFontType2" and str(descendant["/BaseFont"]).endswith("+WenQuanYiMicroHei")
    embedded = TTFont(io.BytesIO(descendant["/FontDescriptor"]["/FontFile2"].get_object().get_data()),
                      checkChecksums=2)
    cmap, glyf = embedded.getBestCmap(), embedded["glyf"]
    for char in set(shown + "1/") - {" "}:  # the footer says 1/1
        assert glyf[cmap[ord(char)]].numberOfContours != 0, char
    assert all(ord(c) not in cmap for c in missing)


def test_the_information_dictionary():
    from pypdf import PdfReader

    document = Document(title="电子账单 Payment bill", created=CREATED, parts=[], subject="bill_pay_1",
                        keywords=("bill", "payhub"))
    meta = PdfReader(io.BytesIO(render(document))).metadata
    assert meta.title == "电子账单 Payment bill" and meta.author == "payhub" and meta.subject == "bill_pay_1"
    assert meta["/Creator"] == "payhub" and meta["/Producer"] == "payhub" and meta["/Keywords"] == "bill payhub"
    assert meta.creation_date == CREATED


def test_pages_are_a4_portrait_or_landscape_and_pdfium_draws_ink_on_them():
    for landscape, size in ((False, (595.28, 841.89)), (True, (841.89, 595.28))):
        data = render(Document(title="电子账单 Payment bill", created=CREATED, landscape=landscape,
                               parts=_document().parts))
        page = _pdfium(data)[0]
        assert (round(page.get_width(), 2), round(page.get_height(), 2)) == size
        image = page.render(scale=1).to_pil().convert("L")
        dark = sum(1 for value in image.getdata() if value < 128)
        assert dark > 2000  # the text, rules and the shaded heading row are drawn, not just placed
        title = image.crop((40, 40, 300, 75))  # the title's line, top left
        assert min(title.getdata()) < 64


def test_wrapping_breaks_at_spaces_hyphens_and_between_cjk_never_before_closing_punctuation():
    from chalicelib.documents.fonts import cjk_face
    from chalicelib.documents.pdf_font import CidFont

    font = CidFont(cjk_face())
    text = "付款成功，订单已完成。Payment received for order ORDER-2026-000123, thank you."
    for limit in (3000, 5000, 8000, 12000):
        lines = font.wrap(text, limit)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing lost
        assert all(font.width(line) <= limit for line in lines)
        assert not any(line[:1] in "，。," for line in lines)
        assert all(line == line.strip() for line in lines)
    assert font.wrap("ORDER-2026-000123", 5000)[0].endswith("-")  # broken after a hyphen
    assert font.wrap("a\nb", 10000) == ["a", "b"] and font.wrap("", 1000) == [""]


def test_the_cross_reference_table_points_at_every_object():
    """A strict reader finds each object where the xref says (a viewer that trusts the table, as PDFium does)."""
    import re

    from pypdf import PdfReader

    data = render(_document(rows=150))
    start = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    assert data[start:start + 5] == b"xref\n"
    header, *entries = data[start + 5:data.index(b"trailer", start)].decode().splitlines()
    assert header.startswith("0 ") and int(header.split()[1]) == len(entries)
    for number, entry in enumerate(entries[1:], start=1):
        offset = int(entry[:10])
        assert re.match(rb"%d 0 obj\n" % number, data[offset:offset + 20]), number
    reader = PdfReader(io.BytesIO(data), strict=True)
    assert all(page.extract_text() for page in reader.pages)


def test_control_characters_and_lone_surrogates_in_a_value_do_not_break_the_document():
    """A description is the merchant's text: a tab, a NUL or a lone surrogate (valid in JSON) must not fail the
    bill. Tabs and controls become spaces, a lone surrogate the replacement character."""
    document = Document(title="Bill\ud800", created=CREATED, subject="x\ty", parts=[
        Fields("Facts", [("Description", "green\ttea\x00 pot \udc00 end"), ("Lines", "one\r\ntwo")])])
    text = pdf_text(render(document))
    assert "green tea  pot \ufffd end" in text and "one\ntwo" in text


def test_headings_and_footers_take_the_same_care_as_values():
    """Headings and the footer are drawn without wrapping, by another path than cells: a lone surrogate there must
    not fail the render either."""
    document = Document(title="Bill", created=CREATED, footer="payhub \ud800", parts=[
        Table("明细 \udc00 Lines", ["时间\x00Time"], [["10:00"]])])
    text = pdf_text(render(document))
    assert "payhub \ufffd" in text and "明细 \ufffd Lines" in text and "时间 Time" in text


def test_a_document_with_more_characters_than_two_byte_codes_hold_is_refused():
    from chalicelib.documents.pdf_font import CidFont
    from chalicelib.documents.truetype import Face

    font = CidFont(Face.open(cjk_font_path()))
    font.width("".join(chr(0x4E00 + n) for n in range(0x5000)) + "".join(chr(0x20000 + n) for n in range(0xAFFF)))
    with pytest.raises(ValueError, match="65,535 distinct characters"):
        font.width(chr(0x30000))


@pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf (Debian package) not installed")
def test_qpdf_finds_no_syntax_or_stream_error(tmp_path):
    """qpdf's structural check (objects, xref, every stream decoded), where the machine has it."""
    for name, document in (("bill", _document()), ("long", _document(rows=150))):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(render(document))
        checked = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True, check=False)
        assert checked.returncode == 0 and "No syntax or stream encoding errors" in checked.stdout, checked.stdout
