"""ACP 5.1.0 signatures with ``signMethod=01`` (docs/channels/unionpay.md#signing).

The signed string is every parameter except ``signature``, sorted by key, joined ``k=v&...`` with raw
(not URL-encoded) values. It is hashed to lower-case SHA-256 hex, and that *hex text* is what RSA-SHA256
signs: the digest is hashed twice, once here and once inside the RSA signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from chalicelib.config.secret import Secret
from chalicelib.crypto import rsa

VERSION = "5.1.0"
SIGN_METHOD_RSA = "01"
SIGNATURE_FIELD = "signature"


def filter_blank(fields: Mapping[str, str]) -> dict[str, str]:
    """UnionPay's ``filterBlank``: drop parameters that are blank, trim the rest. Blank ones are not sent."""
    return {key: value.strip() for key, value in fields.items() if value is not None and value.strip()}


def signing_string(fields: Mapping[str, str]) -> str:
    return "&".join(f"{key}={fields[key]}" for key in sorted(fields) if key != SIGNATURE_FIELD)


def digest_hex(fields: Mapping[str, str]) -> bytes:
    """The ASCII bytes RSA signs: lower-case hex of SHA-256 over the UTF-8 signing string."""
    return hashlib.sha256(signing_string(fields).encode("utf-8")).hexdigest().encode("ascii")


@lru_cache(maxsize=16)
def _private_key(pem: str) -> rsa_keys.RSAPrivateKey:
    return rsa.load_private_key(pem)


def sign_fields(fields: Mapping[str, str], private_key: Secret, cert_id: str) -> dict[str, str]:
    """Filter blanks, set version/signMethod/certId, and add ``signature``; returns what is sent."""
    signed = filter_blank(fields)
    signed.update({"version": VERSION, "signMethod": SIGN_METHOD_RSA, "certId": cert_id})
    signed.pop(SIGNATURE_FIELD, None)
    signature = rsa.sign_sha256(_private_key(private_key.reveal()), digest_hex(signed))
    signed[SIGNATURE_FIELD] = base64.b64encode(signature).decode("ascii")
    return signed


def signature_matches(fields: Mapping[str, str], public_key: rsa_keys.RSAPublicKey) -> bool:
    """RSA-SHA256 over the hex digest of every field but ``signature``, exactly as received."""
    try:
        signature = base64.b64decode(fields.get(SIGNATURE_FIELD, ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    if not signature:
        return False
    return rsa.verify_sha256(public_key, digest_hex(fields), signature)
