"""Lay out a document as PDF from plain parts, in one house style.

A document is a title, an optional subtitle, then parts in order: ``Fields`` (label/value rows, for the facts of
one object), ``Table`` (columns and rows, repeated headings on each page, for statements and invoice lines) and
``Note`` (a paragraph). Rendering is deterministic: the same parts and ``created`` give the same bytes, so a
document stored once and rendered again (a retry, a re-run of a statement) is the same object.

Text is whatever the caller passes; amounts are formatted by the caller with ``money`` so the document shows
exactly what the JSON says (minor units turned into the currency's decimals, never through a float).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chalicelib.documents.fonts import FAMILY, cjk_font_path
from chalicelib.domain.money import Money

PAGE_MARGIN_MM = 15
TITLE_PT = 16
BODY_PT = 9.5
SMALL_PT = 8


def money(minor: int | None, currency: str) -> str:
    """``8888, "CNY"`` -> ``"88.88 CNY"``; ``None`` (not known) -> ``"—"``."""
    if minor is None:
        return "—"
    return f"{Money(minor, currency).to_decimal_string()} {currency}"


@dataclass(frozen=True)
class Fields:
    heading: str
    rows: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    heading: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    # relative column widths and "L"/"R" alignment per column (amounts right-aligned); defaults: equal, left
    widths: Sequence[int] = ()
    align: Sequence[str] = ()
    font_pt: float = BODY_PT  # long ledgers use a smaller size so ids fit their column on one line


@dataclass(frozen=True)
class Note:
    text: str


Part = Fields | Table | Note


@dataclass(frozen=True)
class Document:
    title: str
    parts: Sequence[Part]
    created: datetime
    subtitle: str = ""
    footer: str = ""
    # PDF metadata (Title/Subject/Author); kept short, never a secret
    author: str = "payhub"
    subject: str = ""
    keywords: tuple[str, ...] = field(default=())
    landscape: bool = False  # wide tables (statements): A4 turned


def render(document: Document) -> bytes:
    """The document as PDF bytes."""
    from fpdf import FPDF  # imported here: only the functions that render documents pay for fpdf2 (cold start)
    from fpdf.fonts import FontFace

    pdf = FPDF(orientation="L" if document.landscape else "P", unit="mm", format="A4")
    pdf.set_creation_date(document.created.astimezone(UTC))
    pdf.set_title(document.title)
    pdf.set_author(document.author)
    pdf.set_creator("payhub")
    pdf.set_producer("payhub")
    if document.subject:
        pdf.set_subject(document.subject)
    if document.keywords:
        pdf.set_keywords(" ".join(document.keywords))
    pdf.set_margins(PAGE_MARGIN_MM, PAGE_MARGIN_MM, PAGE_MARGIN_MM)
    pdf.set_auto_page_break(True, margin=PAGE_MARGIN_MM + 5)
    pdf.add_font(FAMILY, "", str(cjk_font_path()))
    footer = document.footer

    def page_footer() -> None:
        pdf.set_y(-PAGE_MARGIN_MM)
        pdf.set_font(FAMILY, size=SMALL_PT)
        pdf.set_text_color(110)
        pdf.cell(0, 5, f"{footer}    {pdf.page_no()}/{{nb}}".strip(), align="C")
        pdf.set_text_color(0)

    pdf.footer = page_footer  # type: ignore[method-assign]  # fpdf2's documented hook is overriding footer()
    pdf.add_page()
    pdf.set_font(FAMILY, size=TITLE_PT)
    pdf.multi_cell(0, 9, document.title, new_x="LMARGIN", new_y="NEXT")
    if document.subtitle:
        pdf.set_font(FAMILY, size=BODY_PT)
        pdf.set_text_color(90)
        pdf.multi_cell(0, 5, document.subtitle, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0)
    pdf.ln(3)
    heading_style = FontFace(emphasis=None, fill_color=(232, 236, 241))
    for part in document.parts:
        if isinstance(part, Note):
            pdf.set_font(FAMILY, size=SMALL_PT)
            pdf.multi_cell(0, 4.5, part.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
            continue
        pdf.set_font(FAMILY, size=BODY_PT + 1.5)
        pdf.cell(0, 7, part.heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FAMILY, size=BODY_PT if isinstance(part, Fields) else part.font_pt)
        if isinstance(part, Fields):
            with pdf.table(col_widths=(1, 2), first_row_as_headings=False, line_height=6, width=180,
                           align="LEFT",
                           borders_layout="HORIZONTAL_LINES") as table:
                for label, value in part.rows:
                    row = table.row()
                    row.cell(label)
                    row.cell(value)
        else:
            aligns = list(part.align) or ["L"] * len(part.columns)
            widths = tuple(part.widths) or tuple(1 for _ in part.columns)
            with pdf.table(col_widths=widths, text_align=tuple(aligns), line_height=5.5,
                           headings_style=heading_style, repeat_headings=1,
                           borders_layout="SINGLE_TOP_LINE") as table:
                head = table.row()
                for column in part.columns:
                    head.cell(column)
                for values in part.rows:
                    row = table.row()
                    for value in values:
                        row.cell(value)
        pdf.ln(4)
    pdf.alias_nb_pages()
    return bytes(pdf.output())
