"""Signed notifications to the merchant's notify URL, with the notification faults applied.

The body is built once per event (retries and duplicate copies carry the same bytes and ``notify_id``); the
headers are signed at each attempt with the bank key in force when the event was emitted. Faults that spoil a
notification (forged, tampered, stale) spoil only the first attempt, so the bank's retry is a good copy.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sandbox.common.delivery import Deliverer, DeliveryJob, Prepare

from .crypto import Sm2Key
from .faults import Fault, FaultBook
from .protocol import H_NONCE, H_SERIAL, H_SIGNATURE, H_TIMESTAMP, beijing, new_nonce, notify_message, now_utc, stamp_id
from .state import Merchant

# The modelled bank's resend intervals after a delivery that was not acknowledged, in seconds (~25 h in all).
RETRY_SCHEDULE_S: tuple[float, ...] = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 54000)
STALE_BY_S = 900
_SPOILERS = ("forged", "tampered", "stale")


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class NotifySender:
    def __init__(self, deliverer: Deliverer, faults: FaultBook) -> None:
        self._deliverer = deliverer
        self._faults = faults
        self._impostor: Sm2Key | None = None
        self._held: dict[tuple[str, str], tuple[list[DeliveryJob], threading.Timer]] = {}
        self._sent_batches: dict[str, tuple[Merchant, str, bytes, dict[str, str]]] = {}
        self._lock = threading.Lock()

    # -- events ------------------------------------------------------------------------------------------

    def payment(self, merchant: Merchant, url: str, data: dict[str, Any]) -> str:
        out_order_no = str(data["out_order_no"])
        labels = {"notify_type": "PAYMENT", "out_trade_no": out_order_no, "merchant_id": merchant.merchant_id}
        notify_id, jobs = self._jobs(merchant, url, self._envelope(merchant, "PAYMENT", {"data": data}), labels)
        hold = self._faults.take("out_of_order", urlsplit(url).path) if jobs else None
        if hold is None:
            self._submit(jobs)
        else:
            for job in jobs:
                job.labels = {**job.labels, "fault": _join(job.labels.get("fault"), "out_of_order")}
            self._hold((merchant.merchant_id, out_order_no), jobs, hold.delay_s)
        return notify_id

    def refund(self, merchant: Merchant, url: str, data: dict[str, Any]) -> str:
        out_order_no = str(data["out_order_no"])
        labels = {"notify_type": "REFUND", "out_trade_no": out_order_no, "merchant_id": merchant.merchant_id,
                  "out_refund_no": str(data["out_refund_no"])}
        notify_id, jobs = self._jobs(merchant, url, self._envelope(merchant, "REFUND", {"data": data}), labels)
        held = self._release((merchant.merchant_id, out_order_no))
        if jobs:
            jobs[0].then.extend(held)  # the held payment notification goes out after the refund's
            self._submit(jobs)
        else:
            self._submit(held)
        return notify_id

    def batch(self, merchant: Merchant, url: str, batch: dict[str, Any]) -> str:
        orders = ",".join(str(item["out_order_no"]) for item in batch["items"])
        labels = {"notify_type": "OFFLINE_BATCH", "out_trade_no": orders, "merchant_id": merchant.merchant_id,
                  "batch_no": str(batch["batch_no"])}
        body = self._envelope(merchant, "OFFLINE_BATCH", {"batch": batch})
        with self._lock:
            self._sent_batches[str(batch["batch_no"])] = (merchant, url, body, labels)
        notify_id, jobs = self._jobs(merchant, url, body, labels)
        self._submit(jobs)
        return notify_id

    def resend_batch(self, batch_no: str) -> str | None:
        """The bank re-sends a batch it already delivered (same notify_id, same items): a duplicate."""
        with self._lock:
            sent = self._sent_batches.get(batch_no)
        if sent is None:
            return None
        merchant, url, body, labels = sent
        notify_id, jobs = self._jobs(merchant, url, body, {**labels, "resent": "true"})
        self._submit(jobs)
        return notify_id

    # -- building --------------------------------------------------------------------------------------

    @staticmethod
    def _envelope(merchant: Merchant, notify_type: str, content: dict[str, Any]) -> bytes:
        return encode({"notify_id": stamp_id("NT", 10), "notify_type": notify_type,
                       "merchant_id": merchant.merchant_id, "create_time": beijing(now_utc()), **content})

    def _jobs(self, merchant: Merchant, url: str, body: bytes, labels: dict[str, str]) -> tuple[str, list[DeliveryJob]]:
        notify_id = str(json.loads(body)["notify_id"])
        path = urlsplit(url).path
        if self._faults.take("no_callback", path):
            self._deliverer.record_suppressed(notify_id, url, {**labels, "fault": "no_callback"})
            return notify_id, []
        fired: dict[str, Fault] = {}
        for name in ("duplicate_callback", "late", *_SPOILERS):
            fault = self._faults.take(name, path)
            if fault is not None:
                fired[name] = fault
        copies = fired["duplicate_callback"].copies if "duplicate_callback" in fired else 1
        delay_s = fired["late"].delay_s if "late" in fired else 0.0
        prepare = self._preparer(merchant, body, frozenset(fired))
        fault_label = ",".join(sorted(fired))
        return notify_id, [DeliveryJob(notify_id, url, prepare, {**labels, "fault": fault_label, "copy": str(n + 1)},
                                       delay_s) for n in range(copies)]

    def _preparer(self, merchant: Merchant, body: bytes, faults: frozenset[str]) -> Prepare:
        key, serial = merchant.bank_key, merchant.bank_key_serial
        impostor = self._impostor_key() if "forged" in faults else None

        def prepare(attempt_no: int) -> tuple[bytes, dict[str, str]]:
            spoil = attempt_no == 1
            timestamp = str(int(time.time()) - (STALE_BY_S if spoil and "stale" in faults else 0))
            nonce = new_nonce()
            signer = impostor if spoil and impostor is not None else key
            signature = signer.sign(notify_message(timestamp, nonce, body))
            sent = _tamper(body) if spoil and "tampered" in faults else body
            return sent, {"Content-Type": "application/json; charset=utf-8", "User-Agent": "ECNY-Gateway-Notify/1.0",
                          H_TIMESTAMP: timestamp, H_NONCE: nonce, H_SERIAL: serial, H_SIGNATURE: signature}

        return prepare

    def _impostor_key(self) -> Sm2Key:
        with self._lock:
            if self._impostor is None:
                self._impostor = Sm2Key.generate()
            return self._impostor

    # -- out_of_order ------------------------------------------------------------------------------------

    def _hold(self, key: tuple[str, str], jobs: list[DeliveryJob], max_hold_s: float) -> None:
        timer = threading.Timer(max_hold_s, lambda: self._submit(self._release(key)))
        timer.daemon = True
        with self._lock:
            self._held[key] = (jobs, timer)
        timer.start()

    def _release(self, key: tuple[str, str]) -> list[DeliveryJob]:
        with self._lock:
            held = self._held.pop(key, None)
        if held is None:
            return []
        held[1].cancel()
        return held[0]

    def _submit(self, jobs: list[DeliveryJob]) -> None:
        for job in jobs:
            self._deliverer.submit(job)

    def cancel_holds(self) -> None:
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for _, timer in held:
            timer.cancel()


def _tamper(body: bytes) -> bytes:
    """Change one business value after signing (an amount, else the merchant id)."""
    envelope = json.loads(body)
    target = envelope.get("data") or (envelope.get("batch") or {}).get("items", [{}])[0]
    for name in ("amount", "refund_amount"):
        if name in target:
            target[name] = "0.01" if target[name] != "0.01" else "0.02"
            break
    else:
        envelope["merchant_id"] = envelope["merchant_id"] + "0"
    return encode(envelope)


def _join(existing: str | None, name: str) -> str:
    return ",".join(part for part in (existing, name) if part)
