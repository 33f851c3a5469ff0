"""Read one face of a TrueType font (``.ttf``, or a face of a ``.ttc`` collection) and subset it for a PDF.

Only what a PDF needs is read, with ``struct`` straight from the mapped file: the character map (format 12, else
format 4), advance widths, the glyph outlines of the characters used and a few header values. Parsing the whole
5 MB font with a font library cost ~165 ms of CPU per process; reading these parts costs a few milliseconds, and
only the pages of the file touched are read from disk.

The subset keeps glyph ids (the simplest sound subsetting: nothing inside the font is renumbered, so composite
glyphs keep pointing at their components): unused glyphs are emptied, ``loca``/``glyf``/``hmtx`` are rebuilt for
glyph ids up to the highest one used, and the tables a viewer needs to draw TrueType outlines (``head``, ``hhea``,
``maxp``, ``cvt``, ``fpgm``, ``prep``) are kept, with ``OS/2``, ``name``, a ``post`` without glyph names and a
``cmap`` of the characters used (so the embedded font still says which glyph is which character).
"""

from __future__ import annotations

import bisect
import mmap
import struct
import sys
from array import array
from collections.abc import Iterable
from pathlib import Path

_TRUETYPE_VERSIONS = (b"\x00\x01\x00\x00", b"true")
# Tables copied unchanged into a subset when the font has them: hinting programs the glyphs' instructions call.
_COPIED = (b"OS/2", b"cvt ", b"fpgm", b"gasp", b"name", b"prep")
# Composite glyph flags (TrueType 'glyf' spec).
_ARGS_ARE_WORDS, _HAS_SCALE, _MORE_COMPONENTS, _HAS_XY_SCALE, _HAS_2X2 = 0x0001, 0x0008, 0x0020, 0x0040, 0x0080


class FontError(ValueError):
    """The font file is not a usable TrueType face (a packaging error, never a merchant's)."""


