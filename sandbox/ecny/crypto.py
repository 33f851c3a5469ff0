"""The bank's own national cryptography, written against the libraries directly (a sandbox never imports the hub).

SM2 (gmssl curve arithmetic): SM3withSM2 with the default user id ``1234567812345678``, keys as hex (private
scalar; public point ``x||y``), signatures DER ``SEQUENCE{r, s}`` in base64. SM3 and SM4-GCM: ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import sm2

_ORDER = int(sm2.default_ecc_table["n"], 16)
_USER_ID = b"1234567812345678"


@lru_cache(maxsize=64)
def _z(public_hex: str) -> bytes:
    """Z = SM3(ENTL || user id || a || b || xG || yG || xA || yA), GM/T 0003.2."""
    table = sm2.default_ecc_table
    fixed = bytes.fromhex(table["a"] + table["b"] + table["g"] + public_hex)
    return _sm3((len(_USER_ID) * 8).to_bytes(2, "big") + _USER_ID + fixed)


def _e(public_hex: str, message: bytes) -> bytes:
    """The digest SM2 signs, SM3(Z || M), with OpenSSL's SM3 (gmssl's is pure Python and slow on big bodies)."""
    return _sm3(_z(public_hex) + message)


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _curve(private_hex: str, public_hex: str) -> sm2.CryptSM2:
    curve = sm2.CryptSM2(private_key=private_hex, public_key="")
    curve.public_key = public_hex  # set after init: gmssl's lstrip("04") would eat leading digits of x
    return curve


def public_key_hex(text: str) -> str:
    """Normalise ``04||x||y`` or ``x||y`` hex to ``x||y`` lower-case; ValueError otherwise."""
    key = text.strip().lower()
    if len(key) == 130 and key.startswith("04"):
        key = key[2:]
    if len(key) != 128:
        raise ValueError("SM2 public key must be 64 bytes of hex (x||y), optionally prefixed by 04")
    int(key, 16)
    return key


@dataclass(frozen=True)
class Sm2Key:
    private_hex: str = field(repr=False)
    public_hex: str

    @classmethod
    def generate(cls) -> Sm2Key:
        scalar = secrets.randbelow(_ORDER - 2) + 1
        public = _curve("", "")._kg(scalar, sm2.default_ecc_table["g"])
        return cls(f"{scalar:064x}", public_key_hex(public))

    def sign(self, message: bytes) -> str:
        curve = _curve(self.private_hex, self.public_hex)
        while True:  # gmssl returns None for the (negligible) degenerate nonces; draw again
            raw = curve.sign(_e(self.public_hex, message), f"{secrets.randbelow(_ORDER - 1) + 1:064x}")
            if raw:
                break
        der = encode_dss_signature(int(raw[:64], 16), int(raw[64:], 16))
        return base64.b64encode(der).decode()


def sm2_verify(public_hex: str, message: bytes, signature_b64: str) -> bool:
    try:
        r, s = decode_dss_signature(base64.b64decode(signature_b64, validate=True))
        curve = _curve("", public_key_hex(public_hex))
    except (binascii.Error, ValueError):
        return False
    if not (0 < r < _ORDER and 0 < s < _ORDER):
        return False
    return bool(curve.verify(f"{r:064x}{s:064x}", _e(curve.public_key, message)))


def sm3_hex(data: bytes) -> str:
    return _sm3(data).hex()


def sm4_gcm_seal(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(aad)
    return encryptor.update(plaintext) + encryptor.finalize() + encryptor.tag


def seal_field(key_id: str, key: bytes, plaintext: str, *, merchant_id: str, out_order_no: str,
               name: str) -> dict[str, str]:
    """``{"kid", "iv", "ct"}`` with associated data ``merchant_id|out_order_no|name``."""
    iv = secrets.token_bytes(12)
    aad = f"{merchant_id}|{out_order_no}|{name}".encode()
    sealed = sm4_gcm_seal(key, iv, plaintext.encode("utf-8"), aad)
    return {"kid": key_id, "iv": base64.b64encode(iv).decode(), "ct": base64.b64encode(sealed).decode()}
