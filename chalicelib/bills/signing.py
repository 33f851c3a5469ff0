"""Tokens the hub hands out and must recognise when they come back: list cursors and payer bill links.

A token is ``<payload>.<tag>``: the payload is compact JSON in base64url, the tag an HMAC-SHA256 of the
payload under a key for that token's purpose. The keys are derived from the stage's ``LinkKey`` in KMS (an HMAC
key that never leaves KMS): each function asks KMS once for ``GenerateMac(label)`` and keeps the answer as its
signing key, so signing and checking a token cost no call. Labels differ per purpose, so a cursor can never be
replayed as a bill link or the other way round. Anything altered, truncated or signed under another key fails
the tag check; the payload is read only after the tag matched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config.settings import settings
from chalicelib.domain.errors import TemporarilyUnavailable
from chalicelib.storage.aws import client

_LABELS = {"cursor": b"payhub list cursor v1", "bill_link": b"payhub bill link v1"}
_keys: dict[tuple[str, str], bytes] = {}
_lock = threading.Lock()


class BadToken(ValueError):
    """The token is malformed or its tag does not match: it was not made by this hub for this purpose."""


def _key(purpose: str) -> bytes:
    alias = settings().names.link_key_alias
    cached = _keys.get((alias, purpose))
    if cached is not None:
        return cached
    with _lock:
        try:
            answer = client("kms").generate_mac(KeyId=alias, Message=_LABELS[purpose], MacAlgorithm="HMAC_SHA_256")
        except (ClientError, BotoCoreError) as exc:
            raise TemporarilyUnavailable("the signing key is out of reach") from exc
        key: bytes = answer["Mac"]
        _keys[(alias, purpose)] = key
        return key


def forget_keys() -> None:
    """Tests that recreate the KMS key between cases call this."""
    _keys.clear()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(purpose: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    tag = hmac.new(_key(purpose), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(tag)}"


def verify(purpose: str, token: str) -> dict[str, Any]:
    body, dot, tag_text = token.partition(".")
    if not dot or not body or not tag_text or len(token) > 2048 or not token.isascii():
        raise BadToken("malformed")
    try:
        tag = _unb64(tag_text)
    except (binascii.Error, ValueError) as exc:
        raise BadToken("malformed") from exc
    expected = hmac.new(_key(purpose), body.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise BadToken("signature does not match")
    try:
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError) as exc:  # only reachable with our own key: a bug, not an attack
        raise BadToken("unreadable") from exc
    if not isinstance(payload, dict):
        raise BadToken("unreadable")
    return payload

