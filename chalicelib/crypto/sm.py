"""Chinese national cryptography: SM3 (hash), SM2 (signatures with SM3, default user id).

SM3 and SM4 come from ``cryptography`` (OpenSSL, fast). ``cryptography`` cannot load SM2 keys, so SM2
uses gmssl's curve arithmetic with keys passed as raw hex: the private scalar, and the public point
``x || y`` (64 bytes, no ``04`` prefix). Signatures travel as DER ``SEQUENCE{r, s}``.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from gmssl import sm2

DEFAULT_USER_ID = b"1234567812345678"
_POINT_HEX_LEN = 128


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


def _curve(private_key_hex: str, public_key_hex: str) -> sm2.CryptSM2:
    curve = sm2.CryptSM2(private_key=private_key_hex, public_key="")
    curve.public_key = public_key_hex  # set after init so gmssl cannot strip it
    return curve


def sm2_generate_keypair() -> tuple[str, str]:
    """Return (private scalar hex, public point x||y hex)."""
    curve = _curve("", "")
    order = int(sm2.default_ecc_table["n"], 16)
    scalar = secrets.randbelow(order - 2) + 1
    private_hex = f"{scalar:064x}"
    public_hex = curve._kg(scalar, sm2.default_ecc_table["g"])
    return private_hex, normalize_public_key_hex(public_hex)


def sm2_sign(private_key_hex: str, public_key_hex: str, message: bytes) -> bytes:
    """SM3withSM2 signature over ``message`` with the default user id; DER-encoded."""
    curve = _curve(private_key_hex, normalize_public_key_hex(public_key_hex))
    raw = curve.sign_with_sm3(message)
    half = len(raw) // 2
    return encode_dss_signature(int(raw[:half], 16), int(raw[half:], 16))


def sm2_verify(public_key_hex: str, message: bytes, der_signature: bytes) -> bool:
    """True when ``der_signature`` is a valid SM3withSM2 signature of ``message``."""
    try:
        r, s = decode_dss_signature(der_signature)
        curve = _curve("", normalize_public_key_hex(public_key_hex))
    except ValueError:
        return False
    order = int(sm2.default_ecc_table["n"], 16)
    if not (0 < r < order and 0 < s < order):
        return False
    return bool(curve.verify_with_sm3(f"{r:064x}{s:064x}", message))
