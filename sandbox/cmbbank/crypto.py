"""The bank's side of the envelope, written against the libraries directly (a sandbox never imports the hub).

SM2 (gmssl's curve arithmetic, SM3 from ``cryptography``) with the customer's UID, right-padded with ``0`` to
16 bytes, as the user id in Z; signatures as 64 raw bytes ``r||s`` in base64. SM4-CBC with PKCS#7 padding,
the customer's 16-byte symmetric key and the same padded UID as IV. The signed text is the document with
``sigdat`` set to ``__signature_sigdat__``, serialised with keys sorted at every level.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import secrets
import string
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sandbox.common import sm2 as common_sm2

PLACEHOLDER = "__signature_sigdat__"
class BadEnvelope(Exception):
    pass


def padded_uid(uid: str) -> bytes:
    return (uid + "0" * 16)[:16].encode("ascii")


class Sm2Key(common_sm2.Sm2Key):
    """A key of the bank's (or the customer's): signatures as 64 raw bytes ``r||s`` in base64."""

    def sign(self, message: bytes, user_id: bytes) -> str:
        r, s = self.sign_rs(message, user_id)
        return base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()


def verify_raw(public_hex: str, message: bytes, signature_b64: str, user_id: bytes) -> bool:
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 64:
        return False
    return common_sm2.verify_rs(public_hex, message, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"),
                                user_id)


def canonical(document: Any) -> bytes:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode("utf-8")


def sign_document(document: dict[str, Any], uid: str, key: Sm2Key, sigtim: str) -> dict[str, Any]:
    signed = copy.deepcopy(document)
    signed["signature"] = {"sigdat": PLACEHOLDER, "sigtim": sigtim}
    signed["signature"]["sigdat"] = key.sign(canonical(signed), padded_uid(uid))
    return signed


def verify_document(document: dict[str, Any], uid: str, public_hex: str) -> bool:
    signature = document.get("signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("sigdat"), str):
        return False
    sigdat = signature["sigdat"]
    unsigned = copy.deepcopy(document)
    unsigned["signature"]["sigdat"] = PLACEHOLDER
    return sigdat != PLACEHOLDER and verify_raw(public_hex, canonical(unsigned), sigdat, padded_uid(uid))


def seal(document: dict[str, Any], uid: str, sm4_key: str) -> str:
    plaintext = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(sm4_key.encode()), modes.CBC(padded_uid(uid))).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def unseal(data: str, uid: str, sm4_key: str) -> dict[str, Any]:
    try:
        ciphertext = base64.b64decode(data, validate=True)
        if not ciphertext or len(ciphertext) % 16:
            raise BadEnvelope("DATA is not whole SM4 blocks")
        decryptor = Cipher(algorithms.SM4(sm4_key.encode()), modes.CBC(padded_uid(uid))).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        document = json.loads((unpadder.update(padded) + unpadder.finalize()).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadEnvelope("DATA does not decrypt to JSON") from exc
    if not isinstance(document, dict):
        raise BadEnvelope("DATA is not a JSON object")
    return document


def new_sm4_key() -> str:
    """16 printable characters, as the bank hands a customer its symmetric key."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(16))
