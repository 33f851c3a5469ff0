"""The CDC envelope: a signed JSON document, SM4-CBC encrypted, carried in a form post (docs/banks/cmb.md).

Request document: ``{"request": {"head": {funcode, userid, reqid}, "body": {...}}, "signature": {sigdat, sigtim}}``;
an answer has ``response`` (with ``resultcode``/``resultmsg`` in its head) instead of ``request``.

Signing: ``sigdat`` is first set to the placeholder ``__signature_sigdat__``, the whole document is serialised
with every object's keys sorted (compact, UTF-8, no ASCII escaping), and that text is signed with SM3withSM2
whose user id is the customer's UID right-padded with ``0`` to 16 bytes; the signature (``r||s``, 32 bytes
each) goes into ``sigdat`` in base64. The bank signs its answers the same way with its own key and the same
user id. Encryption: SM4-CBC, PKCS#7 padding, the key the 16 bytes of the symmetric key the bank issued, the
IV the same padded UID; the ciphertext travels in base64.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import secrets
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chalicelib.crypto.sm import sm2_sign_with_id, sm2_verify_with_id

SIGDAT_PLACEHOLDER = "__signature_sigdat__"
ALG_SM = "SM"  # the form's ALG: national algorithms (SM2/SM3/SM4)
_BLOCK_BITS = 128
_SCALAR_BYTES = 32


class EnvelopeError(Exception):
    """The DATA could not be decrypted or parsed, or is not a signed document."""


def padded_uid(uid: str) -> bytes:
    """The UID right-padded with ``0`` (or cut) to 16 bytes: the SM2 user id and the SM4 IV."""
    if not uid or not uid.isascii():
        raise ValueError("uid must be non-empty ASCII")
    return (uid + "0" * 16)[:16].encode("ascii")


def sm4_key(symmetric_key: str) -> bytes:
    """The symmetric key as the bank issues it: 16 ASCII characters, used as their bytes."""
    raw = symmetric_key.encode("utf-8")
    if len(raw) != 16:
        raise ValueError("the SM4 key must be 16 bytes")
    return raw


def canonical_text(document: Any) -> str:
    """Keys sorted at every level, compact, UTF-8 as is: the text that is signed (Gson's escaping of
    U+2028/U+2029 is kept so that a Java peer serialises the same text)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def new_reqid(now: datetime) -> str:
    """``yyyyMMddHHmmssSSS`` then 7 random digits: unique per request, the bank refuses a reqid twice."""
    return now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}" + f"{secrets.randbelow(10**7):07d}"


def sigtim(now: datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S")


def sign(document: dict[str, Any], uid: str, private_key: str, public_key: str, signed_at: str) -> dict[str, Any]:
    """A copy of ``document`` with its ``signature`` filled in."""
    signed = copy.deepcopy(document)
    signed["signature"] = {"sigdat": SIGDAT_PLACEHOLDER, "sigtim": signed_at}
    der = sm2_sign_with_id(private_key, public_key, canonical_text(signed).encode("utf-8"), padded_uid(uid))
    signed["signature"]["sigdat"] = base64.b64encode(_raw_signature(der)).decode("ascii")
    return signed


def verify(document: dict[str, Any], uid: str, signer_public_key: str) -> bool:
    """Whether ``document`` carries a valid signature by ``signer_public_key``; False for anything malformed."""
    signature = document.get("signature")
    if not isinstance(signature, dict):
        return False
    sigdat = signature.get("sigdat")
    if not isinstance(sigdat, str) or sigdat == SIGDAT_PLACEHOLDER:
        return False
    try:
        raw = base64.b64decode(sigdat, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 2 * _SCALAR_BYTES:
        return False
    unsigned = copy.deepcopy(document)
    unsigned["signature"]["sigdat"] = SIGDAT_PLACEHOLDER
    der = encode_dss_signature(int.from_bytes(raw[:_SCALAR_BYTES], "big"), int.from_bytes(raw[_SCALAR_BYTES:], "big"))
    return sm2_verify_with_id(signer_public_key, canonical_text(unsigned).encode("utf-8"), der, padded_uid(uid))


def seal(document: dict[str, Any], uid: str, symmetric_key: str) -> str:
    """The document as sent: compact JSON, SM4-CBC under the symmetric key with the padded UID as IV, base64."""
    plaintext = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    padder = padding.PKCS7(_BLOCK_BITS).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(sm4_key(symmetric_key)), modes.CBC(padded_uid(uid))).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def unseal(data: str, uid: str, symmetric_key: str) -> dict[str, Any]:
    """``seal`` undone: the JSON object, or ``EnvelopeError`` (bad base64, wrong key, bad padding, not JSON)."""
    try:
        ciphertext = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("DATA is not base64") from None
    if not ciphertext or len(ciphertext) % 16:
        raise EnvelopeError("DATA is not whole SM4 blocks")
    decryptor = Cipher(algorithms.SM4(sm4_key(symmetric_key)), modes.CBC(padded_uid(uid))).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(_BLOCK_BITS).unpadder()
    try:
        plaintext = unpadder.update(padded) + unpadder.finalize()
        document = json.loads(plaintext.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        # A wrong key almost always shows up here, as bad padding or garbage.
        raise EnvelopeError("DATA does not decrypt to JSON under this key") from None
    if not isinstance(document, dict):
        raise EnvelopeError("DATA is not a JSON object")
    return document


def _raw_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(_SCALAR_BYTES, "big") + s.to_bytes(_SCALAR_BYTES, "big")
