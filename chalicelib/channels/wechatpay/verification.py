"""Checking WeChat Pay's signatures on responses and callbacks.

Message: ``<Wechatpay-Timestamp>\\n<Wechatpay-Nonce>\\n<raw body>\\n`` over the exact bytes received.
The key is chosen by ``Wechatpay-Serial`` among every configured platform key, so certificates and the newer
public key verify side by side during a migration and old keys keep verifying after a rotation.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from chalicelib.channels.wechatpay.signing import (
    SCHEME_RSA,
    SCHEME_SM2,
    signing_message,
)
from chalicelib.config.secret import Secret
from chalicelib.crypto import rsa
from chalicelib.crypto.sm import sm2_verify

SIGNATURE_PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
TIMESTAMP_TOLERANCE_S = 300


class SignatureInvalid(Exception):
    """A WeChat signature check failed; the message is a short reason, never key material or body."""


def verification_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return signing_message(timestamp, nonce, body)


@lru_cache(maxsize=64)
def _rsa_public_key(pem: str) -> rsa_keys.RSAPublicKey:
    return rsa.load_public_key(pem)


def verify_signature(key_text: str, scheme: str, message: bytes, signature_b64: str) -> bool:
    """True when the signature is valid; the key's form (PEM vs SM2 hex) must match the scheme."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    is_pem = "-----BEGIN" in key_text
    if scheme == SCHEME_RSA and is_pem:
        try:
            public_key = _rsa_public_key(key_text)
        except ValueError:
            return False
        return rsa.verify_sha256(public_key, message, signature)
    if scheme == SCHEME_SM2 and not is_pem:
        return sm2_verify(key_text, message, signature)
    return False


def find_platform_key(platform_keys: Mapping[str, Secret], serial: str) -> str | None:
    """Exact id first (public-key ids are case-sensitive), then a case-insensitive hex serial."""
    if serial in platform_keys:
        return platform_keys[serial].reveal()
    wanted = serial.upper()
    for key_id, key in platform_keys.items():
        if key_id.upper() == wanted:
            return key.reveal()
    return None


def _timestamp_within_window(raw: str, now: datetime) -> bool:
    if not raw.isdigit() or len(raw) > 12:
        return False
    aware_now = now if now.tzinfo else now.replace(tzinfo=UTC)
    return abs(aware_now.timestamp() - int(raw)) < TIMESTAMP_TOLERANCE_S


def check_signed(
    headers: Mapping[str, str],
    body: bytes,
    platform_keys: Mapping[str, Secret],
    now: datetime,
    *,
    default_scheme: str = SCHEME_RSA,
) -> None:
    """Raise ``SignatureInvalid`` unless the Wechatpay-* headers (lower-cased names) sign ``body``.

    Order matters: probe, then timestamp window, then key by serial, then the signature itself.
    A missing ``Wechatpay-Signature-Type`` means ``default_scheme`` (RSA for callbacks, as the Go SDK does).
    """
    signature = headers.get("wechatpay-signature", "")
    if not signature:
        raise SignatureInvalid("missing Wechatpay-Signature")
    if signature.startswith(SIGNATURE_PROBE_PREFIX):
        raise SignatureInvalid("signature probe")
    timestamp = headers.get("wechatpay-timestamp", "")
    if not _timestamp_within_window(timestamp, now):
        raise SignatureInvalid("timestamp missing or outside the 300 s window")
    nonce = headers.get("wechatpay-nonce", "")
    if not nonce:
        raise SignatureInvalid("missing Wechatpay-Nonce")
    key_text = find_platform_key(platform_keys, headers.get("wechatpay-serial", ""))
    if key_text is None:
        raise SignatureInvalid("unknown Wechatpay-Serial")
    scheme = headers.get("wechatpay-signature-type") or default_scheme
    if scheme not in (SCHEME_RSA, SCHEME_SM2):
        raise SignatureInvalid("unsupported Wechatpay-Signature-Type")
    if not verify_signature(key_text, scheme, verification_message(timestamp, nonce, body), signature):
        raise SignatureInvalid("signature mismatch")
