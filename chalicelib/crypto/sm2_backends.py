"""The two SM2 curve engines behind ``chalicelib.crypto.sm``: compiled GmSSL (gmssl-pyx) and pure-Python gmssl.

Both work on the digest ``e = SM3(Z || M)`` that ``sm.py`` computes with OpenSSL's SM3, and on plain integers
and bytes that ``sm.py`` has already checked (scalar in range, point on the curve, ``0 < r, s < n``). Neither
does any encoding of its own towards the caller: signatures come back as ``(r, s)``.

gmssl-pyx wraps GmSSL 3's C code (a manylinux2014 wheel, statically linked, needs glibc 2.14) and signs or
verifies about twenty times faster than gmssl's Python big-integer arithmetic (``bench/sm2.py``). gmssl stays
as the engine used only when gmssl-pyx cannot be imported (a platform with no wheel), and as the reference the
tests hold the compiled engine to.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

# GM/T 0003.5 (GB/T 32918.5) recommended curve: y^2 = x^3 + ax + b over F_p, base point G of prime order n.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0


class SM2Engine(Protocol):
    name: str

    def generate(self) -> tuple[int, bytes]:
        """A fresh key pair: (private scalar, public point ``x || y``, 64 bytes)."""

    def sign_digest(self, scalar: int, point: bytes, digest: bytes) -> tuple[int, int]:
        """(r, s) over the 32-byte digest e, with a nonce from the OS CSPRNG."""

    def verify_digest(self, point: bytes, digest: bytes, r: int, s: int) -> bool:
        """Whether (r, s) signs e under the public point."""


class CompiledEngine:
    """GmSSL 3 through gmssl-pyx. Its nonces come from GmSSL's ``rand_bytes`` (the OS generator)."""

    name = "gmssl-pyx (GmSSL 3, compiled)"

    def __init__(self) -> None:
        import gmssl_pyx  # ImportError here is what selects the fallback

        self._lib = gmssl_pyx

    def generate(self) -> tuple[int, bytes]:
        public, private = self._lib.sm2_key_generate()
        return int.from_bytes(private, "big"), public

    def sign_digest(self, scalar: int, point: bytes, digest: bytes) -> tuple[int, int]:
        der = self._lib.sm2_sign_sm3_digest(scalar.to_bytes(32, "big"), digest)
        r, s = decode_dss_signature(der)
        return r, s

    def verify_digest(self, point: bytes, digest: bytes, r: int, s: int) -> bool:
        # GmSSL only ever sees canonical DER of in-range integers and an on-curve point (checked by sm.py), so
        # its parsers meet no hostile bytes. It reports a mismatch as False; any GmsslInnerError left (none is
        # reachable with checked input) is still a refusal, never a pass.
        try:
            return bool(self._lib.sm2_verify_sm3_digest(point, digest, encode_dss_signature(r, s)))
        except self._lib.GmsslInnerError:
            return False


class PurePythonEngine:
    """gmssl's curve arithmetic (pure Python, ~20x slower): the fallback and the tests' reference."""

    name = "gmssl (pure Python)"

    def __init__(self) -> None:
        from gmssl import sm2

        self._sm2 = sm2

    def _curve(self, scalar: int, point: bytes) -> object:
        curve = self._sm2.CryptSM2(private_key=f"{scalar:064x}" if scalar else "", public_key="")
        curve.public_key = point.hex()  # after init: gmssl's lstrip("04") would eat leading digits of x
        return curve

    def generate(self) -> tuple[int, bytes]:
        scalar = secrets.randbelow(N - 2) + 1
        public_hex = self._sm2.CryptSM2(private_key="", public_key="")._kg(scalar, f"{GX:064x}{GY:064x}")
        return scalar, bytes.fromhex(public_hex)

    def sign_digest(self, scalar: int, point: bytes, digest: bytes) -> tuple[int, int]:
        curve = self._curve(scalar, point)
        while True:
            # gmssl's default nonce comes from ``random`` (Mersenne Twister, predictable): a guessable k reveals
            # the private key, so draw it from the OS CSPRNG. gmssl returns None for a degenerate k; draw again.
            raw = curve.sign(digest, f"{secrets.randbelow(N - 1) + 1:064x}")  # type: ignore[attr-defined]
            if raw:
                half = len(raw) // 2
                return int(raw[:half], 16), int(raw[half:], 16)

    def verify_digest(self, point: bytes, digest: bytes, r: int, s: int) -> bool:
        return bool(self._curve(0, point).verify(f"{r:064x}{s:064x}", digest))  # type: ignore[attr-defined]


def load_engine() -> SM2Engine:
    """The compiled engine when its wheel is installed (the layer and the venv always have it), else gmssl."""
    try:
        return CompiledEngine()
    except ImportError:
        return PurePythonEngine()