class Face:
    """One face of a TrueType file, read on demand."""

    def __init__(self, data: bytes | mmap.mmap, index: int = 0) -> None:
        self._data = data
        try:
            self._tables = _directory(data, index)
            self._read_headers()
        except struct.error as exc:
            raise FontError(f"truncated font file: {exc}") from exc
        self._cmap: tuple[list[int], list[int], list[int], int, int] | None = None

    @classmethod
    def open(cls, path: str | Path, index: int = 0) -> Face:
        with open(path, "rb") as handle:
            # Mapped, not read: the glyphs a document uses are a few hundred KB of a 5 MB file.
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return cls(data, index)

    def _table(self, tag: bytes) -> tuple[int, int]:
        try:
            return self._tables[tag]
        except KeyError:
            raise FontError(f"font has no {tag.decode()!r} table") from None

    def _read_headers(self) -> None:
        d = self._data
        head, _ = self._table(b"head")
        self.units_per_em = struct.unpack_from(">H", d, head + 18)[0]
        self.bbox = struct.unpack_from(">4h", d, head + 36)
        self._long_loca = struct.unpack_from(">h", d, head + 50)[0] == 1
        hhea, _ = self._table(b"hhea")
        self.ascent, self.descent = struct.unpack_from(">hh", d, hhea + 4)
        self._h_metrics = struct.unpack_from(">H", d, hhea + 34)[0]
        self.glyph_count = struct.unpack_from(">H", d, self._table(b"maxp")[0] + 4)[0]
        self._hmtx = self._table(b"hmtx")[0]
        self._loca = self._table(b"loca")[0]
        self._glyf, self._glyf_length = self._table(b"glyf")
        self.cap_height = self.ascent
        self.embedding_allowed = True
        if b"OS/2" in self._tables:
            os2, length = self._tables[b"OS/2"]
            version, fs_type = struct.unpack_from(">H", d, os2)[0], struct.unpack_from(">H", d, os2 + 8)[0]
            # fsType 0x0002 alone: "restricted licence embedding", the font must not leave the machine
            self.embedding_allowed = fs_type & 0x000F != 0x0002
            if version >= 2 and length >= 90:
                self.cap_height = struct.unpack_from(">h", d, os2 + 88)[0]
        self.italic_angle = 0.0
        if b"post" in self._tables:
            self.italic_angle = struct.unpack_from(">i", d, self._tables[b"post"][0] + 4)[0] / 65536
        self.postscript_name = _postscript_name(d, self._tables.get(b"name")) or "Font"

    # -- characters and metrics

    def glyph_id(self, char: str) -> int:
        """The glyph of ``char``; 0 (the font's .notdef box) when the font has none."""
        if self._cmap is None:
            self._cmap = _read_cmap(self._data, self._table(b"cmap")[0])
        starts, ends, values, fmt, base = self._cmap
        code = ord(char)
        i = bisect.bisect_left(ends, code)
        if i == len(ends) or starts[i] > code:
            return 0
        if fmt == 12:
            return values[i] + code - starts[i]
        delta, range_offset = values[i] & 0xFFFF, values[i] >> 16
        if range_offset == 0:
            return (code + delta) & 0xFFFF
        # idRangeOffset counts from its own slot in the idRangeOffset array (format 4's addressing)
        glyph = struct.unpack_from(">H", self._data, base + 2 * i + range_offset + 2 * (code - starts[i]))[0]
        return (glyph + delta) & 0xFFFF if glyph else 0

    def advance(self, glyph: int) -> int:
        """Advance width of ``glyph`` in font units."""
        slot = min(glyph, self._h_metrics - 1)
        return struct.unpack_from(">H", self._data, self._hmtx + 4 * slot)[0]

    def _metrics(self, glyph: int) -> bytes:
        """The glyph's (advance, left side bearing) as a 4-byte hmtx record."""
        if glyph < self._h_metrics:
            return bytes(self._data[self._hmtx + 4 * glyph:self._hmtx + 4 * glyph + 4])
        lsb = self._hmtx + 4 * self._h_metrics + 2 * (glyph - self._h_metrics)
        return struct.pack(">H", self.advance(glyph)) + bytes(self._data[lsb:lsb + 2])

    def glyph(self, glyph: int) -> bytes:
        """The glyph's outline record from ``glyf`` (empty for a blank glyph such as the space)."""
        if not 0 <= glyph < self.glyph_count:
            raise FontError(f"glyph {glyph} out of range (font has {self.glyph_count})")
        if self._long_loca:
            start, end = struct.unpack_from(">II", self._data, self._loca + 4 * glyph)
        else:
            start, end = (2 * x for x in struct.unpack_from(">HH", self._data, self._loca + 2 * glyph))
        if end < start or end > self._glyf_length:
            raise FontError(f"glyph {glyph}: loca entries out of order or past the glyf table")
        return bytes(self._data[self._glyf + start:self._glyf + end])

    # -- subsetting

    def with_components(self, glyphs: Iterable[int]) -> set[int]:
        """``glyphs`` plus every glyph their composite glyphs are built from (and .notdef)."""
        wanted = {0, *glyphs}
        todo = list(wanted)
        while todo:  # each glyph is looked at once, so a composite that (wrongly) contains itself ends too
            glyph = todo.pop()
            for component in components(self.glyph(glyph)):
                if component not in wanted:
                    wanted.add(component)
                    todo.append(component)
        return wanted

    def subset(self, chars: dict[str, int]) -> bytes:
        """A TrueType file holding only the glyphs of ``chars`` (character -> glyph id, as ``glyph_id`` gave)."""
        if not self.embedding_allowed:
            raise FontError("the font's licence bits (OS/2 fsType) forbid embedding it")
        kept = sorted(self.with_components(chars.values()))
        count = kept[-1] + 1  # glyph ids above the highest one used are dropped, the rest keep their ids
        hmtx = bytearray(4 * count)  # unused glyphs: advance 0, bearing 0 (never drawn)
        loca = array("I")
        glyf = bytearray()
        after = 0  # first glyph id not yet given a loca entry
        for glyph in kept:
            if glyph > after:
                loca.extend(array("I", [len(glyf)]) * (glyph - after))  # empty glyphs: zero-length records
            loca.append(len(glyf))
            glyf += self.glyph(glyph)
            glyf += bytes(-len(glyf) % 4)  # long loca offsets, records kept 4-byte aligned
            hmtx[4 * glyph:4 * glyph + 4] = self._metrics(glyph)
            after = glyph + 1
        loca.append(len(glyf))
        if sys.byteorder == "little":
            loca.byteswap()
        d = self._data
        head_at, head_len = self._table(b"head")
        head = bytearray(d[head_at:head_at + head_len])
        head[8:12] = bytes(4)  # checkSumAdjustment, set once the file is assembled
        head[50:52] = struct.pack(">h", 1)  # long loca
        hhea_at, hhea_len = self._table(b"hhea")
        hhea = bytearray(d[hhea_at:hhea_at + hhea_len])
        hhea[34:36] = struct.pack(">H", count)
        maxp_at, maxp_len = self._table(b"maxp")
        maxp = bytearray(d[maxp_at:maxp_at + maxp_len])
        maxp[4:6] = struct.pack(">H", count)
        tables = {b"head": bytes(head), b"hhea": bytes(hhea), b"maxp": bytes(maxp), b"hmtx": bytes(hmtx),
                  b"loca": loca.tobytes(), b"glyf": bytes(glyf), b"cmap": _cmap_format12(chars)}
        if b"post" in self._tables:
            post_at = self._tables[b"post"][0]
            tables[b"post"] = b"\x00\x03\x00\x00" + bytes(d[post_at + 4:post_at + 32])  # version 3: no names
        for tag in _COPIED:
            if tag in self._tables:
                at, length = self._tables[tag]
                tables[tag] = bytes(d[at:at + length])
        return _assemble(tables)


