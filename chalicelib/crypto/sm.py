"""Chinese national cryptography: SM3 (hash), SM2 (signatures with SM3, default user id).

SM3 comes from ``cryptography`` (OpenSSL). ``cryptography`` cannot load SM2 keys, so SM2's curve work is done
by Tongsuo's compiled code, or by gmssl's pure Python where Tongsuo's wheel is missing (``sm2_engines.py``;
``sm2_engine().name`` says which). Keys are raw hex: the private scalar, and the public point ``x || y``
(64 bytes, an ``04`` prefix accepted). Signatures travel as DER ``SEQUENCE{r, s}``.

What an attacker controls (the signature bytes, a configured key) is checked here before an engine sees it:
strict DER, ``0 < r, s < n``, the point on the curve. Verification answers False to anything malformed; it
never raises for it.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from chalicelib.crypto.sm2_engines import (
    DEFAULT_USER_ID,
    A,
    B,
    N,
    P,
    SM2Engine,
    load_engine,
    message_digest,
    sm3_digest,
)

__all__ = [
    "DEFAULT_USER_ID", "normalize_public_key_hex", "sm2_engine", "sm2_generate_keypair", "sm2_sign", "sm2_sign_with_id",
    "sm2_verify", "sm2_verify_with_id", "sm3_digest", "sm3_message_digest",
]

_POINT_HEX_LEN = 128
_engine: SM2Engine | None = None
_engine_lock = threading.Lock()


def sm2_engine() -> SM2Engine:
    """The engine every SM2 operation uses, loaded on the first one (Tongsuo's load is not free)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = load_engine()
    return _engine


def normalize_public_key_hex(public_key_hex: str) -> str:
    """Accept ``04||x||y`` or ``x||y`` hex; return ``x||y`` lower-case.

    (gmssl's own ``lstrip('04')`` would also eat leading 0/4 digits of x, so we never hand it a prefix.)
    """
    key = public_key_hex.strip().lower()
    if len(key) == _POINT_HEX_LEN + 2 and key.startswith("04"):
        key = key[2:]
    if len(key) != _POINT_HEX_LEN:
        raise ValueError("SM2 public key must be 64 bytes (x||y), optionally prefixed by 04")
    int(key, 16)
    return key


@lru_cache(maxsize=256)
def _public_point(public_key_hex: str) -> bytes:
    """The 64-byte point of a public key, once it is known to lie on the curve (cached: keys repeat)."""
    point = bytes.fromhex(normalize_public_key_hex(public_key_hex))
    x, y = int.from_bytes(point[:32], "big"), int.from_bytes(point[32:], "big")
    if not (x < P and y < P and (y * y - (x * x * x + A * x + B)) % P == 0):
        raise ValueError("SM2 public key is not a point on the SM2 curve")
    return point


def _private_scalar(private_key_hex: str) -> int:
    try:
        scalar = int(private_key_hex.strip(), 16)
    except ValueError:
        # int()'s own message would quote the key.
        raise ValueError("SM2 private key must be a hex scalar") from None
    if not 0 < scalar < N - 1:
        raise ValueError("SM2 private key must be a scalar in [1, n-2]")
    return scalar


def sm3_message_digest(public_key_hex: str, message: bytes) -> bytes:
    """e = SM3(Z || message) for the public point ``x||y`` hex: what SM2 signs."""
    return message_digest(public_key_hex, message)


def sm2_generate_keypair() -> tuple[str, str]:
    """Return (private scalar hex, public point x||y hex)."""
    scalar, point = sm2_engine().generate()
    return f"{scalar:064x}", point.hex()


def sm2_sign(private_key_hex: str, public_key_hex: str, message: bytes) -> bytes:
    """SM3withSM2 signature over ``message`` with the default user id; DER-encoded.

    The public key is the signer's own: Z (hence e) is computed from it, as the verifier will.
    """
    point = _public_point(public_key_hex)
    return sm2_engine().sign(_private_scalar(private_key_hex), point, message)


def sm2_verify(public_key_hex: str, message: bytes, der_signature: bytes) -> bool:
    """True when ``der_signature`` is a valid SM3withSM2 signature of ``message``; False for anything else."""
    try:
        r, s = decode_dss_signature(der_signature)  # strict DER: no trailing bytes, long forms or padding
        point = _public_point(public_key_hex)
    except (ValueError, TypeError):
        return False
    if not (0 < r < N and 0 < s < N):
        return False
    # Re-encoded from the integers: the engine parses canonical DER only, whatever arrived.
    return sm2_engine().verify(point, message, encode_dss_signature(r, s))


def sm2_sign_with_id(private_key_hex: str, public_key_hex: str, message: bytes, user_id: bytes) -> bytes:
    """``sm2_sign`` with another user id in Z (a bank that uses its customer's id: docs/banks/cmb.md); DER."""
    point = _public_point(public_key_hex)
    digest = message_digest(point.hex(), message, user_id)
    return sm2_engine().sign_digest(_private_scalar(private_key_hex), point, digest)


def sm2_verify_with_id(public_key_hex: str, message: bytes, der_signature: bytes, user_id: bytes) -> bool:
    """``sm2_verify`` with another user id in Z; False for anything malformed, never an error."""
    try:
        r, s = decode_dss_signature(der_signature)
        point = _public_point(public_key_hex)
        digest = message_digest(point.hex(), message, user_id)
    except (ValueError, TypeError):
        return False
    if not (0 < r < N and 0 < s < N):
        return False
    return sm2_engine().verify_digest(point, digest, encode_dss_signature(r, s))
