"""Signed, encrypted notifications to the merchant's notify_url, with the callback faults applied.

Envelope and resource per docs/channels/wechatpay.md#callbacks; AES-256-GCM with the APIv3 key in RSA mode, SM4-GCM with
SM3(APIv3 key)[:16] in SM2 mode. Faults that corrupt a callback (forged, tampered, stale) spoil only the first
attempt: the retry is correct, the way WeChat re-sends a good copy after a probe is rejected.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import string
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from chalicelib.crypto.aead import aes_gcm_encrypt, sm4_gcm_encrypt, sm4_key_from_secret
from sandbox.common.delivery import Deliverer, DeliveryJob, Prepare

from .auth import SCHEMES, PlatformKeys, Signer, SignType, new_signer, random_nonce, response_message
from .faults import Fault, FaultBook, FaultMode
from .resources import refund_notification_json, transaction_json
from .state import BEIJING, Merchant, Order, Refund, rfc3339_beijing

_log = logging.getLogger("sandbox.wechatpay.callbacks")

# WeChat's documented re-send intervals after a failed delivery, in seconds
# (docs/channels/wechatpay.md#answering-and-wechats-retry-schedule).
RETRY_SCHEDULE_S: tuple[float, ...] = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)
STALE_BY_S = 600
_PER_EVENT_FAULTS: tuple[FaultMode, ...] = (
    "duplicate_callback", "late_callback", "forged_callback", "tampered_callback", "stale_callback",
)
_NONCE_ALPHABET = string.ascii_letters + string.digits


def encrypt_resource(merchant: Merchant, original_type: str, plaintext: Mapping[str, Any]) -> dict[str, str]:
    nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(12))
    data = json.dumps(plaintext, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    key = merchant.apiv3_key.encode("ascii")
    if merchant.sign_type == "SM2":
        sealed = sm4_gcm_encrypt(sm4_key_from_secret(key), nonce.encode(), data, original_type.encode())
        algorithm = "AEAD_SM4_GCM"
    else:
        sealed = aes_gcm_encrypt(key, nonce.encode(), data, original_type.encode())
        algorithm = "AEAD_AES_256_GCM"
    return {"original_type": original_type, "algorithm": algorithm,
            "ciphertext": base64.b64encode(sealed).decode(), "associated_data": original_type, "nonce": nonce}


def _event_id() -> str:
    return f"EV-{datetime.now(BEIJING):%Y%m%d%H%M%S}" + "".join(secrets.choice(string.digits) for _ in range(7))


class CallbackSender:
    def __init__(self, deliverer: Deliverer, faults: FaultBook, platform_keys: PlatformKeys) -> None:
        self._deliverer = deliverer
        self._faults = faults
        self._platform_keys = platform_keys
        # A key WeChat never owned, per sign type, for forged callbacks; made on first use (RSA keygen is slow).
        self._impostors: dict[SignType, Signer] = {}
        # out_of_order: payment callbacks held back until their order's refund callback has gone out.
        self._held: dict[tuple[str, str], tuple[list[DeliveryJob], threading.Timer]] = {}
        self._lock = threading.Lock()

    def payment_succeeded(self, merchant: Merchant, order: Order) -> None:
        plaintext = transaction_json(order)
        labels = {"event_type": "TRANSACTION.SUCCESS", "out_trade_no": order.out_trade_no, "mchid": order.mchid}
        jobs = self._jobs(merchant, order.request.notify_url, "TRANSACTION.SUCCESS", "支付成功", "transaction",
                          plaintext, labels)
        if not jobs:
            return
        hold = self._faults.take("out_of_order", urlsplit(order.request.notify_url).path)
        if hold is None:
            self._submit(jobs)
            return
        for job in jobs:
            job.labels = {**job.labels, "fault": _join(job.labels.get("fault"), "out_of_order")}
        self._hold(order.mchid, order.out_trade_no, jobs, hold.delay_s)

    def refund_succeeded(self, merchant: Merchant, refund: Refund) -> None:
        labels = {"event_type": "REFUND.SUCCESS", "out_trade_no": refund.out_trade_no, "mchid": merchant.mchid,
                  "out_refund_no": refund.request.out_refund_no}
        jobs = self._jobs(merchant, refund.notify_url, "REFUND.SUCCESS", "退款成功", "refund",
                          refund_notification_json(refund), labels)
        held = self._release((merchant.mchid, refund.out_trade_no))
        if not jobs:  # refund callback suppressed: let the held payment callback go on its own
            self._submit(held)
            return
        jobs[0].then.extend(held)
        self._submit(jobs)

    # -- building --------------------------------------------------------------------------------------

    def _jobs(self, merchant: Merchant, url: str, event_type: str, summary: str, original_type: str,
              plaintext: Mapping[str, Any], labels: dict[str, str]) -> list[DeliveryJob]:
        """One job per copy to send (none when ``no_callback`` fires), with this event's faults baked in."""
        event_id = _event_id()
        envelope: dict[str, Any] = {
            "id": event_id, "create_time": rfc3339_beijing(datetime.now(BEIJING)),
            "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
            "resource": encrypt_resource(merchant, original_type, plaintext),
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        path = urlsplit(url).path
        if self._faults.take("no_callback", path):
            self._deliverer.record_suppressed(event_id, url, {**labels, "fault": "no_callback"})
            _log.info("no_callback: %s for %s was never sent", event_type, labels.get("out_trade_no"))
            return []
        fired: dict[str, Fault] = {}
        for mode in _PER_EVENT_FAULTS:
            fault = self._faults.take(mode, path)
            if fault is not None:
                fired[mode] = fault
        copies = fired["duplicate_callback"].copies if "duplicate_callback" in fired else 1
        first_delay_s = fired["late_callback"].delay_s if "late_callback" in fired else 0.0
        prepare = self._preparer(merchant, body, frozenset(fired))
        fault_label = ",".join(sorted(fired))
        return [
            DeliveryJob(event_id, url, prepare, {**labels, "fault": fault_label, "copy": str(n + 1)},
                        first_delay_s)
            for n in range(copies)
        ]

    def _preparer(self, merchant: Merchant, body: bytes, faults: frozenset[str]) -> Prepare:
        platform = self._platform_keys.for_merchant(merchant.mchid, merchant.sign_type)
        serial = platform.public_key_id if merchant.serial_mode == "public_key_id" else platform.platform_serial
        impostor = self._impostor(merchant.sign_type) if "forged_callback" in faults else None

        def prepare(attempt_no: int) -> tuple[bytes, dict[str, str]]:
            spoil = attempt_no == 1
            timestamp = int(time.time()) - (STALE_BY_S if spoil and "stale_callback" in faults else 0)
            nonce = random_nonce()
            signer = impostor if spoil and impostor is not None else platform.signer
            signature = signer.sign(response_message(str(timestamp), nonce, body))
            sent = _tamper(body) if spoil and "tampered_callback" in faults else body
            return sent, {
                "Content-Type": "application/json", "User-Agent": "Mozilla/4.0",
                "Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": signature, "Wechatpay-Serial": serial,
                "Wechatpay-Signature-Type": SCHEMES[merchant.sign_type],
            }

        return prepare

    def _impostor(self, sign_type: SignType) -> Signer:
        with self._lock:
            if sign_type not in self._impostors:
                self._impostors[sign_type] = new_signer(sign_type)
            return self._impostors[sign_type]

    # -- out_of_order holding ----------------------------------------------------------------------------

    def _hold(self, mchid: str, out_trade_no: str, jobs: list[DeliveryJob], max_hold_s: float) -> None:
        key = (mchid, out_trade_no)
        # If no refund ever comes, the payment callback must still go out eventually.
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
        jobs, timer = held
        timer.cancel()
        return jobs

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
    envelope = json.loads(body)
    envelope["summary"] = envelope["summary"] + " "  # one changed byte is enough to break the signature
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _join(existing: str | None, mode: str) -> str:
    return ",".join(part for part in (existing, mode) if part)
