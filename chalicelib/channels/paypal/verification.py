"""Checking a PayPal webhook's transmission signature (docs/channels/paypal.md#verification), by one of two rules per account.

``certificate`` (option B, local): message = ``transmission_id|transmission_time|webhook_id|crc32(raw body)``
(CRC-32 as an unsigned decimal) verified with RSA PKCS#1 v1.5 / SHA-256 under the certificate named by
``PAYPAL-CERT-URL`` (see ``certificates``). ``api`` (option A): PayPal's ``verify-webhook-signature`` endpoint
decides. Both first require every header, ``SHA256withRSA``, and a transmission time within the window of when
the hub received the request; ``webhook_id`` is always OUR configured id, never taken from the request.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from chalicelib.channels.paypal.certificates import CertificateRejected, CertificateStore
from chalicelib.channels.paypal.client import PayPalClient
from chalicelib.channels.paypal.credentials import PayPalCredentials
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.value_class import value_class

AUTH_ALGO = "SHA256withRSA"
HEADERS = ("paypal-transmission-id", "paypal-transmission-time", "paypal-transmission-sig", "paypal-cert-url",
           "paypal-auth-algo")


class SignatureInvalid(Exception):
    """A webhook failed verification; the message is a short reason, never key material or body."""


class VerificationUnavailable(Exception):
    """The verify API could not be reached: the webhook is neither accepted nor proven forged (PayPal retries)."""


@value_class
class Transmission:
    transmission_id: str
    transmission_time: str
    signature: str
    cert_url: str
    auth_algo: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Transmission:
        values = [headers.get(name, "").strip() for name in HEADERS]
        missing = [name for name, value in zip(HEADERS, values, strict=True) if not value]
        if missing:
            raise SignatureInvalid(f"missing {', '.join(missing)}")
        return cls(*values)


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()


def parse_transmission_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureInvalid("PAYPAL-TRANSMISSION-TIME is not RFC 3339") from exc
    if moment.tzinfo is None:
        raise SignatureInvalid("PAYPAL-TRANSMISSION-TIME has no offset")
    return moment


def check_window(transmission: Transmission, received_at: datetime, tolerance_s: int) -> None:
    sent = parse_transmission_time(transmission.transmission_time)
    now = received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    if abs((now - sent).total_seconds()) > tolerance_s:
        raise SignatureInvalid(f"transmission time outside the {tolerance_s} s window")


def verify_with_certificate(store: CertificateStore, credentials: PayPalCredentials, transmission: Transmission,
                            body: bytes, received_at: datetime) -> None:
    try:
        key = store.trusted_key(transmission.cert_url, credentials.pinned_certs, credentials.cert_roots, received_at,
                                credentials.cert_intermediates)
    except CertificateRejected as exc:
        raise SignatureInvalid(f"certificate rejected: {exc}") from None
    try:
        signature = base64.b64decode(transmission.signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("PAYPAL-TRANSMISSION-SIG is not base64") from None
    message = signed_message(transmission.transmission_id, transmission.transmission_time, credentials.webhook_id, body)
    try:
        key.public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureInvalid("signature mismatch") from None


def verify_with_api(client: PayPalClient, credentials: PayPalCredentials, transmission: Transmission,
                    event: Mapping[str, Any]) -> None:
    body = {
        "auth_algo": transmission.auth_algo, "cert_url": transmission.cert_url,
        "transmission_id": transmission.transmission_id, "transmission_sig": transmission.signature,
        "transmission_time": transmission.transmission_time, "webhook_id": credentials.webhook_id,
        "webhook_event": event,
    }
    try:
        answer = client.call_json(credentials, "POST", "/v1/notifications/verify-webhook-signature", body)
    except ChannelError as exc:
        if exc.refused:  # PayPal looked at it and said the request is invalid
            raise SignatureInvalid(f"verify API refused: {exc.channel_code}") from None
        raise VerificationUnavailable(str(exc.channel_code or "unreachable")) from None
    if answer.get("verification_status") != "SUCCESS":
        raise SignatureInvalid("verify API answered FAILURE")


def verify(store: CertificateStore, client: PayPalClient, credentials: PayPalCredentials, headers: Mapping[str, str],
           body: bytes, received_at: datetime) -> dict[str, Any]:
    """Verify, then parse: returns the event JSON object. Raises ``SignatureInvalid`` / ``VerificationUnavailable``."""
    transmission = Transmission.from_headers(headers)
    if transmission.auth_algo != AUTH_ALGO:
        raise SignatureInvalid("unsupported PAYPAL-AUTH-ALGO")
    check_window(transmission, received_at, credentials.webhook_tolerance_s)
    if credentials.webhook_verification == "certificate":
        verify_with_certificate(store, credentials, transmission, body, received_at)
        return _event(body)
    event = _event(body)  # the verify API takes the event as parsed JSON
    verify_with_api(client, credentials, transmission, event)
    return event


def _event(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SignatureInvalid("webhook body is not JSON") from None
    if not isinstance(value, dict):
        raise SignatureInvalid("webhook body is not a JSON object")
    return value
