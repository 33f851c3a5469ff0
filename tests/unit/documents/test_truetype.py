"""The font reader and subsetter (chalicelib/documents/truetype.py), judged by fontTools, a font library the hub
does not use: the same glyph for every character, a subset fontTools parses with valid checksums, whose glyphs
for the characters used (composite glyphs with their components) are the original outlines, and nothing else."""

from __future__ import annotations

import io
import struct

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont

from chalicelib.documents.fonts import cjk_face, cjk_font_path
from chalicelib.documents.truetype import Face, FontError, checksum, components

USED = "电子账单支付 Payment bill ÀÁ½×—（）：，。0123456789€"
MISSING = "😀𠀀ꙮ₩"  # not in WenQuanYi Micro Hei


@pytest.fixture(scope="module")
def original() -> TTFont:
    return TTCollection(str(cjk_font_path()), lazy=True).fonts[0]


def _subset(face: Face, text: str) -> TTFont:
    font = TTFont(io.BytesIO(face.subset({c: face.glyph_id(c) for c in text})), checkChecksums=2)
    font.ensureDecompiled()
    return font


def test_glyph_ids_and_widths_are_the_fonts_own(original):
    cmap, order, hmtx = original.getBestCmap(), original.getGlyphOrder(), original["hmtx"]
    face = cjk_face()
    for char in USED + MISSING:
        expected = original.getGlyphID(cmap[ord(char)]) if ord(char) in cmap else 0
        assert face.glyph_id(char) == expected, char
        assert face.advance(expected) == hmtx[order[expected]][0], char
    assert face.units_per_em == original["head"].unitsPerEm and face.glyph_count == original["maxp"].numGlyphs


def test_the_collections_first_face_is_the_one_read():
    """The .ttc holds Micro Hei and its monospaced twin: documents are set in the first."""
    path = cjk_font_path()
    assert cjk_face().postscript_name == "WenQuanYiMicroHei"
    assert Face.open(path, 1).postscript_name == "WenQuanYiMicroHeiMono"
    with pytest.raises(FontError, match="2 faces, no face 2"):
        Face.open(path, 2)


def test_the_subset_holds_the_original_outlines_of_the_characters_used_and_nothing_else(original):
    face = cjk_face()
    subset = _subset(face, USED + MISSING)
    glyf, sub_glyf = original["glyf"], subset["glyf"]
    order, sub_order = original.getGlyphOrder(), subset.getGlyphOrder()
    used = {face.glyph_id(c) for c in USED}
    kept = face.with_components(used)
    assert subset["maxp"].numGlyphs == max(kept) + 1
    composites = 0
    for gid in kept:
        mine, theirs = sub_glyf[sub_order[gid]], glyf[order[gid]]
        if theirs.isComposite():
            composites += 1
            assert [sub_order.index(c.glyphName) for c in mine.components] == \
                [order.index(c.glyphName) for c in theirs.components]
        coordinates, _, flags = mine.getCoordinates(sub_glyf)
        theirs_coordinates, _, theirs_flags = theirs.getCoordinates(glyf)
        assert list(coordinates) == list(theirs_coordinates) and list(flags) == list(theirs_flags), gid
        assert subset["hmtx"][sub_order[gid]] == original["hmtx"][order[gid]]
    assert composites >= 4  # 账, 付, À, Á, ½ are composite glyphs in this font
    for char in USED.replace(" ", ""):
        glyph = sub_glyf[subset.getBestCmap()[ord(char)]]
        assert glyph.numberOfContours != 0, char  # drawn, not empty
    emptied = [gid for gid in range(subset["maxp"].numGlyphs) if gid not in kept]
    assert len(emptied) > 1000 and all(sub_glyf[sub_order[g]].numberOfContours == 0 for g in emptied[::97])
    assert all(ord(c) not in subset.getBestCmap() for c in MISSING)  # drawn as .notdef, not mapped


def test_the_subset_checksums_and_tables(original):
    data = cjk_face().subset({"账": cjk_face().glyph_id("账")})
    assert checksum(data) == 0xB1B0AFBA  # head.checkSumAdjustment makes the whole file sum to the magic number
    font = TTFont(io.BytesIO(data), checkChecksums=2)
    assert {"head", "hhea", "maxp", "hmtx", "loca", "glyf", "cvt ", "fpgm", "prep", "cmap", "post"} <= set(font.keys())
    assert font["head"].indexToLocFormat == 1 and font["post"].formatType == 3.0
    assert font["fpgm"].program.getBytecode() == original["fpgm"].program.getBytecode()
    assert len(data) < 500_000  # glyph ids up to 账's, but emptied: zlib takes the rest to a few KB


