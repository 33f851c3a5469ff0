"""The gateway's wire conventions as the bank implements them: header names, canonical strings, codes, times.

Written from docs/channels/ecny.md, independently of the hub's adapter, so each side checks the other.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y%m%d%H%M%S"
TIMESTAMP_WINDOW_S = 300

H_MERCHANT = "x-ecny-merchant-id"
H_TIMESTAMP = "x-ecny-timestamp"
H_NONCE = "x-ecny-nonce"
H_SERIAL = "x-ecny-serial"
H_SIGNATURE = "x-ecny-signature"


def request_message(path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return b"POST\n" + path.encode() + b"\n" + timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body


def response_message(request_nonce: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return b"RESPONSE\n" + request_nonce.encode() + b"\n" + timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body


def notify_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return b"NOTIFY\n" + timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body


def new_nonce() -> str:
    return secrets.token_hex(16)


def digits(count: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(count))


def now_utc() -> datetime:
    return datetime.now(UTC)


def beijing(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> datetime:
    """ValueError unless ``yyyyMMddHHmmss``."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def fen(text: str) -> int:
    """ValueError unless a plain non-negative yuan string with exactly two decimals."""
    whole, dot, cents = text.partition(".")
    if (not dot or len(cents) != 2 or not cents.isdigit() or not whole.isdigit() or len(whole) > 13
            or (len(whole) > 1 and whole[0] == "0") or not whole.isascii() or not cents.isascii()):
        raise ValueError(f"{text[:20]!r} is not yuan with two decimals")
    return int(whole) * 100 + int(cents)


def stamp_id(prefix: str, random_digits: int) -> str:
    return f"{prefix}{datetime.now(BEIJING):%Y%m%d%H%M%S}{digits(random_digits)}"
