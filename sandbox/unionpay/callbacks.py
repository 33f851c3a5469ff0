"""Signed ``backUrl`` notifications (form POST, UTF-8) with UnionPay's re-sends and the callback faults.

UnionPay re-sends a notification until the merchant answers HTTP 200. Its real schedule is not published
(docs/channels/unionpay.md#notifications), so the sandbox models one: after 15 s, 1, 2, 4, 8, 16 and 32 minutes (times
``retry_scale``). Faults that spoil a notification (forged, tampered) spoil only the first attempt: the
re-send is correct, as a real re-send would be. Notifications go out for successful transactions only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.common.delivery import Deliverer, DeliveryJob, Prepare

from .faults import Fault, FaultBook
from .pki import UnionPayKeys, new_key, sign
from .state import BEIJING, Order, Refund
from .wire import encode_form

_log = logging.getLogger("sandbox.unionpay.callbacks")
RETRY_SCHEDULE_S: tuple[float, ...] = (15, 60, 120, 240, 480, 960, 1920)
_PER_EVENT_FAULTS = ("duplicate_callback", "late", "forged", "tampered")


def payment_fields(order: Order) -> dict[str, str]:
    assert order.paid_at is not None
    paid = order.paid_at.astimezone(BEIJING)
    fields = {
        "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "bizType": order.biz_type,
        "txnType": "01", "txnSubType": "01", "merId": order.merchant_id, "orderId": order.order_id,
        "txnTime": order.txn_time, "txnAmt": str(order.amount_fen), "currencyCode": "156", "queryId": order.query_id,
        "respCode": "00", "respMsg": "成功[0000000]", "settleAmt": str(order.amount_fen), "settleCurrencyCode": "156",
        "settleDate": paid.strftime("%m%d"), "traceNo": order.trace_no, "traceTime": paid.strftime("%m%d%H%M%S"),
    }
    if order.card_masked:
        fields.update({"accNo": order.card_masked, "payCardType": "02" if order.card_kind == "credit" else "01"})
    if order.instalments:  # an instalment consume is told back as one
        fields.update({"txnSubType": "03", "instalTransInfo": f"{{numberOfInstallments={order.instalments:02d}}}"})
    return fields


def refund_fields(refund: Refund) -> dict[str, str]:
    assert refund.succeeded_at is not None
    done = refund.succeeded_at.astimezone(BEIJING)
    return {
        "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "bizType": refund.biz_type,
        "txnType": "04", "txnSubType": "00", "merId": refund.merchant_id, "orderId": refund.order_id,
        "txnTime": refund.txn_time, "txnAmt": str(refund.amount_fen), "currencyCode": "156", "queryId": refund.query_id,
        "origQryId": refund.orig_query_id, "respCode": "00", "respMsg": "成功[0000000]",
        "settleAmt": str(refund.amount_fen), "settleCurrencyCode": "156", "settleDate": done.strftime("%m%d"),
        "traceNo": refund.trace_no, "traceTime": done.strftime("%m%d%H%M%S"),
    }


class CallbackSender:
    def __init__(self, deliverer: Deliverer, faults: FaultBook, keys: UnionPayKeys) -> None:
        self._deliverer = deliverer
        self._faults = faults
        self._keys = keys
        self._impostor: rsa.RSAPrivateKey | None = None  # a key UnionPay never owned, made when first needed
        self._held: dict[tuple[str, str], tuple[list[DeliveryJob], threading.Timer]] = {}
        self._lock = threading.Lock()

    def payment_succeeded(self, order: Order, hub_id: str) -> None:
        labels = {"event_type": "consume", "order_id": order.order_id, "out_trade_no": hub_id,
                  "merchant_id": order.merchant_id}
        jobs = self._jobs(order.back_url, payment_fields(order), labels)
        if not jobs:
            return
        hold = self._faults.take("out_of_order", urlsplit(order.back_url).path)
        if hold is None:
            self._submit(jobs)
            return
        for job in jobs:
            job.labels = {**job.labels, "fault": ",".join(p for p in (job.labels.get("fault"), "out_of_order") if p)}
        self._hold((order.merchant_id, order.order_id), jobs, hold.delay_s)

    def refund_succeeded(self, refund: Refund, hub_id: str) -> None:
        labels = {"event_type": "refund", "order_id": refund.order_id, "out_trade_no": hub_id,
                  "merchant_id": refund.merchant_id, "orig_order_id": refund.orig_order_id}
        jobs = self._jobs(refund.back_url, refund_fields(refund), labels)
        held = self._release((refund.merchant_id, refund.orig_order_id))
        if not jobs:
            self._submit(held)
            return
        jobs[0].then.extend(held)
        self._submit(jobs)

    def _jobs(self, url: str, fields: Mapping[str, str], labels: dict[str, str]) -> list[DeliveryJob]:
        event_id = f"{fields['queryId']}:{fields['txnType']}:{fields['respCode']}"
        path = urlsplit(url).path
        if self._faults.take("no_callback", path):
            self._deliverer.record_suppressed(event_id, url, {**labels, "fault": "no_callback"})
            return []
        fired: dict[str, Fault] = {}
        for name in _PER_EVENT_FAULTS:
            fault = self._faults.take(name, path)
            if fault is not None:
                fired[name] = fault
        copies = fired["duplicate_callback"].copies if "duplicate_callback" in fired else 1
        delay_s = fired["late"].delay_s if "late" in fired else 0.0
        prepare = self._preparer(dict(fields), frozenset(fired))
        return [DeliveryJob(event_id, url, prepare, {**labels, "fault": ",".join(sorted(fired)), "copy": str(n + 1)},
                            delay_s) for n in range(copies)]

    def _preparer(self, fields: dict[str, str], faults: frozenset[str]) -> Prepare:
        keys = self._keys
        impostor = self._impostor_key() if "forged" in faults else None

        def prepare(attempt_no: int) -> tuple[bytes, dict[str, str]]:
            spoil = attempt_no == 1
            signed = sign(fields, keys.signer, key=impostor if spoil and impostor is not None else None)
            if spoil and "tampered" in faults:
                signed["respMsg"] += " "  # one changed byte after signing is enough
            return encode_form(signed), {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
                                         "User-Agent": "UnionPay/1.0 (sandbox)"}

        return prepare

    def _impostor_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._impostor is None:
                self._impostor = new_key()
            return self._impostor

    # -- out_of_order --------------------------------------------------------------------------------------------

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
