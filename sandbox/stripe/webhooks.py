"""Events and their signed delivery to the account's webhook endpoints, with the webhook faults applied.

Each event goes to every endpoint of the account that subscribed to its type. Every attempt is signed when it is
sent (docs/channels/stripe.md#webhook-signature): ``Stripe-Signature: t=<now>,v1=<hex>[,v1=<hex>...],v0=<hex>``
with one ``v1`` per active secret of the endpoint (two while a rolled secret has not expired). Faults that spoil a delivery
(forged, tampered, stale) spoil its first attempt only; the retry is correct. Retries follow Stripe's live-mode
behaviour of backing off over about three days (the exact intervals are modelled, not published). Events go out
``event_delay_s`` after they happen: Stripe delivers asynchronously, so an event seldom reaches a merchant before
the API answer to the request that caused it.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sandbox.common.delivery import Deliverer, DeliveryJob, Prepare

from .errors import StripeError
from .faults import Fault, FaultBook
from .records import WebhookEndpoint
from .state import SandboxState, token

_log = logging.getLogger("sandbox.stripe.webhooks")
API_VERSION = "2024-06-20"
RETRY_SCHEDULE_S: tuple[float, ...] = (60, 300, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400)
STALE_BY_S = 600
_SPOILING = ("duplicate_callback", "late", "forged", "tampered", "stale")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets_: list[str], timestamp: int, body: bytes) -> str:
    parts = [f"t={timestamp}"] + [f"v1={sign(s, timestamp, body)}" for s in secrets_]
    # Test mode also sends a legacy v0 signature, which receivers must ignore.
    parts.append(f"v0={hashlib.sha256(b'v0:' + body).hexdigest()}")
    return ",".join(parts)


def _intent_of(obj: Mapping[str, Any]) -> str:
    if obj.get("object") == "payment_intent":
        return str(obj.get("id"))
    return str(obj.get("payment_intent") or "")


class WebhookSender:
    def __init__(self, state: SandboxState, deliverer: Deliverer, faults: FaultBook, *,
                 event_delay_s: float = 0.0) -> None:
        self._state = state
        self._event_delay_s = event_delay_s
        self._deliverer = deliverer
        self._faults = faults
        self._lock = threading.Lock()
        self.events: dict[str, dict[str, Any]] = {}
        self._held: dict[str, tuple[list[DeliveryJob], threading.Timer]] = {}

    # -- events --------------------------------------------------------------------------------------------------

    def publish(self, account_id: str, event_type: str, obj: dict[str, Any]) -> None:
        account = self._state.account(account_id)
        endpoints = self._state.endpoints_for(account_id, event_type)
        event: dict[str, Any] = {
            "id": token("evt_"), "object": "event", "api_version": API_VERSION, "created": int(time.time()),
            "data": {"object": obj}, "livemode": False, "pending_webhooks": len(endpoints),
            "request": {"id": None, "idempotency_key": None}, "type": event_type,
        }
        if account is not None and account.connect:
            event["account"] = account_id
        with self._lock:
            self.events[event["id"]] = event
        jobs = [job for endpoint in endpoints for job in self._jobs(endpoint, event)]
        self._route(event, jobs)

    def event(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.events.get(event_id)
            return copy.deepcopy(found) if found else None

    def events_of_intent(self, intent_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [{"id": e["id"], "type": e["type"]} for e in self.events.values()
                    if _intent_of(e["data"]["object"]) == intent_id]

    # -- delivery jobs -------------------------------------------------------------------------------------------

    def _labels(self, endpoint: WebhookEndpoint, event: Mapping[str, Any]) -> dict[str, str]:
        obj = event["data"]["object"]
        metadata = obj.get("metadata") or {}
        labels = {"event_type": event["type"], "merchant_id": endpoint.account, "endpoint": endpoint.id,
                  "payment_intent": _intent_of(obj)}
        attempt_id = metadata.get("attempt_id") or self._state.intent_metadata(labels["payment_intent"]).get("attempt_id")
        if attempt_id:
            labels["out_trade_no"] = attempt_id
        if obj.get("object") == "refund" and metadata.get("refund_id"):
            labels["out_refund_no"] = metadata["refund_id"]
        return labels

    def _jobs(self, endpoint: WebhookEndpoint, event: Mapping[str, Any]) -> list[DeliveryJob]:
        labels = self._labels(endpoint, event)
        path = urlsplit(endpoint.url).path
        if self._faults.take("no_callback", path, event["type"]):
            self._deliverer.record_suppressed(event["id"], endpoint.url, {**labels, "fault": "no_callback"})
            return []
        fired: dict[str, Fault] = {}
        for name in _SPOILING:
            fault = self._faults.take(name, path, event["type"])
            if fault is not None:
                fired[name] = fault
        body = json.dumps(event, separators=(",", ":")).encode()
        copies = fired["duplicate_callback"].copies if "duplicate_callback" in fired else 1
        first_delay_s = self._event_delay_s + (fired["late"].delay_s if "late" in fired else 0.0)
        prepare = self._preparer(endpoint, body, frozenset(fired))
        return [DeliveryJob(event["id"], endpoint.url, prepare,
                            {**labels, "fault": ",".join(sorted(fired)), "copy": str(n + 1)}, first_delay_s)
                for n in range(copies)]

    def _preparer(self, endpoint: WebhookEndpoint, body: bytes, faults: frozenset[str]) -> Prepare:
        impostor = token("whsec_", 32)

        def prepare(attempt_no: int) -> tuple[bytes, dict[str, str]]:
            spoil = attempt_no == 1
            try:  # the secrets as they are now: a rolled secret applies to retries already queued
                current = self._state.endpoint(None, endpoint.id)
            except StripeError:  # deleted meanwhile: sign as it was
                current = endpoint
            keys = [impostor] if spoil and "forged" in faults else current.active_secrets(time.time())
            timestamp = int(time.time()) - (STALE_BY_S if spoil and "stale" in faults else 0)
            header = signature_header(keys, timestamp, body)
            sent = _tamper(body) if spoil and "tampered" in faults else body
            return sent, {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header,
                          "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}

        return prepare

    # -- out_of_order: a payment's success is held until a later event about the same intent has gone out ------

    def _route(self, event: Mapping[str, Any], jobs: list[DeliveryJob]) -> None:
        if not jobs:
            return
        intent_id = _intent_of(event["data"]["object"])
        if event["type"] == "payment_intent.succeeded":
            path = urlsplit(jobs[0].url).path
            hold = self._faults.take("out_of_order", path, event["type"])
            if hold is not None:
                for job in jobs:
                    job.labels = {**job.labels, "fault": ",".join(p for p in (job.labels.get("fault"), "out_of_order") if p)}
                self._hold(intent_id, jobs, hold.delay_s)
                return
        held = self._release(intent_id)
        jobs[0].then.extend(held)
        for job in jobs:
            self._deliverer.submit(job)

    def _hold(self, intent_id: str, jobs: list[DeliveryJob], max_hold_s: float) -> None:
        def release_late() -> None:
            for job in self._release(intent_id):
                self._deliverer.submit(job)

        timer = threading.Timer(max_hold_s, release_late)
        timer.daemon = True
        with self._lock:
            self._held[intent_id] = (jobs, timer)
        timer.start()

    def _release(self, intent_id: str) -> list[DeliveryJob]:
        with self._lock:
            held = self._held.pop(intent_id, None)
        if held is None:
            return []
        jobs, timer = held
        timer.cancel()
        return jobs

    def cancel_holds(self) -> None:
        with self._lock:
            held = list(self._held.values())
            self._held.clear()
        for _, timer in held:
            timer.cancel()


def _tamper(body: bytes) -> bytes:
    event = json.loads(body)
    event["data"]["object"]["amount"] = int(event["data"]["object"].get("amount") or 0) + 1
    return json.dumps(event, separators=(",", ":")).encode()