def components(glyph: bytes) -> list[int]:
    """The glyph ids a composite glyph record is built from ([] for a simple or empty glyph)."""
    if len(glyph) < 10 or struct.unpack_from(">h", glyph, 0)[0] >= 0:
        return []
    found = []
    at = 10
    while True:
        if at + 4 > len(glyph):
            raise FontError("a composite glyph record ends inside a component")
        flags, component = struct.unpack_from(">HH", glyph, at)
        found.append(component)
        at += 4 + (4 if flags & _ARGS_ARE_WORDS else 2)
        if flags & _HAS_SCALE:
            at += 2
        elif flags & _HAS_XY_SCALE:
            at += 4
        elif flags & _HAS_2X2:
            at += 8
        if not flags & _MORE_COMPONENTS:
            return found


def _directory(data: bytes | mmap.mmap, index: int) -> dict[bytes, tuple[int, int]]:
    base = 0
    if data[:4] == b"ttcf":
        faces = struct.unpack_from(">I", data, 8)[0]
        if not 0 <= index < faces:
            raise FontError(f"the collection has {faces} faces, no face {index}")
        base = struct.unpack_from(">I", data, 12 + 4 * index)[0]  # TTC table offsets count from the file start
    elif index != 0:
        raise FontError(f"a single font file has no face {index}")
    version = bytes(data[base:base + 4])
    if version == b"OTTO":
        raise FontError("CFF-outlined OpenType font: only TrueType outlines are embedded")
    if version not in _TRUETYPE_VERSIONS:
        raise FontError("not a TrueType font")
    count = struct.unpack_from(">H", data, base + 4)[0]
    tables = {}
    for n in range(count):
        tag, _, offset, length = struct.unpack_from(">4sIII", data, base + 12 + 16 * n)
        if offset + length > len(data):
            raise FontError(f"table {tag.decode(errors='replace')!r} runs past the end of the file")
        tables[tag] = (offset, length)
    return tables


