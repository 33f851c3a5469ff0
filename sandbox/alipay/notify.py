"""Signed async notifies (``trade_status_sync``) to the merchant's notify_url, with the notify faults applied.

Form-encoded POST; signed with the Alipay key of the merchant's sign type under the payment-notify rule
(``sign`` and ``sign_type`` left out of the signed string). Alipay re-sends until the answer is exactly
``success``: 4m, 10m, 10m, 1h, 2h, 6h, 15h after the first try (scaled by ``retry_scale``), with the same
``notify_id`` and signature every time. Forged and tampered faults spoil only the first try.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import threading
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from sandbox.common.delivery import Deliverer, DeliveryJob, Prepare

from .crypto import AlipayKey, SignType, canonical
from .faults import Fault, FaultBook
from .state import BEIJING, Merchant, Order, Refund, alipay_time, now_utc

_log = logging.getLogger("sandbox.alipay.notify")

RETRY_SCHEDULE_S: tuple[float, ...] = (240, 600, 600, 3600, 7200, 21600, 54000)
SUCCESS_ANSWER = b"success"
_PER_NOTIFY_FAULTS = ("duplicate_callback", "late", "forged", "tampered")


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def accepted(status: int, body: bytes) -> bool:
    """Alipay's rule: the merchant answered exactly ``success`` (7 bytes, nothing else)."""
    return status == 200 and body == SUCCESS_ANSWER


def _notify_id() -> str:
    return f"{datetime.now(BEIJING):%Y%m%d}00222" + "".join(secrets.choice(string.digits) for _ in range(21))


def trade_fields(merchant: Merchant, order: Order) -> dict[str, str]:
    """What a trade_status_sync notify says about the trade itself."""
    total = yuan(order.terms.total_fen)
    fields = {
        "notify_type": "trade_status_sync", "app_id": merchant.app_id, "auth_app_id": merchant.app_id,
        "charset": "utf-8", "version": "1.0", "sign_type": merchant.sign_type, "trade_no": order.trade_no,
        "out_trade_no": order.out_trade_no, "buyer_id": order.buyer_id, "buyer_logon_id": order.buyer_logon_id,
        "seller_id": merchant.pid, "trade_status": order.status, "total_amount": total,
        "subject": order.terms.subject, "gmt_create": alipay_time(order.created_at),
    }
    if order.paid_at is not None:
        fields.update({
            "receipt_amount": total, "invoice_amount": total, "buyer_pay_amount": total, "point_amount": "0.00",
            "gmt_payment": alipay_time(order.paid_at),
            "fund_bill_list": json.dumps([{"amount": total, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")),
        })
    if order.status == "TRADE_CLOSED" and order.closed_at is not None:
        fields["gmt_close"] = alipay_time(order.closed_at)
    return fields


class NotifySender:
    def __init__(self, deliverer: Deliverer, faults: FaultBook, alipay_keys: Mapping[SignType, AlipayKey]) -> None:
        self._deliverer = deliverer
        self._faults = faults
        self._keys = alipay_keys
        self._impostors: dict[SignType, AlipayKey] = {}  # keys Alipay never owned, for forged notifies
        self._held: dict[tuple[str, str], tuple[list[DeliveryJob], threading.Timer]] = {}
        self._lock = threading.Lock()

    def trade_changed(self, merchant: Merchant, order: Order) -> None:
        """TRADE_SUCCESS or TRADE_CLOSED (unpaid) of a trade; out_of_order holds it back behind its refund."""
        labels = {"event_type": "payment", "trade_status": order.status, "out_trade_no": order.out_trade_no,
                  "app_id": merchant.app_id}
        jobs = self._jobs(merchant, order.terms.notify_url, trade_fields(merchant, order), labels)
        if not jobs:
            return
        hold = self._faults.take("out_of_order", urlsplit(order.terms.notify_url).path)
        if hold is None:
            self._submit(jobs)
            return
        for job in jobs:
            job.labels = {**job.labels, "fault": ",".join(p for p in (job.labels.get("fault"), "out_of_order") if p)}
        self._hold((merchant.app_id, order.out_trade_no), jobs, hold.delay_s)

    def refunded(self, merchant: Merchant, order: Order, refund: Refund) -> None:
        """A refund went through: the trade's notify with ``out_biz_no`` (our refund number), the refunded total so
        far in ``refund_fee``, and TRADE_CLOSED once the whole amount is back with the payer."""
        fields = trade_fields(merchant, order)
        fields.update({"out_biz_no": refund.out_request_no, "refund_fee": yuan(order.refunded_fen),
                       "gmt_refund": alipay_time(refund.refunded_at) + f".{refund.refunded_at.microsecond // 1000:03d}"})
        labels = {"event_type": "refund", "trade_status": order.status, "out_trade_no": order.out_trade_no,
                  "app_id": merchant.app_id, "out_biz_no": refund.out_request_no}
        jobs = self._jobs(merchant, order.terms.notify_url, fields, labels)
        held = self._release((merchant.app_id, order.out_trade_no))
        if not jobs:
            self._submit(held)
            return
        jobs[0].then.extend(held)
        self._submit(jobs)

    # -- building --------------------------------------------------------------------------------------

    def _jobs(self, merchant: Merchant, url: str, fields: dict[str, str], labels: dict[str, str]) -> list[DeliveryJob]:
        if not url:
            return []  # no notify_url given: Alipay sends nothing
        notify_id = _notify_id()
        params = {"notify_time": alipay_time(now_utc()), "notify_id": notify_id, **fields}
        path = urlsplit(url).path
        if self._faults.take("no_callback", path):
            self._deliverer.record_suppressed(notify_id, url, {**labels, "fault": "no_callback"})
            return []
        fired: dict[str, Fault] = {}
        for name in _PER_NOTIFY_FAULTS:
            fault = self._faults.take(name, path)
            if fault is not None:
                fired[name] = fault
        copies = fired["duplicate_callback"].copies if "duplicate_callback" in fired else 1
        delay_s = fired["late"].delay_s if "late" in fired else 0.0
        prepare = self._preparer(merchant, params, frozenset(fired))
        label = ",".join(sorted(fired))
        return [DeliveryJob(notify_id, url, prepare, {**labels, "notify_id": notify_id, "fault": label,
                                                      "copy": str(n + 1)}, delay_s, accept=accepted)
                for n in range(copies)]

    def _preparer(self, merchant: Merchant, params: dict[str, str], faults: frozenset[str]) -> Prepare:
        signed = {**params, "sign": self._keys[merchant.sign_type].sign(canonical(params, ("sign", "sign_type")))}
        good = urlencode(signed).encode("ascii")
        spoiled = good
        if "forged" in faults:
            impostor = self._impostor(merchant.sign_type)
            spoiled = urlencode({**params, "sign": impostor.sign(canonical(params, ("sign", "sign_type")))}).encode()
        elif "tampered" in faults:  # a signed field changed after signing
            spoiled = urlencode({**signed, "subject": signed.get("subject", "") + " (changed)"}).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "User-Agent": "Mozilla/4.0"}

        def prepare(attempt_no: int) -> tuple[bytes, dict[str, str]]:
            return (spoiled if attempt_no == 1 else good), headers

        return prepare

    def _impostor(self, sign_type: SignType) -> AlipayKey:
        with self._lock:
            if sign_type not in self._impostors:
                self._impostors[sign_type] = AlipayKey.generate(sign_type)
            return self._impostors[sign_type]

    # -- out_of_order holding ----------------------------------------------------------------------------

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
            held = list(self._held.values())
            self._held.clear()
        for _, timer in held:
            timer.cancel()
