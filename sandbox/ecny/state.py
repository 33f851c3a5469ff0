"""The bank's own books: merchants, orders, refunds, offline payments awaiting clearing, and a ledger.

Everything behind one lock; readers get copies. Order states move only along ``_ORDER_MOVES``; the one
exception is offline clearing, which books a payment whatever the order's state (short of already paid):
an offline wallet has already handed over the money, and the bank cannot give it back to the device.

Ledger: one entry per money movement, never edited: a payment moves ``wallet:<payer> -> merchant:<id>``,
a refund the reverse. The statement is a pure function of the entries of a Beijing day (the day the bank
booked the movement), so statement faults alter the rendering, never the books.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from .crypto import Sm2Key
from .errors import (
    BalanceInsufficient,
    OrderClosed,
    OrderExists,
    OrderNotFound,
    OrderNotPaid,
    OrderPaid,
    RefundExceeds,
    RefundExists,
    RefundNotFound,
)
from .protocol import BEIJING, digits, now_utc, stamp_id

OrderStatus = Literal["WAITING", "PAYING", "SUCCESS", "PART_REFUNDED", "REFUNDED", "FAILED", "CLOSED"]
RefundStatus = Literal["PROCESSING", "SUCCESS", "FAILED"]
PAID: frozenset[str] = frozenset({"SUCCESS", "PART_REFUNDED", "REFUNDED"})

_ORDER_MOVES: dict[str, frozenset[str]] = {
    "WAITING": frozenset({"PAYING", "SUCCESS", "FAILED", "CLOSED"}),
    "PAYING": frozenset({"SUCCESS", "FAILED"}),
    "SUCCESS": frozenset({"PART_REFUNDED", "REFUNDED"}),
    "PART_REFUNDED": frozenset({"PART_REFUNDED", "REFUNDED"}),
    "REFUNDED": frozenset(),
    "FAILED": frozenset({"CLOSED"}),
    "CLOSED": frozenset(),
}


class IllegalTransition(Exception):
    """A payer action asked for a move the state machine does not allow (a control-API 409)."""


@dataclass(slots=True)
class Merchant:
    merchant_id: str
    merchant_keys: dict[str, str]  # serial -> SM2 public key hex; several while the merchant rotates
    bank_key: Sm2Key
    bank_key_serial: str
    data_key_id: str
    data_key: bytes = field(repr=False)
    fee_rate_bps: int = 0  # e-CNY acceptance is commonly free for merchants


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """The parsed pre-order body; equality decides whether a repeat is a retry."""

    merchant_id: str
    out_order_no: str
    amount_fen: int
    subject: str
    notify_url: str
    expire_at: datetime | None
    client_ip: str


@dataclass(slots=True)
class Order:
    request: OrderRequest
    order_no: str
    created_at: datetime
    status: OrderStatus = "WAITING"
    txn_id: str | None = None
    pay_time: datetime | None = None  # when the payer paid (offline: when the wallet was tapped)
    booked_at: datetime | None = None  # when the bank booked the money (offline: at clearing)
    offline: bool = False
    device_id: str | None = None
    payer_wallet: str | None = None
    refunded_fen: int = 0  # accepted refunds, PROCESSING included
    forgotten: bool = False

    @property
    def merchant_id(self) -> str:
        return self.request.merchant_id

    @property
    def out_order_no(self) -> str:
        return self.request.out_order_no


@dataclass(frozen=True, slots=True)
class RefundRequest:
    merchant_id: str
    out_order_no: str
    out_refund_no: str
    amount_fen: int
    order_amount_fen: int
    reason: str
    notify_url: str


@dataclass(slots=True)
class Refund:
    request: RefundRequest
    refund_no: str
    created_at: datetime
    status: RefundStatus = "PROCESSING"
    txn_id: str | None = None
    success_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class OfflinePayment:
    """A payment an offline wallet made, known to the bank's terminal but not yet cleared and reported."""

    item_id: str
    merchant_id: str
    out_order_no: str
    amount_fen: int
    offline_time: datetime
    device_id: str
    payer_wallet: str


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: str
    kind: Literal["payment", "refund"]
    booked_at: datetime
    debit_account: str
    credit_account: str
    amount_fen: int
    fee_fen: int  # the bank's fee; negative on refunds (returned pro rata)
    merchant_id: str
    out_order_no: str
    order_no: str
    txn_id: str
    pay_time: datetime
    offline: bool
    payer_wallet: str
    out_refund_no: str | None = None
    refund_no: str | None = None


