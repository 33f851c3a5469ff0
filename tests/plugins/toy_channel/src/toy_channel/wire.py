"""What both sides of the toy protocol share: the signature over a body."""

from __future__ import annotations

import hashlib
import hmac


def sign(body: bytes, key: str) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, key: str, signature: str | None) -> bool:
    return signature is not None and hmac.compare_digest(sign(body, key), signature)
