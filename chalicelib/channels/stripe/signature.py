"""Checking ``Stripe-Signature`` (docs/channels/stripe.md#webhook-signature) over the exact bytes received.

Header: ``t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]``, split on ``,`` then on the first ``=``, no
whitespace tolerated (``" v1"`` is not ``"v1"``). Expected value: hex HMAC-SHA256 keyed with the whole secret
string (``whsec_`` included) over ``f"{t}.".encode() + body``. Accepted when any ``v1`` matches any configured
secret, compared in constant time; ``v0`` (test-mode legacy scheme) is ignored. Unlike stripe-python, which only
rejects old timestamps, a timestamp too far in the *future* is rejected too: a clock that far ahead is not
Stripe's, and a far-future signature would otherwise stay replayable for as long as it is ahead.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from chalicelib.config.secret import Secret

SCHEME = "v1"
TOLERANCE_S = 300  # stripe-python's default for old timestamps
FUTURE_TOLERANCE_S = 300
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class SignatureInvalid(Exception):
    """The signature check failed; the message is a short reason, never a secret or the body."""


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def parse_header(header: str) -> tuple[str, list[str]]:
    """(timestamp text, v1 signatures); raises SignatureInvalid on a malformed header."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise SignatureInvalid("malformed Stripe-Signature item")
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            signatures.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.match(timestamps[0]):
        raise SignatureInvalid("Stripe-Signature lacks a single numeric t")
    if not signatures:
        raise SignatureInvalid("no v1 signature in Stripe-Signature")
    return timestamps[0], signatures


def _within_tolerance(timestamp: int, now: datetime) -> bool:
    aware_now = now if now.tzinfo else now.replace(tzinfo=UTC)
    now_s = aware_now.timestamp()
    return now_s - TOLERANCE_S <= timestamp <= now_s + FUTURE_TOLERANCE_S


def verify(header: str | None, body: bytes, secrets: Sequence[Secret], now: datetime) -> int:
    """Return the signed timestamp, or raise ``SignatureInvalid``."""
    if not header:
        raise SignatureInvalid("missing Stripe-Signature")
    timestamp, signatures = parse_header(header)
    if not _within_tolerance(int(timestamp), now):
        raise SignatureInvalid("timestamp outside the tolerance window")
    if not secrets:
        raise SignatureInvalid("no webhook secret configured")
    candidates = [s.encode("utf-8") for s in signatures]
    matched = False
    for secret in secrets:
        expected = expected_signature(secret.reveal(), timestamp, body).encode("ascii")
        for candidate in candidates:
            # Every pair is compared (no early exit), each in constant time.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureInvalid("no v1 signature matches")
    return int(timestamp)
