"""Idempotency keys as Stripe keeps them (docs/channels/stripe.md#idempotency-keys), per account.

Timeline of one key::

    first request ──► [in flight] ── endpoint finishes ──► [stored: status + body, 500s included]
         │                 │                                      │
         │   same key now ─┴─► 409 idempotency_error (retry)      ├─► same parameters: replay, Idempotent-Replayed: true
         │                                                        └─► other parameters: 400 idempotency_error
         └─ fails validation ──► nothing stored, the key is free again

Keys older than ``ttl_s`` (Stripe: at least 24 h) are pruned and may be used afresh.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

KEY_CHARS_MAX = 255
DEFAULT_TTL_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    fingerprint: tuple[str, str, str]  # method, path, canonical parameters
    status: int
    body: bytes
    request_id: str
    stored_at: float


class Claim:
    """The result of asking for a key: a replay, a conflict, or the right to execute (then ``store``/``release``)."""

    def __init__(self, kind: str, answer: StoredAnswer | None = None) -> None:
        self.kind = kind  # "execute" | "replay" | "in_flight" | "mismatch"
        self.answer = answer


class IdempotencyStore:
    def __init__(self, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._stored: dict[tuple[str, str], StoredAnswer] = {}
        self._in_flight: set[tuple[str, str]] = set()

    def claim(self, account: str, key: str, fingerprint: tuple[str, str, str]) -> Claim:
        with self._lock:
            slot = (account, key)
            if slot in self._in_flight:
                return Claim("in_flight")
            stored = self._stored.get(slot)
            if stored is not None and time.monotonic() - stored.stored_at > self._ttl_s:
                del self._stored[slot]
                stored = None
            if stored is not None:
                return Claim("replay" if stored.fingerprint == fingerprint else "mismatch", stored)
            self._in_flight.add(slot)
            return Claim("execute")

    def store(self, account: str, key: str, fingerprint: tuple[str, str, str], status: int, body: bytes,
              request_id: str) -> None:
        with self._lock:
            self._in_flight.discard((account, key))
            self._stored[(account, key)] = StoredAnswer(fingerprint, status, body, request_id, time.monotonic())

    def release(self, account: str, key: str) -> None:
        with self._lock:
            self._in_flight.discard((account, key))

    def stored(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"account": account, "key": key, "status": answer.status, "path": answer.fingerprint[1]}
                    for (account, key), answer in self._stored.items()]
