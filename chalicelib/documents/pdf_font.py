"""The document font as a PDF font: a Type0 font over a CIDFontType2 (TrueType outlines), Identity-H encoded.

Each character a document uses gets its own CID, numbered from 1 in order of first use, so the text of a page
is a run of two-byte CIDs. ``CIDToGIDMap`` takes each CID to its glyph, ``/W`` gives each CID's width and the
``ToUnicode`` CMap each CID's character, so text copied or extracted from the PDF is the text given, even for a
character the font lacks (it is drawn as the font's .notdef box, and still extracts as itself).
"""

from __future__ import annotations

import hashlib
import re

from chalicelib.documents.truetype import Face

# What a page cannot show: control characters become spaces (a tab in a description is a gap, not a box), and a
# lone surrogate (JSON can carry one, "\ud800") the replacement character, since no text encoding can hold it.
_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with what no page can show replaced (see above); newlines kept, they break lines."""
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n")))

_NO_BREAK_BEFORE = frozenset("，。、；：！？）》」』】〕,.;:!?)]}%")


def is_cjk(char: str) -> bool:
    """A character a line may break before and after (ideographs, kana, hangul, full-width forms)."""
    code = ord(char)
    return 0x2E80 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF \
        or 0xFF00 <= code <= 0xFFEF or code >= 0x20000


class CidFont:
    """Widths and encoding of the characters a document uses, and the PDF objects that embed them."""

    def __init__(self, face: Face) -> None:
        self.face = face
        self._scale = 1000 / face.units_per_em
        self._cids: dict[str, str] = {}  # character -> its CID as 4 hex digits
        self._glyphs: dict[str, int] = {}  # character -> glyph id (0: the font has none)
        self.widths: dict[str, float] = {}  # character -> advance in 1/1000 of the font size

    def _learn(self, char: str) -> None:
        glyph = self.face.glyph_id(char)
        self._glyphs[char] = glyph
        self.widths[char] = round(self.face.advance(glyph) * self._scale)
        if len(self._cids) >= 0xFFFF:  # Identity-H codes are two bytes: a 65,536th character cannot be written
            raise ValueError("a document may use at most 65,535 distinct characters")
        self._cids[char] = f"{len(self._cids) + 1:04X}"

    def width(self, text: str) -> float:
        """Width of ``text`` in 1/1000 of the font size, as drawn (after ``printable``)."""
        text = printable(text).replace("\n", " ")
        widths = self.widths
        for char in text:
            if char not in widths:
                self._learn(char)
        return sum(map(widths.__getitem__, text))

    def encode(self, text: str) -> str:
        """``text`` as a PDF hex string of CIDs (``<0001000A>``), after ``printable`` (what no page can show replaced)."""
        text = printable(text).replace("\n", " ")
        self.width(text)
        return "<" + "".join(map(self._cids.__getitem__, text)) + ">"

    def wrap(self, text: str, limit: float) -> list[str]:
        """Lines of ``text`` no wider than ``limit`` (1/1000 of the font size), broken at spaces, after ``-``
        and ``/``, and around CJK characters; a word longer than a line is cut where it overflows."""
        text = printable(text)
        self.width(text)
        widths = self.widths
        lines: list[str] = []
        for paragraph in text.split("\n"):
            start, end = 0, len(paragraph)
            while True:
                width, at, cut = 0.0, start, -1  # cut: where the next line may start
                while at < end:
                    char = paragraph[at]
                    if at > start and is_cjk(char) and char not in _NO_BREAK_BEFORE:
                        cut = at
                    width += widths[char]
                    if width > limit and at > start and char != " ":
                        break
                    if char in " -/" or (is_cjk(char) and at + 1 < end and paragraph[at + 1] not in _NO_BREAK_BEFORE):
                        cut = at + 1
                    at += 1
                if at >= end:
                    lines.append(paragraph[start:].rstrip(" "))
                    break
                if cut <= start:
                    cut = at  # nothing to break at: cut the word
                lines.append(paragraph[start:cut].rstrip(" "))
                start = cut
                while start < end and paragraph[start] == " ":
                    start += 1
                if start >= end:
                    break
        return lines

    # -- the PDF objects

    def subset_tag(self) -> str:
        """Six capital letters naming this subset (the PDF convention ``ABCDEF+Name``), fixed by its characters."""
        digest = hashlib.sha256("".join(self._cids).encode()).digest()
        return "".join(chr(65 + b % 26) for b in digest[:6])

    def descendant(self, descriptor_ref: str, cid_to_gid_ref: str, name: str) -> str:
        runs = " ".join(_number(self.widths[c]) for c in self._cids)
        return (f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} "
                "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                f"/FontDescriptor {descriptor_ref} /DW 1000 /W [1 [{runs}]] /CIDToGIDMap {cid_to_gid_ref} >>")

    def descriptor(self, font_file_ref: str, name: str) -> str:
        face, scale = self.face, self._scale
        bbox = " ".join(str(round(v * scale)) for v in face.bbox)
        return (f"<< /Type /FontDescriptor /FontName /{name} /Flags 4 /FontBBox [{bbox}] "
                f"/ItalicAngle {_number(face.italic_angle)} /Ascent {round(face.ascent * scale)} "
                f"/Descent {round(face.descent * scale)} /CapHeight {round(face.cap_height * scale)} /StemV 80 "
                f"/FontFile2 {font_file_ref} >>")

    def cid_to_gid(self) -> bytes:
        """Glyph id of CID 0, 1, 2, ... as big-endian 16-bit numbers (CID 0 is .notdef)."""
        return b"\x00\x00" + b"".join(self._glyphs[c].to_bytes(2, "big") for c in self._cids)

    def font_file(self) -> bytes:
        return self.face.subset(self._glyphs)

    def to_unicode(self) -> bytes:
        entries = [f"<{cid}> <{char.encode('utf-16-be').hex().upper()}>" for char, cid in self._cids.items()]
        blocks = []
        for at in range(0, len(entries), 100):  # the CMap syntax allows at most 100 entries per block
            chunk = entries[at:at + 100]
            blocks.append(f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar")
        return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
                "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
                "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
                "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n" + "\n".join(blocks) +
                "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n").encode("ascii")


def _number(value: float) -> str:
    """A PDF number, without a trailing ``.0``."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