def fee_fen(amount_fen: int, rate_bps: int) -> int:
    """amount * rate in fen, rounded half up with integers only."""
    return (amount_fen * rate_bps + 5_000) // 10_000


def new_wallet_id() -> str:
    return "0021" + digits(12)


@dataclass
class SandboxState:
    merchants: dict[str, Merchant] = field(default_factory=dict)
    orders: dict[tuple[str, str], Order] = field(default_factory=dict)
    refunds: dict[tuple[str, str], Refund] = field(default_factory=dict)
    offline_pending: list[OfflinePayment] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _entry_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- merchants ---------------------------------------------------------------------------------------

    def register_merchant(self, merchant_id: str, key_serial: str, public_key: str, fee_rate_bps: int,
                          bank_key: tuple[Sm2Key, str]) -> Merchant:
        """First registration makes the merchant with its bank key and data key; a later one adds the new
        merchant key serial (the old one keeps verifying: rotation with overlap) and keeps the data key."""
        with self._lock:
            merchant = self.merchants.get(merchant_id)
            if merchant is None:
                merchant = Merchant(merchant_id, {}, bank_key[0], bank_key[1], "DK" + secrets.token_hex(4).upper(),
                                    secrets.token_bytes(16))
                self.merchants[merchant_id] = merchant
            merchant.merchant_keys[key_serial.upper()] = public_key
            merchant.fee_rate_bps = fee_rate_bps
            return copy.deepcopy(merchant)

    def rotate_bank_key(self, merchant_id: str, key: Sm2Key) -> Merchant | None:
        with self._lock:
            merchant = self.merchants.get(merchant_id)
            if merchant is None:
                return None
            merchant.bank_key, merchant.bank_key_serial = key, secrets.token_hex(10).upper()
            return copy.deepcopy(merchant)

    def merchant(self, merchant_id: str) -> Merchant | None:
        with self._lock:
            found = self.merchants.get(merchant_id)
            return copy.deepcopy(found) if found else None

    # -- orders ------------------------------------------------------------------------------------------

    def create_order(self, request: OrderRequest) -> Order:
        """Create, or return the same order for an identical retry."""
        with self._lock:
            existing = self.orders.get((request.merchant_id, request.out_order_no))
            if existing is not None and not existing.forgotten:
                self._expire_if_due(existing)
                if existing.status in PAID:
                    raise OrderPaid("订单已支付")
                if existing.status == "CLOSED":
                    raise OrderClosed("订单已关闭")
                if existing.request != request:
                    raise OrderExists("商户订单号重复: out_order_no already used with other parameters")
                return copy.deepcopy(existing)
            order = Order(request, order_no=stamp_id("EO", 10), created_at=now_utc())
            self.orders[(request.merchant_id, request.out_order_no)] = order
            return copy.deepcopy(order)

    def order(self, merchant_id: str, out_order_no: str) -> Order:
        with self._lock:
            return copy.deepcopy(self._order(merchant_id, out_order_no))

    def orders_named(self, out_order_no: str, merchant_id: str | None) -> list[Order]:
        with self._lock:
            found = [o for (m, n), o in self.orders.items()
                     if n == out_order_no and (merchant_id is None or m == merchant_id)]
            for order in found:
                self._expire_if_due(order)
            return [copy.deepcopy(o) for o in found]

    def close_order(self, merchant_id: str, out_order_no: str) -> None:
        with self._lock:
            order = self._order(merchant_id, out_order_no)
            if order.status in PAID:
                raise OrderPaid("订单已支付")
            if order.status != "CLOSED":  # closing twice succeeds
                self._move(order, "CLOSED")

    def pay_online(self, merchant_id: str, out_order_no: str, succeeded: bool) -> Order:
        """The payer confirmed in a wallet that is online: the order succeeds (and is booked) or fails."""
        with self._lock:
            order = self._order(merchant_id, out_order_no)
            if not succeeded:
                self._move(order, "FAILED")
                return copy.deepcopy(order)
            self._move(order, "SUCCESS")
            moment = now_utc()
            order.txn_id, order.pay_time, order.booked_at = "TX" + digits(28), moment, moment
            order.payer_wallet = new_wallet_id()
            self._book_payment(order)
            return copy.deepcopy(order)

    def forget(self, merchant_id: str, out_order_no: str) -> None:
        with self._lock:
            self._order(merchant_id, out_order_no).forgotten = True

    # -- offline payments ----------------------------------------------------------------------------------

    def record_offline(self, merchant_id: str, out_order_no: str, device_id: str | None) -> OfflinePayment:
        with self._lock:
            order = self._order(merchant_id, out_order_no)
            if order.status in PAID:
                raise IllegalTransition(f"order {out_order_no} is already paid ({order.status})")
            if any(p.merchant_id == merchant_id and p.out_order_no == out_order_no for p in self.offline_pending):
                raise IllegalTransition(f"order {out_order_no} already has an offline payment awaiting clearing")
            payment = OfflinePayment(
                item_id=stamp_id("OI", 10), merchant_id=merchant_id, out_order_no=out_order_no,
                amount_fen=order.request.amount_fen, offline_time=now_utc(),
                device_id=device_id or "HW" + digits(10), payer_wallet=new_wallet_id(),
            )
            self.offline_pending.append(payment)
            return payment

    def clear_offline(self, merchant_id: str | None) -> list[tuple[OfflinePayment, Order]]:
        """Clear every pending offline payment (of one merchant, or all): each order becomes an offline
        SUCCESS and is booked now, even if it was closed, failed or expired meanwhile."""
        with self._lock:
            due = [p for p in self.offline_pending if merchant_id is None or p.merchant_id == merchant_id]
            self.offline_pending = [p for p in self.offline_pending if p not in due]
            cleared: list[tuple[OfflinePayment, Order]] = []
            for payment in due:
                order = self.orders[(payment.merchant_id, payment.out_order_no)]
                if order.status in PAID:  # paid online meanwhile: the wallet's offline record is void
                    continue
                order.status, order.offline = "SUCCESS", True
                order.txn_id, order.pay_time, order.booked_at = "TX" + digits(28), payment.offline_time, now_utc()
                order.device_id, order.payer_wallet = payment.device_id, payment.payer_wallet
                self._book_payment(order)
                cleared.append((payment, copy.deepcopy(order)))
            return cleared

    def pending_offline(self) -> list[OfflinePayment]:
        with self._lock:
            return list(self.offline_pending)

    # -- refunds -----------------------------------------------------------------------------------------

    def create_refund(self, request: RefundRequest) -> tuple[Refund, bool]:
        """Accept a refund (PROCESSING) and book it; the same out_refund_no again returns it unchanged."""
        with self._lock:
            existing = self.refunds.get((request.merchant_id, request.out_refund_no))
            if existing is not None:
                if existing.request != request:
                    raise RefundExists("退款单号重复: out_refund_no already used with other parameters")
                return copy.deepcopy(existing), False
            order = self._order(request.merchant_id, request.out_order_no)
            if order.status not in PAID:
                raise OrderNotPaid(f"订单未支付: order is {order.status}")
            if request.order_amount_fen != order.request.amount_fen:
                raise RefundExceeds("order_amount does not match the order")
            if order.refunded_fen + request.amount_fen > order.request.amount_fen:
                raise RefundExceeds("退款金额超过可退金额")
            in_flight = sum(r.request.amount_fen for (m, _), r in self.refunds.items()
                            if m == request.merchant_id and r.status == "PROCESSING")
            if self.balance_fen(f"merchant:{request.merchant_id}") - in_flight < request.amount_fen:
                raise BalanceInsufficient("商户钱包余额不足")
            refund = Refund(request, refund_no=stamp_id("ER", 10), created_at=now_utc())
            self.refunds[(request.merchant_id, request.out_refund_no)] = refund
            order.refunded_fen += request.amount_fen
            self._move(order, "REFUNDED" if order.refunded_fen == order.request.amount_fen else "PART_REFUNDED")
            return copy.deepcopy(refund), True

    def settle_refund(self, merchant_id: str, out_refund_no: str) -> Refund:
        """The refund reaches the payer's wallet: SUCCESS, booked now (the day it counts on the statement)."""
        with self._lock:
            refund = self._refund(merchant_id, out_refund_no)
            if refund.status != "PROCESSING":
                raise IllegalTransition(f"refund {out_refund_no} is {refund.status}")
            refund.status, refund.success_time, refund.txn_id = "SUCCESS", now_utc(), "TX" + digits(28)
            order = self.orders[(merchant_id, refund.request.out_order_no)]
            self._book_refund(order, refund)
            return copy.deepcopy(refund)

    def refund(self, merchant_id: str, out_refund_no: str) -> Refund:
        with self._lock:
            return copy.deepcopy(self._refund(merchant_id, out_refund_no))

    def refunds_of(self, merchant_id: str, out_order_no: str) -> list[Refund]:
        with self._lock:
            return [copy.deepcopy(r) for (m, _), r in self.refunds.items()
                    if m == merchant_id and r.request.out_order_no == out_order_no]

    # -- ledger ------------------------------------------------------------------------------------------

    def balance_fen(self, account: str) -> int:
        with self._lock:
            return (sum(e.amount_fen for e in self.ledger if e.credit_account == account)
                    - sum(e.amount_fen for e in self.ledger if e.debit_account == account))

    def ledger_entries(self, merchant_id: str | None = None) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self.ledger if merchant_id is None or e.merchant_id == merchant_id]

    def ledger_for_day(self, merchant_id: str, day: date) -> list[LedgerEntry]:
        """Entries booked on Beijing day ``day``, minus those of orders the bank has lost."""
        with self._lock:
            return [e for e in self.ledger
                    if e.merchant_id == merchant_id and e.booked_at.astimezone(BEIJING).date() == day
                    and not self.orders[(e.merchant_id, e.out_order_no)].forgotten]

    # -- internals (lock held) ---------------------------------------------------------------------------

    def _order(self, merchant_id: str, out_order_no: str) -> Order:
        order = self.orders.get((merchant_id, out_order_no))
        if order is None or order.forgotten:
            raise OrderNotFound("订单不存在")
        self._expire_if_due(order)
        return order

    def _refund(self, merchant_id: str, out_refund_no: str) -> Refund:
        refund = self.refunds.get((merchant_id, out_refund_no))
        if refund is None or self.orders[(merchant_id, refund.request.out_order_no)].forgotten:
            raise RefundNotFound("退款单不存在")
        return refund

    @staticmethod
    def _expire_if_due(order: Order) -> None:
        expire = order.request.expire_at
        if expire is not None and order.status == "WAITING" and now_utc() >= expire:
            order.status = "CLOSED"

    @staticmethod
    def _move(order: Order, target: OrderStatus) -> None:
        if target not in _ORDER_MOVES[order.status]:
            raise IllegalTransition(f"order {order.out_order_no} is {order.status}, cannot become {target}")
        order.status = target

    def _book_payment(self, order: Order) -> None:
        merchant = self.merchants[order.merchant_id]
        assert order.txn_id and order.pay_time and order.booked_at and order.payer_wallet
        self.ledger.append(LedgerEntry(
            entry_id=f"LE-{next(self._entry_ids):08d}", kind="payment", booked_at=order.booked_at,
            debit_account=f"wallet:{order.payer_wallet}", credit_account=f"merchant:{order.merchant_id}",
            amount_fen=order.request.amount_fen, fee_fen=fee_fen(order.request.amount_fen, merchant.fee_rate_bps),
            merchant_id=order.merchant_id, out_order_no=order.out_order_no, order_no=order.order_no,
            txn_id=order.txn_id, pay_time=order.pay_time, offline=order.offline, payer_wallet=order.payer_wallet,
        ))

    def _book_refund(self, order: Order, refund: Refund) -> None:
        merchant = self.merchants[order.merchant_id]
        assert refund.txn_id and refund.success_time and order.payer_wallet and order.pay_time
        self.ledger.append(LedgerEntry(
            entry_id=f"LE-{next(self._entry_ids):08d}", kind="refund", booked_at=refund.success_time,
            debit_account=f"merchant:{order.merchant_id}", credit_account=f"wallet:{order.payer_wallet}",
            amount_fen=refund.request.amount_fen, fee_fen=-fee_fen(refund.request.amount_fen, merchant.fee_rate_bps),
            merchant_id=order.merchant_id, out_order_no=order.out_order_no, order_no=order.order_no,
            txn_id=refund.txn_id, pay_time=order.pay_time, offline=order.offline, payer_wallet=order.payer_wallet,
            out_refund_no=refund.request.out_refund_no, refund_no=refund.refund_no,
        ))
