"""The gateway's SM2 signatures: canonical strings, the merchant's signer, and checking the bank's.

Every message is SM3withSM2 (user id ``1234567812345678``), DER, base64, over a canonical string whose last
part is the exact body bytes as sent (docs/design.md#rules-every-channel-follows)::

    request   b"POST\\n"     + path           + b"\\n" + timestamp + b"\\n" + nonce + b"\\n" + body
    response  b"RESPONSE\\n" + request nonce  + b"\\n" + timestamp + b"\\n" + nonce + b"\\n" + body
    notify    b"NOTIFY\\n"                     +          timestamp + b"\\n" + nonce + b"\\n" + body

The first line keeps a signature from being replayed as another kind of message; the request path keeps a
signed query from being replayed to /close; the request nonce in a response binds the answer to our request,
so an old signed "SUCCESS" cannot be passed off as the answer to a new one.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from chalicelib.config.secret import Secret
from chalicelib.crypto.sm import sm2_sign, sm2_verify

HEADER_MERCHANT = "X-ECNY-Merchant-Id"
HEADER_TIMESTAMP = "X-ECNY-Timestamp"
HEADER_NONCE = "X-ECNY-Nonce"
HEADER_SERIAL = "X-ECNY-Serial"
HEADER_SIGNATURE = "X-ECNY-Signature"
TIMESTAMP_TOLERANCE_S = 300
_NONCE = re.compile(r"^[0-9A-Za-z]{16,64}$")
_SIGNATURE_B64_MAX = 200  # a DER SM2 signature is at most 72 bytes


class SignatureInvalid(Exception):
    """A bank signature check failed; the message is a short reason, never key material or body."""


def new_nonce() -> str:
    return secrets.token_hex(16)


def request_message(path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"POST\n{path}\n{timestamp}\n{nonce}\n".encode() + body


def response_message(request_nonce: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"RESPONSE\n{request_nonce}\n{timestamp}\n{nonce}\n".encode() + body


def notify_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"NOTIFY\n{timestamp}\n{nonce}\n".encode() + body


def sign(private_key: Secret, public_key_hex: str, message: bytes) -> str:
    return base64.b64encode(sm2_sign(private_key.reveal(), public_key_hex, message)).decode()


def find_key(keys: Mapping[str, Secret], serial: str) -> str | None:
    """Serials are hex and compared case-insensitively."""
    wanted = serial.upper()
    for key_serial, key in keys.items():
        if key_serial.upper() == wanted:
            return key.reveal()
    return None


def _within_window(raw: str, now: datetime) -> bool:
    if not raw.isdigit() or len(raw) > 12:
        return False
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    return abs(aware.timestamp() - int(raw)) <= TIMESTAMP_TOLERANCE_S


def check_signed(headers: Mapping[str, str], message_for: Callable[[str, str], bytes],
                 bank_keys: Mapping[str, Secret], now: datetime) -> str:
    """Raise ``SignatureInvalid`` unless the X-ECNY-* headers (lower-cased names) sign the message that
    ``message_for(timestamp, nonce)`` builds; returns the serial of the key that verified.

    Cheap checks first (timestamp window, nonce shape, known serial), the SM2 verification last.
    """
    signature_b64 = headers.get(HEADER_SIGNATURE.lower(), "")
    if not signature_b64 or len(signature_b64) > _SIGNATURE_B64_MAX:
        raise SignatureInvalid(f"missing or oversized {HEADER_SIGNATURE}")
    timestamp = headers.get(HEADER_TIMESTAMP.lower(), "")
    if not _within_window(timestamp, now):
        raise SignatureInvalid(f"timestamp missing or outside the {TIMESTAMP_TOLERANCE_S} s window")
    nonce = headers.get(HEADER_NONCE.lower(), "")
    if not _NONCE.match(nonce):
        raise SignatureInvalid(f"missing or malformed {HEADER_NONCE}")
    serial = headers.get(HEADER_SERIAL.lower(), "")
    key = find_key(bank_keys, serial) if serial else None
    if key is None:
        raise SignatureInvalid(f"unknown {HEADER_SERIAL}")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("signature is not base64") from None
    if not sm2_verify(key, message_for(timestamp, nonce), signature):
        raise SignatureInvalid("signature mismatch")
    return serial