def _built_font(tmp_path, fs_type: int = 0) -> str:
    """A small TrueType font made by fontTools: a square, a composite of it, and a composite of that composite."""
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder([".notdef", "square", "pair", "quad"])
    builder.setupCharacterMap({ord("a"): "square", ord("b"): "pair", ord("c"): "quad"})
    pen = TTGlyphPen(None)
    for x, y in ((100, 0), (100, 500), (400, 500), (400, 0)):
        (pen.lineTo if x != 100 or y else pen.moveTo)((x, y))
    pen.closePath()
    square = pen.glyph()
    pen = TTGlyphPen({"square": square})
    pen.addComponent("square", (1, 0, 0, 1, 0, 0))
    pen.addComponent("square", (1, 0, 0, 1, 400, 0))
    pair = pen.glyph()
    pen = TTGlyphPen({"pair": pair})
    pen.addComponent("pair", (1, 0, 0, 1, 0, 0))
    pen.addComponent("pair", (0.5, 0, 0, 0.5, 0, 600))  # a scaled component: a flag with 2 more bytes
    quad = pen.glyph()
    builder.setupGlyf({".notdef": TTGlyphPen(None).glyph(), "square": square, "pair": pair, "quad": quad})
    builder.setupHorizontalMetrics({".notdef": (500, 0), "square": (500, 100), "pair": (900, 100),
                                    "quad": (900, 100)})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Test", "styleName": "Regular"})
    builder.setupOS2(fsType=fs_type)
    builder.setupPost()
    path = tmp_path / "test.ttf"
    builder.save(str(path))
    return str(path)


def test_nested_composites_bring_every_component(tmp_path):
    face = Face.open(_built_font(tmp_path))
    assert components(face.glyph(3)) == [2, 2] and components(face.glyph(2)) == [1, 1]
    assert face.with_components([3]) == {0, 1, 2, 3}
    subset = _subset(face, "c")
    order = subset.getGlyphOrder()  # names are not kept (post format 3): glyphs by id
    assert subset["glyf"][order[1]].numberOfContours == 1  # the square, reached only through "pair"
    assert subset["glyf"][order[3]].isComposite() and subset["glyf"][order[2]].isComposite()
    assert subset.getBestCmap() == {ord("c"): order[3]}
    assert face.advance(face.glyph_id("b")) == 900 and face.glyph_id("z") == 0


def test_a_single_font_file_has_one_face_and_bad_files_are_refused(tmp_path):
    path = _built_font(tmp_path)
    with pytest.raises(FontError, match="no face 1"):
        Face.open(path, 1)
    with pytest.raises(FontError, match="CFF-outlined"):
        Face(b"OTTO" + bytes(100))
    with pytest.raises(FontError, match="not a TrueType font"):
        Face(b"%PDF-1.7" + bytes(100))
    data = open(path, "rb").read()
    with pytest.raises(FontError, match="truncated|past the end"):
        Face(data[:200])


def test_a_font_whose_licence_forbids_embedding_is_not_embedded(tmp_path):
    face = Face.open(_built_font(tmp_path, fs_type=0x0002))
    assert not face.embedding_allowed
    with pytest.raises(FontError, match="forbid embedding"):
        face.subset({"a": face.glyph_id("a")})
    assert Face.open(_built_font(tmp_path, fs_type=0x0008)).embedding_allowed  # editable embedding is fine


def test_a_composite_cycle_ends(tmp_path):
    """A glyph built from a glyph built from it (a broken or hostile font) must not hang the subsetter."""
    data = bytearray(open(_built_font(tmp_path), "rb").read())
    pair = Face(bytes(data)).glyph(2)
    at = data.find(pair)
    struct.pack_into(">H", data, at + 12, 3)  # pair's first component (after the 10-byte header and flags): quad
    face = Face(bytes(data))
    assert components(face.glyph(2))[0] == 3 and 2 in components(face.glyph(3))
    assert face.with_components([3]) == {0, 1, 2, 3}  # each glyph visited once


def test_a_damaged_glyph_record_is_a_font_error_not_a_crash():
    """A composite record cut inside a component, as a damaged file would have it: refused as a FontError (a
    ValueError the renderer reports), never a bare struct.error."""
    cut = b"\xff\xff" + bytes(8) + b"\x00\x21\x00"  # numberOfContours -1, then half a component
    with pytest.raises(FontError, match="ends inside a component"):
        components(cut)
