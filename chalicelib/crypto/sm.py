"""Chinese national cryptography: SM3 (hash), SM2 (signatures with SM3, default user id).

SM3 and SM4 come from ``cryptography`` (OpenSSL, fast). ``cryptography`` cannot load SM2 keys, so SM2
uses gmssl's curve arithmetic with keys passed as raw hex: the private scalar, and the public point
``x || y`` (64 bytes, no ``04`` prefix). Signatures travel as DER ``SEQUENCE{r, s}``.
"""

from __future__ import annotations

import secrets
from functools import lru_cache

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


@lru_cache(maxsize=256)
def _z_value(public_key_hex: str) -> bytes:
    """Z = SM3(ENTL || user id || a || b || xG || yG || xA || yA) (GM/T 0003.2), per public key."""
    table = sm2.default_ecc_table
    entl = (len(DEFAULT_USER_ID) * 8).to_bytes(2, "big")
    return sm3_digest(entl + DEFAULT_USER_ID + bytes.fromhex(table["a"] + table["b"] + table["g"] + public_key_hex))


def sm3_message_digest(public_key_hex: str, message: bytes) -> bytes:
    """e = SM3(Z || message), what SM2 signs. gmssl's ``*_with_sm3`` computes the same in pure Python, at
    about 2 ms per kilobyte; OpenSSL's SM3 makes a large body cost no more than a small one."""
    return sm3_digest(_z_value(public_key_hex) + message)


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
    # gmssl's default per-signature nonce k comes from ``random`` (Mersenne Twister, predictable); a guessable
    # k reveals the private key, so draw it from the OS CSPRNG.
    order = int(sm2.default_ecc_table["n"], 16)
    raw = curve.sign(sm3_message_digest(curve.public_key, message), f"{secrets.randbelow(order - 1) + 1:064x}")
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
    return bool(curve.verify(f"{r:064x}{s:064x}", sm3_message_digest(curve.public_key, message)))
