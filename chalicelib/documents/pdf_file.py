"""Write the PDF file: PDF 1.7 objects, content streams compressed with zlib, a cross-reference table.

The objects are few and fixed: catalog, page tree, information dictionary, the font's five objects, then a page
and its content stream per page. Nothing depends on the clock or on randomness (the file ID is a digest of the
body), so the same pages give the same bytes.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime

from chalicelib.documents.pdf_font import CidFont, printable

FONT_RESOURCE = "F1"  # the name content streams select the font by


def text_string(text: str) -> str:
    """A PDF text string: literal when printable ASCII, else UTF-16BE with its byte-order mark (in hex)."""
    text = printable(text).replace("\n", " ")
    if all(" " <= c <= "~" for c in text):
        return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


def date_string(moment: datetime) -> str:
    return "(D:" + moment.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "Z)"


def _stream(data: bytes, extra: str = "") -> bytes:
    packed = zlib.compress(data, 6)
    return f"<< /Length {len(packed)} /Filter /FlateDecode{extra} >>\nstream\n".encode() + packed + b"\nendstream"


def write(pages: Sequence[str], size_pt: tuple[float, float], font: CidFont, info: dict[str, str]) -> bytes:
    """``pages``: each page's content stream (operators); ``info``: name -> PDF value (already serialised)."""
    first_page = 10
    count = len(pages)
    name = f"{font.subset_tag()}+{font.face.postscript_name}"
    kids = " ".join(f"{first_page + 2 * n} 0 R" for n in range(count))
    width, height = size_pt
    font_file = font.font_file()
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} /MediaBox [0 0 {width:.2f} {height:.2f}] >>".encode(),
        ("<< " + " ".join(f"/{key} {value}" for key, value in info.items()) + " >>").encode(),
        f"<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H /DescendantFonts [5 0 R] "
        "/ToUnicode 8 0 R >>".encode(),
        font.descendant("6 0 R", "7 0 R", name).encode(),
        font.descriptor("9 0 R", name).encode(),
        _stream(font.cid_to_gid()),
        _stream(font.to_unicode()),
        _stream(font_file, f" /Length1 {len(font_file)}"),  # every page is encoded: the subset is complete
    ]
    resources = f"<< /Font << /{FONT_RESOURCE} 4 0 R >> >>"
    for n, content in enumerate(pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R /Resources {resources} /Contents {first_page + 2 * n + 1} 0 R >>"
                       .encode())
        objects.append(_stream(content.encode("ascii")))

    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    file_id = hashlib.md5(bytes(out), usedforsecurity=False).hexdigest().upper()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 3 0 R /ID [<{file_id}> <{file_id}>] >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)

