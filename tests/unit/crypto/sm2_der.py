"""DER for hostile SM2 signatures: ``cryptography``'s encoder refuses negative integers, attackers do not."""

from __future__ import annotations


def der_integer(value: int) -> bytes:
    """A minimal two's-complement DER INTEGER of any sign (short-form length only: |value| < 2**1000)."""
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    raw = value.to_bytes(size, "big", signed=True)
    while len(raw) > 1 and ((raw[0] == 0 and raw[1] < 0x80) or (raw[0] == 0xFF and raw[1] >= 0x80)):
        raw = raw[1:]
    return b"\x02" + _length(len(raw)) + raw


def der_signature(r: int, s: int) -> bytes:
    body = der_integer(r) + der_integer(s)
    return b"\x30" + _length(len(body)) + body


def _length(size: int) -> bytes:
    return bytes([size]) if size < 0x80 else bytes([0x81, size]) if size < 0x100 else bytes([0x82]) + size.to_bytes(2, "big")
