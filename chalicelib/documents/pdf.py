"""Lay out a document as PDF from plain parts, in one house style (written by ``pdf_file``, no PDF library).

A document is a title, an optional subtitle, then parts in order: ``Fields`` (label/value rows, for the facts of
one object), ``Table`` (columns and rows, repeated headings on each page, for statements and invoice lines) and
``Note`` (a paragraph). Rendering is deterministic: the same parts and ``created`` give the same bytes, so a
document stored once and rendered again (a retry, a re-run of a statement) is the same object.

Text is whatever the caller passes; amounts are formatted by the caller with ``money`` so the document shows
exactly what the JSON says (minor units turned into the currency's decimals, never through a float).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from datetime import datetime

from chalicelib.documents import pdf_file
from chalicelib.documents.fonts import cjk_face
from chalicelib.documents.pdf_font import CidFont
from chalicelib.domain.money import Money
from chalicelib.domain.value_class import value_class

PAGE_MARGIN_MM = 15
BOTTOM_MM = PAGE_MARGIN_MM + 5  # nothing but the footer below this
TITLE_PT = 16
BODY_PT = 9.5
SMALL_PT = 8
HEADING_PT = BODY_PT + 1.5
PADDING_MM = 1.0  # between a cell's edge and its text
FIELDS_WIDTH_MM = 180  # label/value blocks: 60 mm of labels, 120 of values, on either orientation
LINE_MM = 0.2
HEADING_FILL = (232, 236, 241)
SUBTITLE_GRAY, FOOTER_GRAY = 90, 110
A4_MM = (210.0, 297.0)
PT_PER_MM = 72 / 25.4


def money(minor: int | None, currency: str) -> str:
    """``8888, "CNY"`` -> ``"88.88 CNY"``; ``None`` (not known) -> ``"—"``."""
    if minor is None:
        return "—"
    return f"{Money(minor, currency).to_decimal_string()} {currency}"


@value_class
class Fields:
    heading: str
    rows: Sequence[tuple[str, str]]


@value_class
class Table:
    heading: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    # relative column widths and "L"/"R" alignment per column (amounts right-aligned); defaults: equal, left
    widths: Sequence[int] = ()
    align: Sequence[str] = ()
    font_pt: float = BODY_PT  # long ledgers use a smaller size so ids fit their column on one line


@value_class
class Note:
    text: str


Part = Fields | Table | Note


@value_class
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
    layout = _Layout(CidFont(cjk_face()), document.landscape)
    layout.paragraph(document.title, TITLE_PT, 9)
    if document.subtitle:
        layout.paragraph(document.subtitle, BODY_PT, 5, gray=SUBTITLE_GRAY)
    layout.y += 3
    for part in document.parts:
        if isinstance(part, Note):
            layout.paragraph(part.text, SMALL_PT, 4.5)
            layout.y += 2
        elif isinstance(part, Fields):
            layout.fields(part)
            layout.y += 4
        else:
            layout.table(part)
            layout.y += 4
    pages = layout.finish(document.footer)
    info = {"Title": document.title, "Author": document.author, "Creator": "payhub", "Producer": "payhub"}
    if document.subject:
        info["Subject"] = document.subject
    if document.keywords:
        info["Keywords"] = " ".join(document.keywords)
    values = {key: pdf_file.text_string(value) for key, value in info.items()}
    values["CreationDate"] = pdf_file.date_string(document.created)
    return pdf_file.write(pages, (layout.width * PT_PER_MM, layout.height * PT_PER_MM), layout.font, values)


def _pt(value: float) -> str:
    return f"{value * PT_PER_MM:.2f}"


def _height(cells: list[list[str]], line_height: float) -> float:
    """A row's height: its tallest cell's lines."""
    return line_height * max(1, max(len(lines) for lines in cells))


def _gray(level: int) -> str:
    return f"{level / 255:.3f}".rstrip("0").rstrip(".")


class _Layout:
    """Pages of content-stream operators, filled top to bottom; ``y`` is the next free line, in mm from the top."""

    def __init__(self, font: CidFont, landscape: bool) -> None:
        self.font = font
        self.width, self.height = (A4_MM[1], A4_MM[0]) if landscape else A4_MM
        self.content_width = self.width - 2 * PAGE_MARGIN_MM
        self.pages: list[list[str]] = []
        self.y = 0.0
        self._new_page()

    def _new_page(self) -> None:
        self.pages.append([f"{LINE_MM * PT_PER_MM:.3f} w"])
        self.y = PAGE_MARGIN_MM

    def _room(self, height: float) -> bool:
        return self.y + height <= self.height - BOTTOM_MM

    def _text_width(self, text: str, size: float) -> float:
        return self.font.width(text) * size / 1000 / PT_PER_MM

    def _lines(self, text: str, size: float, width: float) -> list[str]:
        return self.font.wrap(text, (width - 2 * PADDING_MM) * PT_PER_MM * 1000 / size)

    def _text(self, x: float, top: float, height: float, size: float, text: str, align: str = "L",
              width: float = 0.0, gray: int = 0, ops: list[str] | None = None) -> None:
        """One line in a cell of ``height`` at (``x``, ``top``), its baseline where fpdf2 put it (mid-cell plus
        0.3 of the font size), so documents keep the look they had."""
        if not text:
            return
        if align == "R":
            x += width - PADDING_MM - self._text_width(text, size)
        elif align == "C":
            x += (width - self._text_width(text, size)) / 2
        else:
            x += PADDING_MM
        baseline = top + height / 2 + 0.3 * size / PT_PER_MM
        op = f"BT /{pdf_file.FONT_RESOURCE} {size:g} Tf {_pt(x)} {_pt(self.height - baseline)} Td " \
             f"{self.font.encode(text)} Tj ET"
        (self.pages[-1] if ops is None else ops).append(f"q {_gray(gray)} g {op} Q" if gray else op)

    def _rule(self, x: float, y: float, width: float) -> None:
        self.pages[-1].append(f"{_pt(x)} {_pt(self.height - y)} m {_pt(x + width)} {_pt(self.height - y)} l S")

    def _fill(self, x: float, y: float, width: float, height: float, rgb: tuple[int, int, int]) -> None:
        colour = " ".join(_gray(c) for c in rgb)
        self.pages[-1].append(f"q {colour} rg {_pt(x)} {_pt(self.height - y - height)} {_pt(width)} "
                              f"{_pt(height)} re f Q")

    # -- the parts

    def paragraph(self, text: str, size: float, line_height: float, gray: int = 0) -> None:
        for line in self._lines(text, size, self.content_width):
            if not self._room(line_height):
                self._new_page()
            self._text(PAGE_MARGIN_MM, self.y, line_height, size, line, gray=gray)
            self.y += line_height

    def _heading(self, text: str, first_row: float) -> None:
        """A part's heading, on the page of its first row (never alone at the foot of a page)."""
        if not self._room(7 + first_row):
            self._new_page()
        self._text(PAGE_MARGIN_MM, self.y, 7, HEADING_PT, text)
        self.y += 7

    def _cells(self, values: Sequence[str], widths: Sequence[float], size: float) -> list[list[str]]:
        return [self._lines(value, size, width) for value, width in zip(values, widths, strict=True)]

    def _split(self, cells: list[list[str]], line_height: float, reserved: float) -> list[list[list[str]]]:
        """A row as the pieces that fit a page each (a row taller than a page continues on the next)."""
        per_page = max(1, int((self.height - BOTTOM_MM - PAGE_MARGIN_MM - reserved) // line_height))
        tallest = max(len(lines) for lines in cells)
        if tallest <= per_page:
            return [cells]
        return [[lines[at:at + per_page] for lines in cells] for at in range(0, tallest, per_page)]

    def _row(self, cells: list[list[str]], widths: Sequence[float], aligns: Sequence[str], size: float,
             line_height: float) -> None:
        height = _height(cells, line_height)
        x = float(PAGE_MARGIN_MM)
        for lines, width, align in zip(cells, widths, aligns, strict=True):
            top = self.y + (height - line_height * len(lines)) / 2  # each cell centred on the row's height
            for n, line in enumerate(lines):
                self._text(x, top + n * line_height, line_height, size, line, align, width)
            x += width
        self.y += height

    def fields(self, part: Fields) -> None:
        """Label/value rows, a rule between rows (none above the first, none below the last)."""
        widths = (FIELDS_WIDTH_MM / 3, FIELDS_WIDTH_MM * 2 / 3)
        rows = [self._cells(row, widths, BODY_PT) for row in part.rows]
        line_height = 6.0
        self._heading(part.heading, _height(rows[0], line_height) if rows else 0)
        first_on_page = True
        for cells in rows:
            for piece in self._split(cells, line_height, 0):
                height = _height(piece, line_height)
                if not self._room(height):
                    self._new_page()
                    first_on_page = True
                if not first_on_page:
                    self._rule(PAGE_MARGIN_MM, self.y, FIELDS_WIDTH_MM)
                self._row(piece, widths, ("L", "L"), BODY_PT, line_height)
                first_on_page = False

    def table(self, part: Table) -> None:
        """Columns across the page, the headings on a shaded row with a rule under it, repeated on every page."""
        count = len(part.columns)
        relative = list(part.widths) or [1] * count
        if len(relative) != count or (part.align and len(part.align) != count):
            raise ValueError(f"table {part.heading!r}: {count} columns, {len(relative)} widths, "
                             f"{len(part.align)} alignments")
        widths = [self.content_width * w / sum(relative) for w in relative]
        aligns = list(part.align) or ["L"] * count
        size, line_height = part.font_pt, 5.5
        head = self._cells(part.columns, widths, size)
        head_height = _height(head, line_height)

        def headings() -> None:
            self._fill(PAGE_MARGIN_MM, self.y, self.content_width, head_height, HEADING_FILL)
            self._row(head, widths, aligns, size, line_height)
            self._rule(PAGE_MARGIN_MM, self.y, self.content_width)

        rows = [self._cells([str(v) for v in values], widths, size) for values in part.rows]
        for values, cells in zip(part.rows, rows, strict=True):
            if len(cells) != count:
                raise ValueError(f"table {part.heading!r}: a row of {len(values)} values for {count} columns")
        first = _height(rows[0], line_height) if rows else 0
        self._heading(part.heading, head_height + first)
        headings()
        for cells in rows:
            for piece in self._split(cells, line_height, head_height):
                if not self._room(_height(piece, line_height)):
                    self._new_page()
                    headings()
                self._row(piece, widths, aligns, size, line_height)

    def finish(self, footer: str) -> list[str]:
        """Every page's content stream, with its footer: the document's footer line and page n/N."""
        total = len(self.pages)
        for number, ops in enumerate(self.pages, start=1):
            self._text(PAGE_MARGIN_MM, self.height - PAGE_MARGIN_MM, 5, SMALL_PT,
                       f"{footer}    {number}/{total}".strip(), "C", self.content_width, gray=FOOTER_GRAY, ops=ops)
        return ["\n".join(ops) for ops in self.pages]