def _read_cmap(data: bytes | mmap.mmap, cmap: int) -> tuple[list[int], list[int], list[int], int, int]:
    """Segments of the best Unicode subtable: (starts, ends, values, format, base) for ``Face.glyph_id``."""
    count = struct.unpack_from(">H", data, cmap + 2)[0]
    subtables = {}
    for n in range(count):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * n)
        subtables[(platform, encoding)] = cmap + offset
    for key in ((3, 10), (0, 4), (0, 6), (3, 1), (0, 3), (0, 2), (0, 1), (0, 0)):
        at = subtables.get(key)
        if at is None:
            continue
        fmt = struct.unpack_from(">H", data, at)[0]
        if fmt == 12:
            groups = struct.unpack_from(">I", data, at + 12)[0]
            flat = struct.unpack_from(f">{3 * groups}I", data, at + 16)
            return list(flat[0::3]), list(flat[1::3]), list(flat[2::3]), 12, 0
        if fmt == 4:
            segments = struct.unpack_from(">H", data, at + 6)[0] // 2
            ends = struct.unpack_from(f">{segments}H", data, at + 14)
            starts = struct.unpack_from(f">{segments}H", data, at + 16 + 2 * segments)
            deltas = struct.unpack_from(f">{segments}H", data, at + 16 + 4 * segments)
            range_at = at + 16 + 6 * segments
            offsets = struct.unpack_from(f">{segments}H", data, range_at)
            return (list(starts), list(ends), [dl | (ro << 16) for dl, ro in zip(deltas, offsets, strict=True)],
                    4, range_at)
    raise FontError("font has no Unicode character map (cmap format 4 or 12)")


def _postscript_name(data: bytes | mmap.mmap, table: tuple[int, int] | None) -> str:
    if table is None:
        return ""
    at = table[0]
    count, strings = struct.unpack_from(">HH", data, at + 2)
    for n in range(count):
        platform, encoding, language, name_id, length, offset = struct.unpack_from(">6H", data, at + 6 + 12 * n)
        if name_id != 6:
            continue
        raw = bytes(data[at + strings + offset:at + strings + offset + length])
        text = raw.decode("utf-16-be", "replace") if platform in (0, 3) else raw.decode("latin-1")
        # a PDF name: printable ASCII without delimiters (the spec's PostScript name rule)
        cleaned = "".join(c for c in text if "!" <= c <= "~" and c not in "[](){}<>/%#")
        if cleaned:
            return cleaned
    return ""


def _cmap_format12(chars: dict[str, int]) -> bytes:
    """A cmap with one Windows Unicode (3, 10) format 12 subtable for the characters that have a glyph."""
    groups: list[list[int]] = []
    for code, glyph in sorted((ord(c), g) for c, g in chars.items() if g):
        last = groups[-1] if groups else None
        if last and code == last[1] + 1 and glyph == last[2] + code - last[0]:
            last[1] = code
        else:
            groups.append([code, code, glyph])
    body = b"".join(struct.pack(">III", *group) for group in groups)
    subtable = struct.pack(">HHIII", 12, 0, 16 + len(body), 0, len(groups)) + body
    return struct.pack(">HHHHI", 0, 1, 3, 10, 12) + subtable


def checksum(data: bytes) -> int:
    """The sfnt table checksum: the sum of big-endian 32-bit words, modulo 2**32."""
    words = array("I", data + bytes(-len(data) % 4))
    if sys.byteorder == "little":
        words.byteswap()
    return sum(words) & 0xFFFFFFFF


def _assemble(tables: dict[bytes, bytes]) -> bytes:
    tags = sorted(tables)
    count = len(tags)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(">4sHHHH", b"\x00\x01\x00\x00", count, 16 * power, power.bit_length() - 1,
                         16 * count - 16 * power)
    offset = 12 + 16 * count
    directory, body = bytearray(), bytearray()
    for tag in tags:
        data = tables[tag]
        directory += struct.pack(">4sIII", tag, checksum(data), offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    font = bytearray(header + directory + body)
    head_at = offset + sum(len(tables[t]) + (-len(tables[t]) % 4) for t in tags[:tags.index(b"head")])
    adjustment = (0xB1B0AFBA - checksum(bytes(font))) & 0xFFFFFFFF
    font[head_at + 8:head_at + 12] = struct.pack(">I", adjustment)
    return bytes(font)
