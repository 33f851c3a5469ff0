"""Signed webhook events to every webhook the merchant's app registered, with PayPal's retries and the faults.

Each delivery attempt is a new transmission (new ``PAYPAL-TRANSMISSION-ID`` and time), signed at send time over
``transmission_id|transmission_time|webhook_id|crc32(body)`` with the signing certificate that was current when
the event was raised, so an event raised before a certificate rotation keeps verifying with the old one.
Faults that spoil a webhook (forged, tampered, stale) spoil only the first attempt; the retry is genuine.
Every transmission is remembered for the verify-webhook-signature API.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from sandbox.common.delivery import Deliverer, DeliveryJob, Prepare

from .ca import SigningCert, TestCA, impostor_key
from .faults import Fault, FaultBook, FaultName
from .resources import stamp
from .state import SandboxState, Webhook, now_utc

_log = logging.getLogger("sandbox.paypal.webhooks")

# "Up to 25 retries over 3 days" (docs/channels/paypal.md#webhooks); the spacing is this sandbox's model: quick at
# first, then every 4.5 hours, 237,810 s (about 2.75 days) in all.
RETRY_SCHEDULE_S: tuple[float, ...] = (30, 60, 120, 300, 600, 900, 1800, 1800, 3600, 3600, 7200, 7200) + (16200,) * 13
STALE_BY_S = 3600
_PER_EVENT: tuple[FaultName, ...] = ("duplicate_callback", "late", "forged", "tampered", "stale")


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()


@dataclass(frozen=True, slots=True)
class Transmission:
    transmission_id: str
    transmission_time: str
    webhook_id: str
    cert_id: str
    body: bytes  # the bytes that were signed (a tampered delivery sends other bytes)
    signature: str


class CertBook:
    """The signing certificates ever used (served forever), the newest being current."""

    def __init__(self, ca: TestCA) -> None:
        self.ca = ca
        self._certs: list[SigningCert] = [ca.issue_signing_cert()]
        self._lock = threading.Lock()

    def current(self) -> SigningCert:
        with self._lock:
            return self._certs[-1]

    def rotate(self) -> SigningCert:
        fresh = self.ca.issue_signing_cert()
        with self._lock:
            self._certs.append(fresh)
        return fresh

    def all(self) -> list[SigningCert]:
        with self._lock:
            return list(self._certs)

    def find(self, cert_id: str) -> SigningCert | None:
        with self._lock:
            return next((c for c in self._certs if c.cert_id == cert_id), None)


class WebhookSender:
    def __init__(self, deliverer: Deliverer, faults: FaultBook, state: SandboxState, certs: CertBook,
                 base_url: Callable[[], str]) -> None:
        self._deliverer, self._faults, self._state, self._certs = deliverer, faults, state, certs
        self._base_url = base_url
        self._impostor = impostor_key()
        self._transmissions: dict[str, Transmission] = {}
        self._held: dict[str, tuple[list[DeliveryJob], threading.Timer]] = {}
        self._lock = threading.Lock()

    def cert_url(self, cert: SigningCert) -> str:
        return f"{self._base_url()}/v1/notifications/certs/{cert.cert_id}"

    def transmission(self, transmission_id: str) -> Transmission | None:
        with self._lock:
            return self._transmissions.get(transmission_id)

    # -- raising events ----------------------------------------------------------------------------------

    def emit(self, client_id: str, event_type: str, resource_type: str, summary: str, resource: Mapping[str, Any],
             *, order_id: str, attempt_id: str) -> str:
        """Raise one event for every subscribed webhook of the app; returns the event id."""
        event_id = "WH-" + "".join(secrets.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(27))
        event = {
            "id": event_id, "event_version": "1.0", "create_time": stamp(now_utc()), "resource_type": resource_type,
            "resource_version": "2.0", "event_type": event_type, "summary": summary, "resource": resource,
            "links": [{"href": f"{self._base_url()}/v1/notifications/webhooks-events/{event_id}", "rel": "self",
                       "method": "GET"}],
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        labels = {"event_type": event_type, "out_trade_no": attempt_id, "order_id": order_id}
        jobs: list[DeliveryJob] = []
        for webhook in self._state.webhooks_of(client_id):
            if webhook.wants(event_type):
                jobs += self._jobs(webhook, event_id, body, labels)
        held = self._release(order_id)
        hold = self._faults.take("out_of_order", urlsplit(jobs[0].url).path) if jobs else None
        if hold is not None:
            for job in jobs:
                job.labels = {**job.labels, "fault": ",".join(p for p in (job.labels.get("fault"), "out_of_order") if p)}
            self._hold(order_id, jobs, hold.delay_s)
            self._submit(held)
            return event_id
        if jobs:
            jobs[0].then.extend(held)  # an event held back for this order goes out right after this one
            self._submit(jobs)
        else:
            self._submit(held)
        return event_id

    def _jobs(self, webhook: Webhook, event_id: str, body: bytes, labels: dict[str, str]) -> list[DeliveryJob]:
        path = urlsplit(webhook.url).path
        labels = {**labels, "webhook_id": webhook.webhook_id}
        if self._faults.take("no_callback", path):
            self._deliverer.record_suppressed(event_id, webhook.url, {**labels, "fault": "no_callback"})
            return []
        fired: dict[str, Fault] = {}
        for name in _PER_EVENT:
            fault = self._faults.take(name, path)
            if fault is not None:
                fired[name] = fault
        copies = fired["duplicate_callback"].copies if "duplicate_callback" in fired else 1
        delay = fired["late"].delay_s if "late" in fired else 0.0
        prepare = self._preparer(webhook, body, self._certs.current(), frozenset(fired))
        return [DeliveryJob(event_id, webhook.url, prepare, {**labels, "fault": ",".join(sorted(fired)),
                                                               "copy": str(n + 1)}, delay)
                for n in range(copies)]

    def _preparer(self, webhook: Webhook, body: bytes, cert: SigningCert, faults: frozenset[str]) -> Prepare:
        cert_url = self.cert_url(cert)

        def prepare(attempt_no: int) -> tuple[bytes, dict[str, str]]:
            spoil = attempt_no == 1
            transmission_id = str(uuid.uuid1())
            sent_at = now_utc() - (timedelta(seconds=STALE_BY_S) if spoil and "stale" in faults else timedelta())
            transmission_time = stamp(sent_at) or ""
            message = signed_message(transmission_id, transmission_time, webhook.webhook_id, body)
            if spoil and "forged" in faults:
                signature = base64.b64encode(self._impostor.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
            else:
                signature = cert.sign(message)
            with self._lock:
                self._transmissions[transmission_id] = Transmission(
                    transmission_id, transmission_time, webhook.webhook_id, cert.cert_id, body, signature)
            sent = _tamper(body) if spoil and "tampered" in faults else body
            return sent, {
                "Content-Type": "application/json", "User-Agent": "PayPal/AUHD-214.0-57146015",
                "PAYPAL-TRANSMISSION-ID": transmission_id, "PAYPAL-TRANSMISSION-TIME": transmission_time,
                "PAYPAL-TRANSMISSION-SIG": signature, "PAYPAL-CERT-URL": cert_url, "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            }

        return prepare

    # -- out_of_order ------------------------------------------------------------------------------------

    def _hold(self, order_id: str, jobs: list[DeliveryJob], max_hold_s: float) -> None:
        timer = threading.Timer(max_hold_s, lambda: self._submit(self._release(order_id)))
        timer.daemon = True
        with self._lock:
            self._held[order_id] = (jobs, timer)
        timer.start()

    def _release(self, order_id: str) -> list[DeliveryJob]:
        with self._lock:
            held = self._held.pop(order_id, None)
        if held is None:
            return []
        held[1].cancel()
        return held[0]

    def _submit(self, jobs: list[DeliveryJob]) -> None:
        for job in jobs:
            self._deliverer.submit(job)

    def cancel_holds(self) -> None:
        with self._lock:
            held = list(self._held.values())
            self._held.clear()
        for _, timer in held:
            timer.cancel()


def _tamper(body: bytes) -> bytes:
    event = json.loads(body)
    event["summary"] = str(event.get("summary", "")) + " "  # one changed byte breaks the CRC in the signed message
    return json.dumps(event, separators=(",", ":")).encode()
