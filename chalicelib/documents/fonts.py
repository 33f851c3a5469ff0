"""The font every document is set in: WenQuanYi Micro Hei, from the ``paperang-p2-fonts-cjk`` wheel on PyPI.

Why this font: documents carry merchant names, descriptions and addresses in Chinese, so the font must have
CJK glyphs; CI and Lambda are fresh machines without system fonts, so the font must arrive as a pinned package.
WenQuanYi Micro Hei (free licence, see docs/bills.md) is TrueType-outlined (``truetype`` subsets ``glyf`` fonts;
the Noto CJK wheels on PyPI are CFF2 variable fonts) and 5.2 MB, a tenth of Noto CJK. Only the glyphs a document
uses are embedded, so a bill stays a few tens of KB.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from chalicelib.documents.truetype import Face

_PACKAGE = "paperang_p2_fonts_cjk"
_FILE = "fonts/wqy-microhei.ttc"


class FontMissing(RuntimeError):
    """The font package is not installed: a packaging error, never a merchant's."""


@lru_cache(maxsize=1)
def cjk_font_path() -> Path:
    try:
        path = Path(str(resources.files(_PACKAGE).joinpath(_FILE)))
    except ModuleNotFoundError as exc:
        raise FontMissing(f"package {_PACKAGE} (requirements.txt) is not installed") from exc
    if not path.is_file():
        raise FontMissing(f"{_FILE} is missing from package {_PACKAGE}")
    return path


@lru_cache(maxsize=1)
def cjk_face() -> Face:
    """The collection's first face, WenQuanYi Micro Hei (the second is its monospaced twin), opened once per
    process: its character map and file mapping serve every later document."""
    return Face.open(cjk_font_path(), 0)
