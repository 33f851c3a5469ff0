"""A gzip stream read as ``gzip -d`` reads it: members one after another are one stream (a DynamoDB export or a
channel's bill may be written in several), and a stream that ends inside a member is refused, never taken for the
whole file."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class GzipCutShort(ValueError):
    """The gzip stream ended inside a member."""


def inflate_members(chunks: Iterable[bytes], decompressobj: Callable[..., Any] = zlib.decompressobj) -> Iterator[bytes]:
    """The inflated bytes of the gzip stream arriving in ``chunks``, member after member. ``decompressobj`` is
    zlib's or one with its interface (ISA-L's, ``isal.isal_zlib.decompressobj``). A broken stream raises that
    decompressor's error; one that ends inside a member raises ``GzipCutShort``, after what was inflated before."""
    inflate, fed = decompressobj(wbits=31), False
    for chunk in chunks:
        while chunk:
            out = inflate.decompress(chunk)
            fed = True
            if out:
                yield out
            if inflate.eof:  # a member ended: what follows it is the next one's
                chunk, inflate, fed = inflate.unused_data, decompressobj(wbits=31), False
            else:
                chunk = b""
    if fed:
        raise GzipCutShort("the gzip stream ends inside a member")
