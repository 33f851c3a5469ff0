"""``inflate_members`` reads a gzip stream as ``gzip -d`` does: every member, whatever the read sizes, with zlib's
decompressor or ISA-L's; a stream that ends inside a member is refused after what came before it."""

from __future__ import annotations

import gzip
import zlib

import pytest
from isal import isal_zlib

from chalicelib.gzip_members import GzipCutShort, inflate_members

TEXT = b"".join(b"line %d of the file\n" % n for n in range(5_000))


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[at:at + size] for at in range(0, len(data), size)]


@pytest.mark.parametrize("decompressobj", [zlib.decompressobj, isal_zlib.decompressobj], ids=["zlib", "isal"])
@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
def test_members_one_after_another_are_one_stream(decompressobj: object, size: int) -> None:
    members = gzip.compress(TEXT[:1234]) + gzip.compress(b"") + gzip.compress(TEXT[1234:])
    assert b"".join(inflate_members(_pieces(members, size), decompressobj)) == TEXT  # type: ignore[arg-type]
    assert gzip.decompress(members) == TEXT


@pytest.mark.parametrize("decompressobj", [zlib.decompressobj, isal_zlib.decompressobj], ids=["zlib", "isal"])
def test_a_stream_cut_inside_a_member_is_refused_after_what_came_before(decompressobj: object) -> None:
    members = gzip.compress(TEXT[:1234]) + gzip.compress(TEXT[1234:])
    got: list[bytes] = []
    with pytest.raises(GzipCutShort, match="inside a member"):
        got.extend(inflate_members(_pieces(members[:-30], 100), decompressobj))  # type: ignore[arg-type]
    assert TEXT.startswith(b"".join(got)) and len(b"".join(got)) > 1234
    assert list(inflate_members([])) == []  # no bytes: no member, nothing cut


def test_bytes_after_a_member_that_are_no_gzip_are_a_broken_stream() -> None:
    with pytest.raises(zlib.error):
        list(inflate_members([gzip.compress(TEXT) + b"not gzip"]))
