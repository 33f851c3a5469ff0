"""The sandbox's books: merchants and their certificates, orders, refunds, and a double-entry ledger.

An order is keyed by (merId, orderId); UnionPay finds it again by merId + orderId + txnTime. States:
``SUBMITTED`` (a gateway form was posted or an app ``tn`` issued; no transaction yet), ``EXPIRED`` (that,
past payTimeout), ``SMS_SENT`` (card: the code went out), ``CHALLENGE`` (card: consume accepted, 3-D Secure
pending), ``PAID``, ``FAILED``. Money moves only on ``PAID`` and on a refund's success; each movement is one
ledger entry, dated in Beijing time when it happened, which is what the statement files are made from.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import string
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import rsa

BEIJING = timezone(timedelta(hours=8))
OrderKind = Literal["gateway", "app", "card"]
OrderStatus = Literal["SUBMITTED", "EXPIRED", "SMS_SENT", "CHALLENGE", "PAID", "FAILED"]
TIMED_OUT = "06"  # our model: payTimeout passed while the payer was still authenticating


class AcpError(Exception):
    """A business answer with an ACP respCode (the gateway answers it signed, HTTP 200)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class IllegalTransition(Exception):
    """A control-API action the order's state does not allow (409)."""


def now_utc() -> datetime:
    return datetime.now(UTC)


def digits(count: int) -> str:
    return secrets.choice("123456789") + "".join(secrets.choice(string.digits) for _ in range(count - 1))


def new_query_id(moment: datetime) -> str:
    """21 digits, as UnionPay's queryId (a time prefix keeps them roughly ordered, like the real ones)."""
    return moment.astimezone(BEIJING).strftime("%y%m%d%H%M%S") + digits(9)


@dataclass
class Merchant:
    merchant_id: str
    certs: dict[str, rsa.RSAPublicKey]  # certId (decimal serial) -> merchant public key; several during rotation
    fee_rate_bps: int
    name: str


@dataclass
class Order:
    merchant_id: str
    order_id: str
    txn_time: str
    kind: OrderKind
    amount_fen: int
    biz_type: str
    channel_type: str
    back_url: str
    created_at: datetime
    front_url: str = ""
    pay_timeout: datetime | None = None
    status: OrderStatus = "SUBMITTED"
    orig_resp_code: str = ""  # of the consume, once there is one
    tn: str = ""
    query_id: str = ""
    trace_no: str = ""
    paid_at: datetime | None = None
    card_fingerprint: str = ""
    card_masked: str = ""
    card_kind: str = ""
    card_behaviour: str = ""
    phone_masked: str = ""
    sms_code: str = ""
    sms_failures: int = 0
    challenge_token: str = ""
    instalments: int = 0  # numberOfInstallments of an instalment consume (txnSubType 03)
    refunded_fen: int = 0  # accepted refunds, processing included, so concurrent refunds cannot overrun
    forgotten: bool = False


@dataclass
class Refund:
    merchant_id: str
    order_id: str
    txn_time: str
    orig_order_id: str
    orig_query_id: str
    amount_fen: int
    back_url: str
    biz_type: str
    query_id: str
    created_at: datetime
    status: Literal["PROCESSING", "SUCCEEDED"] = "PROCESSING"
    trace_no: str = ""
    succeeded_at: datetime | None = None
    forgotten: bool = False


@dataclass(frozen=True)
class LedgerEntry:
    entry_id: str
    kind: Literal["payment", "refund"]
    occurred_at: datetime
    merchant_id: str
    debit_account: str
    credit_account: str
    amount_fen: int
    fee_fen: int  # what the merchant pays UnionPay: positive on payments, negative (returned) on refunds
    order_id: str
    query_id: str
    trace_no: str
    biz_type: str
    card_masked: str
    card_kind: str
    orig_order_id: str = ""
    orig_query_id: str = ""
    orig_trace_no: str = ""
    orig_occurred_at: datetime | None = None


def fee_fen(amount_fen: int, rate_bps: int) -> int:
    """amount x rate, rounded half up, integers only."""
    return (amount_fen * rate_bps + 5_000) // 10_000


