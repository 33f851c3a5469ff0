"""Chinese national cryptography: SM3 (hash), SM2 (signatures with SM3, default user id).

SM3 comes from ``cryptography`` (OpenSSL). ``cryptography`` cannot load SM2 keys, so SM2's curve work is done
by GmSSL's compiled code through gmssl-pyx, or by gmssl's pure Python where that wheel is missing
(``sm2_backends.py``; ``SM2_ENGINE`` says which). Keys are raw hex: the private scalar, and the public point
``x || y`` (64 bytes, an ``04`` prefix accepted). Signatures travel as DER ``SEQUENCE{r, s}``.

Everything an attacker controls (the signature bytes, a configured key) is checked here before an engine sees
it: strict DER, ``0 < r, s < n``, the point on the curve. Verification answers False to anything malformed; it
never raises for it.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from chalicelib.crypto.sm2_backends import GX, GY, A, B, N, P, SM2Engine, load_engine

DEFAULT_USER_ID = b"1234567812345678"
_POINT_HEX_LEN = 128

_ENGINE: SM2Engine = load_engine()
SM2_ENGINE: str = _ENGINE.name


def sm3_digest(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


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


@lru_cache(maxsize=256)
def _z_value(public_key_hex: str) -> bytes:
    """Z = SM3(ENTL || user id || a || b || xG || yG || xA || yA) (GM/T 0003.2), per public key."""
    entl = (len(DEFAULT_USER_ID) * 8).to_bytes(2, "big")
    curve = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))
    return sm3_digest(entl + DEFAULT_USER_ID + curve + bytes.fromhex(public_key_hex))


def sm3_message_digest(public_key_hex: str, message: bytes) -> bytes:
    """e = SM3(Z || message), what SM2 signs. gmssl's ``*_with_sm3`` computes the same in pure Python, at
    about 2 ms per kilobyte; OpenSSL's SM3 makes a large body cost no more than a small one."""
    return sm3_digest(_z_value(public_key_hex) + message)


def sm2_generate_keypair() -> tuple[str, str]:
    """Return (private scalar hex, public point x||y hex)."""
    scalar, point = _ENGINE.generate()
    return f"{scalar:064x}", point.hex()


def sm2_sign(private_key_hex: str, public_key_hex: str, message: bytes) -> bytes:
    """SM3withSM2 signature over ``message`` with the default user id; DER-encoded.

    The public key is the signer's own: Z (hence e) is computed from it, as the verifier will.
    """
    point = _public_point(public_key_hex)
    r, s = _ENGINE.sign_digest(_private_scalar(private_key_hex), point, sm3_message_digest(point.hex(), message))
    return encode_dss_signature(r, s)


def sm2_verify(public_key_hex: str, message: bytes, der_signature: bytes) -> bool:
    """True when ``der_signature`` is a valid SM3withSM2 signature of ``message``; False for anything else."""
    try:
        r, s = decode_dss_signature(der_signature)  # strict DER: no trailing bytes, no long forms, no padding
        point = _public_point(public_key_hex)
    except (ValueError, TypeError):
        return False
    if not (0 < r < N and 0 < s < N):
        return False
    return _ENGINE.verify_digest(point, sm3_message_digest(point.hex(), message), r, s)
