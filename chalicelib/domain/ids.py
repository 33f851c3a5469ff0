"""Object ids: a type prefix plus 24 random base32 characters (fits WeChat's 32-char out_trade_no).

A payment attempt's id names its payment: ``att_`` + the payment id's 24 characters + 3 random ones (31 in
all, still within WeChat's 32), so whoever holds an attempt id (a channel callback, a statement row, the
status sweep) reads the attempt and its payment in one ``BatchGetItem``. Attempts recorded before this
carry 24 random characters and name no payment; they are still recognised.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

_ID_BODY = re.compile(r"[a-z2-7]{24}")  # 15 random bytes in lower-case base32
_ATTEMPT_BODY = re.compile(r"[a-z2-7]{24}(?:[a-z2-7]{3})?")  # payment body + 3 random, or the older 24 random
_ATTEMPT_SUFFIX_CHARS = 3
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def new_id(prefix: str) -> str:
    return f"{prefix}_{base64.b32encode(secrets.token_bytes(15)).decode().lower()}"


def is_hub_id(value: str, prefix: str) -> bool:
    """``value`` has the shape ``new_id(prefix)`` makes (an id the hub could have issued, recorded or not)."""
    head, sep, body = value.partition("_")
    shape = _ATTEMPT_BODY if prefix == "att" else _ID_BODY
    return bool(sep) and head == prefix and shape.fullmatch(body) is not None


def new_attempt_id(payment_id: str) -> str:
    """A new attempt of ``payment_id``. Three random characters (32,768 values) tell a payment's attempts apart;
    an attempt is written with a condition that it is new, so the rare repeat fails loudly instead of merging."""
    head, _, body = payment_id.partition("_")
    if head != "pay" or _ID_BODY.fullmatch(body) is None:
        raise ValueError(f"{payment_id!r} is not a payment id")
    return f"att_{body}{''.join(secrets.choice(_BASE32) for _ in range(_ATTEMPT_SUFFIX_CHARS))}"


def payment_id_of(attempt_id: str) -> str | None:
    """The payment an attempt id names, or None for an attempt id of the older, unnamed shape."""
    head, _, body = attempt_id.partition("_")
    if head != "att" or len(body) != 24 + _ATTEMPT_SUFFIX_CHARS or _ATTEMPT_BODY.fullmatch(body) is None:
        return None
    return f"pay_{body[:24]}"


def event_id(object_id: str, event_type: str) -> str:
    """Deterministic per (object, type): a duplicate transition cannot mint a second event."""
    digest = hashlib.sha256(f"{object_id}:{event_type}".encode()).digest()
    return "evt_" + base64.b32encode(digest[:15]).decode().lower()