@dataclass
class SandboxState:
    merchants: dict[str, Merchant] = field(default_factory=dict)
    orders: dict[tuple[str, str], Order] = field(default_factory=dict)
    refunds: dict[tuple[str, str], Refund] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _entry_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _trace_nos: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- merchants -------------------------------------------------------------------------------------------

    def register(self, merchant_id: str, cert_id: str, public_key: rsa.RSAPublicKey, fee_rate_bps: int,
                 name: str) -> None:
        """A new certificate is added next to the old ones: a merchant can rotate keys with overlap."""
        with self._lock:
            merchant = self.merchants.get(merchant_id)
            if merchant is None:
                self.merchants[merchant_id] = Merchant(merchant_id, {cert_id: public_key}, fee_rate_bps, name)
            else:
                merchant.certs[cert_id] = public_key
                merchant.fee_rate_bps, merchant.name = fee_rate_bps, name

    def merchant_key(self, cert_id: str) -> tuple[str, rsa.RSAPublicKey] | None:
        with self._lock:
            for merchant in self.merchants.values():
                if cert_id in merchant.certs:
                    return merchant.merchant_id, merchant.certs[cert_id]
            return None

    def merchant(self, merchant_id: str) -> Merchant | None:
        with self._lock:
            return self.merchants.get(merchant_id)

    # -- orders ------------------------------------------------------------------------------------------------

    def add_order(self, order: Order) -> Order:
        with self._lock:
            if (order.merchant_id, order.order_id) in self.orders:
                raise AcpError("12", "重复交易: this orderId was already used")
            self.orders[(order.merchant_id, order.order_id)] = order
            return copy.deepcopy(order)

    def order(self, merchant_id: str, order_id: str, txn_time: str | None = None) -> Order:
        """The order, when merId + orderId (+ txnTime, when given) name a live one; else 34."""
        with self._lock:
            return copy.deepcopy(self._order(merchant_id, order_id, txn_time))

    def update_order(self, merchant_id: str, order_id: str, **changes: object) -> Order:
        with self._lock:
            order = self._order(merchant_id, order_id, None)
            for name, value in changes.items():
                setattr(order, name, value)
            return copy.deepcopy(order)

    def order_by_challenge(self, token: str) -> Order | None:
        with self._lock:
            for order in self.orders.values():
                if token and order.challenge_token == token and not order.forgotten:
                    self._expire_if_due(order)
                    return copy.deepcopy(order)
            return None

    def orders_named(self, order_id: str, merchant_id: str | None) -> list[Order]:
        with self._lock:
            found = [o for (m, n), o in self.orders.items()
                     if n == order_id and (merchant_id is None or m == merchant_id) and not o.forgotten]
            for order in found:
                self._expire_if_due(order)
            return [copy.deepcopy(order) for order in found]

    def forget(self, merchant_id: str, order_id: str) -> None:
        with self._lock:
            order = self.orders.get((merchant_id, order_id))
            refund = self.refunds.get((merchant_id, order_id))
            if order is None and refund is None:
                raise AcpError("34", "查无此交易")
            for record in (order, refund):
                if record is not None:
                    record.forgotten = True

    def pay(self, merchant_id: str, order_id: str, succeeded: bool, failure_code: str = "61",
            allowed: tuple[OrderStatus, ...] = ("SUBMITTED", "CHALLENGE")) -> Order:
        """The payer finished (or failed): move the order and, on success, book the money."""
        with self._lock:
            order = self._order(merchant_id, order_id, None)
            if order.status not in allowed:
                raise IllegalTransition(f"order {order_id} is {order.status}")
            moment = now_utc()
            order.query_id = order.query_id or new_query_id(moment)
            order.trace_no = f"{next(self._trace_nos) % 1_000_000:06d}"
            if not succeeded:
                order.status, order.orig_resp_code = "FAILED", failure_code
                return copy.deepcopy(order)
            order.status, order.orig_resp_code, order.paid_at = "PAID", "00", moment
            merchant = self.merchants[merchant_id]
            self.ledger.append(LedgerEntry(
                entry_id=f"LE-{next(self._entry_ids):08d}", kind="payment", occurred_at=moment, merchant_id=merchant_id,
                debit_account=f"payer:{order.card_fingerprint[:12] or order.query_id}",
                credit_account=f"merchant:{merchant_id}", amount_fen=order.amount_fen,
                fee_fen=fee_fen(order.amount_fen, merchant.fee_rate_bps), order_id=order.order_id, query_id=order.query_id,
                trace_no=order.trace_no, biz_type=order.biz_type, card_masked=order.card_masked,
                card_kind=order.card_kind,
            ))
            return copy.deepcopy(order)

    # -- refunds -----------------------------------------------------------------------------------------------

    def add_refund(self, merchant_id: str, order_id: str, txn_time: str, orig_query_id: str, amount_fen: int,
                   back_url: str, biz_type: str) -> Refund:
        with self._lock:
            if (merchant_id, order_id) in self.refunds or (merchant_id, order_id) in self.orders:
                raise AcpError("12", "重复交易: this orderId was already used")
            original = next((o for o in self.orders.values() if o.merchant_id == merchant_id and o.query_id == orig_query_id
                             and not o.forgotten), None)
            if original is None or original.status != "PAID":
                raise AcpError("35", "原交易不存在或状态不正确")
            if biz_type != original.biz_type:
                raise AcpError("30", "bizType does not match the original transaction")
            if original.refunded_fen + amount_fen > original.amount_fen:
                raise AcpError("30", "退货金额超限: refunds would exceed the original amount")
            original.refunded_fen += amount_fen
            refund = Refund(merchant_id, order_id, txn_time, original.order_id, orig_query_id, amount_fen, back_url,
                            biz_type, new_query_id(now_utc()), now_utc())
            self.refunds[(merchant_id, order_id)] = refund
            return copy.deepcopy(refund)

    def refund(self, merchant_id: str, order_id: str, txn_time: str | None = None) -> Refund:
        with self._lock:
            refund = self.refunds.get((merchant_id, order_id))
            if refund is None or refund.forgotten or (txn_time is not None and refund.txn_time != txn_time):
                raise AcpError("34", "查无此交易")
            return copy.deepcopy(refund)

    def refunds_of(self, merchant_id: str, order_id: str) -> list[Refund]:
        with self._lock:
            return [copy.deepcopy(r) for r in self.refunds.values()
                    if r.merchant_id == merchant_id and r.orig_order_id == order_id]

    def settle_refund(self, merchant_id: str, order_id: str) -> Refund:
        with self._lock:
            refund = self.refunds[(merchant_id, order_id)]
            if refund.status != "PROCESSING":
                raise IllegalTransition(f"refund {order_id} is {refund.status}")
            moment = now_utc()
            refund.status, refund.succeeded_at = "SUCCEEDED", moment
            refund.trace_no = f"{next(self._trace_nos) % 1_000_000:06d}"
            original = self.orders[(merchant_id, refund.orig_order_id)]
            merchant = self.merchants[merchant_id]
            self.ledger.append(LedgerEntry(
                entry_id=f"LE-{next(self._entry_ids):08d}", kind="refund", occurred_at=moment, merchant_id=merchant_id,
                debit_account=f"merchant:{merchant_id}",
                credit_account=f"payer:{original.card_fingerprint[:12] or original.query_id}",
                amount_fen=refund.amount_fen, fee_fen=-fee_fen(refund.amount_fen, merchant.fee_rate_bps),
                order_id=refund.order_id, query_id=refund.query_id, trace_no=refund.trace_no, biz_type=refund.biz_type,
                card_masked=original.card_masked, card_kind=original.card_kind, orig_order_id=original.order_id,
                orig_query_id=original.query_id, orig_trace_no=original.trace_no, orig_occurred_at=original.paid_at,
            ))
            return copy.deepcopy(refund)

    # -- ledger ------------------------------------------------------------------------------------------------

    def balance_fen(self, account: str) -> int:
        with self._lock:
            return (sum(e.amount_fen for e in self.ledger if e.credit_account == account)
                    - sum(e.amount_fen for e in self.ledger if e.debit_account == account))

    def ledger_entries(self, merchant_id: str | None = None) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self.ledger if merchant_id is None or e.merchant_id == merchant_id]

    def ledger_for_day(self, merchant_id: str, day: date) -> list[LedgerEntry]:
        """One merchant's movements whose Beijing day is ``day``, leaving out forgotten orders and refunds."""
        with self._lock:
            forgotten = {key[1] for key, o in self.orders.items() if o.forgotten and key[0] == merchant_id}
            forgotten |= {key[1] for key, r in self.refunds.items() if r.forgotten and key[0] == merchant_id}
            return [e for e in self.ledger if e.merchant_id == merchant_id and e.order_id not in forgotten
                    and e.occurred_at.astimezone(BEIJING).date() == day]

    # -- internals (lock held) ---------------------------------------------------------------------------------

    def _order(self, merchant_id: str, order_id: str, txn_time: str | None) -> Order:
        order = self.orders.get((merchant_id, order_id))
        if order is None or order.forgotten or (txn_time is not None and order.txn_time != txn_time):
            raise AcpError("34", "查无此交易")
        self._expire_if_due(order)
        return order

    def _expire_if_due(self, order: Order) -> None:
        # UnionPay refuses payment after payTimeout; doing it lazily on read gives the same observable result.
        if order.pay_timeout is None or now_utc() < order.pay_timeout:
            return
        if order.status == "SUBMITTED":
            order.status = "EXPIRED"
        elif order.status == "CHALLENGE":
            order.status, order.orig_resp_code = "FAILED", TIMED_OUT
