"""The bank's own national cryptography, written against the libraries directly (a sandbox never imports the hub).

SM2 (gmssl curve arithmetic): SM3withSM2 with the default user id ``1234567812345678``, keys as hex (private
scalar; public point ``x||y``), signatures DER ``SEQUENCE{r, s}`` in base64. SM3 and SM4-GCM: ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sandbox.common import sm2 as common_sm2
from sandbox.common.sm2 import public_key_hex, sm3


class Sm2Key(common_sm2.Sm2Key):
    """The bank's key: SM3withSM2 with the default user id, signatures DER ``SEQUENCE{r, s}`` in base64."""

    def sign(self, message: bytes) -> str:
        return base64.b64encode(encode_dss_signature(*self.sign_rs(message))).decode()


def sm2_verify(public_hex: str, message: bytes, signature_b64: str) -> bool:
    try:
        r, s = decode_dss_signature(base64.b64decode(signature_b64, validate=True))
        public = public_key_hex(public_hex)
    except (binascii.Error, ValueError):
        return False
    return common_sm2.verify_rs(public, message, r, s)


def sm3_hex(data: bytes) -> str:
    return sm3(data).hex()


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
