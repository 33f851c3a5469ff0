"""Object ids: a type prefix plus 24 random base32 characters (fits WeChat's 32-char out_trade_no)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

_ID_BODY = re.compile(r"[a-z2-7]{24}")  # 15 random bytes in lower-case base32


def new_id(prefix: str) -> str:
    return f"{prefix}_{base64.b32encode(secrets.token_bytes(15)).decode().lower()}"


def is_hub_id(value: str, prefix: str) -> bool:
    """``value`` has the shape ``new_id(prefix)`` makes (an id the hub could have issued, recorded or not)."""
    head, sep, body = value.partition("_")
    return bool(sep) and head == prefix and _ID_BODY.fullmatch(body) is not None


def event_id(object_id: str, event_type: str) -> str:
    """Deterministic per (object, type): a duplicate transition cannot mint a second event."""
    digest = hashlib.sha256(f"{object_id}:{event_type}".encode()).digest()
    return "evt_" + base64.b32encode(digest[:15]).decode().lower()
