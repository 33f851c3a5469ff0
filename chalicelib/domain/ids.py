"""Object ids: a type prefix plus 24 random base32 characters (fits WeChat's 32-char out_trade_no)."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{base64.b32encode(secrets.token_bytes(15)).decode().lower()}"


def event_id(object_id: str, event_type: str) -> str:
    """Deterministic per (object, type): a duplicate transition cannot mint a second event."""
    digest = hashlib.sha256(f"{object_id}:{event_type}".encode()).digest()
    return "evt_" + base64.b32encode(digest[:15]).decode().lower()
