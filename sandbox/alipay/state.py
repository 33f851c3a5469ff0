"""The sandbox's own books: merchants (apps), orders, refunds and an append-only ledger, behind one lock.

An order for alipay.page / wap / app becomes a trade only when the payer opens it (the browser or the Alipay
app brings our signed parameters); a precreated QR order becomes one when the payer scans it. Until then
Alipay answers "trade does not exist", exactly as the real gateway does.

Ledger: one entry per money movement, never edited. The bill is a pure function of the entries, so a
statement fault changes only the rendering, never the books.
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

from .crypto import SignType
from .errors import BusinessError, trade_not_exist, trade_status_error

BEIJING = timezone(timedelta(hours=8))
TradeStatus = Literal["PRESENTED", "WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_FINISHED", "TRADE_CLOSED"]
# PRESENTED is the sandbox's own word for "made, not yet seen by the payer": not a trade at Alipay yet.
_TRANSITIONS: dict[str, frozenset[str]] = {
    "PRESENTED": frozenset({"WAIT_BUYER_PAY", "TRADE_SUCCESS"}),
    "WAIT_BUYER_PAY": frozenset({"TRADE_SUCCESS", "TRADE_CLOSED"}),
    "TRADE_SUCCESS": frozenset({"TRADE_FINISHED", "TRADE_CLOSED"}),  # TRADE_CLOSED: refunded in full
    "TRADE_FINISHED": frozenset(),
    "TRADE_CLOSED": frozenset(),
}


class IllegalTransition(Exception):
    """A payer action the order's state does not allow (a control-API 409)."""


class UnknownOrder(Exception):
    """The control API names an order the sandbox never saw (404)."""


def now_utc() -> datetime:
    return datetime.now(UTC)


def alipay_time(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _digits(count: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(count))


@dataclass(frozen=True, slots=True)
class Merchant:
    app_id: str
    pid: str  # the seller id (2088...) notifies carry as seller_id
    sign_type: SignType
    app_public_key: str
    fee_rate_bps: int  # 60 = 0.60 %


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What the signed order says; a second presentation must say the same (else "context inconsistent")."""

    app_id: str
    method: str
    out_trade_no: str
    total_fen: int
    subject: str
    product_code: str
    notify_url: str
    return_url: str
    time_expire: datetime | None
    # Huabei instalments asked for in extend_params (0: none); the percent of the fee the seller bears, 0 or 100.
    hb_fq_num: int = 0
    hb_fq_seller_percent: int = 0


@dataclass(slots=True)
class Order:
    terms: OrderTerms
    created_at: datetime
    status: TradeStatus = "PRESENTED"
    trade_no: str = ""
    buyer_id: str = ""
    buyer_logon_id: str = ""
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    refunded_fen: int = 0
    forgotten: bool = False
    qr_token: str = ""

    @property
    def out_trade_no(self) -> str:
        return self.terms.out_trade_no

    @property
    def app_id(self) -> str:
        return self.terms.app_id

    @property
    def is_trade(self) -> bool:
        """Alipay knows it (queries, closes and refunds find it)."""
        return self.status != "PRESENTED" and not self.forgotten


@dataclass(slots=True)
class Refund:
    app_id: str
    out_trade_no: str
    out_request_no: str
    trade_no: str
    refund_fen: int
    reason: str
    refunded_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: str
    kind: Literal["payment", "refund"]
    occurred_at: datetime  # payment: when paid; refund: when refunded (Alipay refunds are synchronous)
    debit_account: str
    credit_account: str
    amount_fen: int
    fee_fen: int  # the service fee charged (payment) or returned (refund), always >= 0
    app_id: str
    pid: str
    out_trade_no: str
    trade_no: str
    subject: str
    created_at: datetime
    buyer_logon_id: str
    out_request_no: str = ""


def fee_fen(amount_fen: int, rate_bps: int) -> int:
    """Alipay rounds the service fee to the fen, half up."""
    return (amount_fen * rate_bps + 5_000) // 10_000


@dataclass
class SandboxState:
    merchants: dict[str, Merchant] = field(default_factory=dict)
    orders: dict[tuple[str, str], Order] = field(default_factory=dict)  # (app_id, out_trade_no)
    refunds: dict[tuple[str, str, str], Refund] = field(default_factory=dict)  # (app_id, out_trade_no, request no)
    ledger: list[LedgerEntry] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- merchants ---------------------------------------------------------------------------------------

    def register_merchant(self, merchant: Merchant) -> None:
        with self._lock:
            self.merchants[merchant.app_id] = merchant  # re-registering rotates the app key

    def merchant(self, app_id: str) -> Merchant | None:
        with self._lock:
            return self.merchants.get(app_id)

    # -- orders ------------------------------------------------------------------------------------------

    def present(self, terms: OrderTerms, *, opened: bool) -> Order:
        """An order reaches Alipay: precreate (``opened=False``) or the payer opening a page/wap/app order.
        The same terms again return the same order; other terms under the same out_trade_no are refused."""
        with self._lock:
            key = (terms.app_id, terms.out_trade_no)
            order = self.orders.get(key)
            if order is not None and not order.forgotten:
                self._expire_if_due(order)
                if order.terms != _comparable(order.terms, terms):
                    raise BusinessError("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改: out_trade_no reused with other terms")
                if order.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                    raise BusinessError("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
                if order.status == "TRADE_CLOSED":
                    raise BusinessError("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            else:
                order = Order(terms, created_at=now_utc(), qr_token=secrets.token_urlsafe(12))
                self.orders[key] = order
            if opened and order.status == "PRESENTED":
                self._open(order)
            return copy.deepcopy(order)

    def open_qr(self, qr_token: str) -> Order:
        """The payer scanned a precreated code: the trade now exists, waiting for the payer."""
        with self._lock:
            order = next((o for o in self.orders.values() if o.qr_token == qr_token and not o.forgotten), None)
            if order is None:
                raise UnknownOrder("no such QR code")
            self._expire_if_due(order)
            if order.status == "PRESENTED":
                self._open(order)
            return copy.deepcopy(order)

    def find(self, out_trade_no: str, app_id: str | None = None) -> list[Order]:
        """Orders with this out_trade_no (any app unless ``app_id``), for the control API and the cashier."""
        with self._lock:
            found = [o for (a, n), o in self.orders.items()
                     if n == out_trade_no and (app_id is None or a == app_id) and not o.forgotten]
            for order in found:
                self._expire_if_due(order)
            return [copy.deepcopy(order) for order in found]

    def trade(self, app_id: str, out_trade_no: str) -> Order:
        """The trade as the gateway sees it: raises TRADE_NOT_EXIST until the payer has seen it."""
        with self._lock:
            return copy.deepcopy(self._trade(app_id, out_trade_no))

    def close(self, app_id: str, out_trade_no: str) -> tuple[Order, bool]:
        """(order, whether this call closed it). Paid trades refuse; a closed one closes again quietly."""
        with self._lock:
            order = self._trade(app_id, out_trade_no)
            if order.status == "TRADE_CLOSED":
                return copy.deepcopy(order), False
            if order.status != "WAIT_BUYER_PAY":
                raise trade_status_error(order.status)
            order.status, order.closed_at = "TRADE_CLOSED", now_utc()
            return copy.deepcopy(order), True

    def settle(self, app_id: str, out_trade_no: str, succeeded: bool) -> Order:
        """The payer finished at the cashier: paid (and booked), or the payment failed and the trade closed."""
        with self._lock:
            order = self._order(app_id, out_trade_no)
            self._expire_if_due(order)
            if order.status == "PRESENTED":
                self._open(order)
            if not succeeded:
                self._move(order, "TRADE_CLOSED")
                order.closed_at = now_utc()
                return copy.deepcopy(order)
            self._move(order, "TRADE_SUCCESS")
            order.paid_at = now_utc()
            self._book_payment(order)
            return copy.deepcopy(order)

    def forget(self, app_id: str, out_trade_no: str) -> Order:
        with self._lock:
            order = self._order(app_id, out_trade_no)
            order.forgotten = True
            return copy.deepcopy(order)

    # -- refunds -----------------------------------------------------------------------------------------

    def refund(self, app_id: str, out_trade_no: str, out_request_no: str, refund_fen: int,
               reason: str) -> tuple[Refund, Order, bool]:
        """(refund, order after it, whether money moved now). A repeat of the same request number is answered
        with the refund already made (``fund_change=N``), never a second one."""
        with self._lock:
            order = self._trade(app_id, out_trade_no)
            existing = self.refunds.get((app_id, out_trade_no, out_request_no))
            if existing is not None:
                if existing.refund_fen != refund_fen:
                    raise BusinessError("ACQ.CONTEXT_INCONSISTENT", "out_request_no reused with another refund_amount")
                return copy.deepcopy(existing), copy.deepcopy(order), False
            if order.status != "TRADE_SUCCESS":
                raise trade_status_error(order.status)
            if order.refunded_fen + refund_fen > order.terms.total_fen:
                raise BusinessError("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            if self.balance_fen(f"merchant:{order.app_id}") < refund_fen:
                raise BusinessError("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")
            refund = Refund(app_id, out_trade_no, out_request_no, order.trade_no, refund_fen, reason, now_utc())
            self.refunds[(app_id, out_trade_no, out_request_no)] = refund
            order.refunded_fen += refund_fen
            if order.refunded_fen == order.terms.total_fen:
                order.status, order.closed_at = "TRADE_CLOSED", refund.refunded_at  # fully refunded
            self._book_refund(order, refund)
            return copy.deepcopy(refund), copy.deepcopy(order), True

    def find_refund(self, app_id: str, out_trade_no: str, out_request_no: str) -> Refund | None:
        with self._lock:
            self._trade(app_id, out_trade_no)
            found = self.refunds.get((app_id, out_trade_no, out_request_no))
            return copy.deepcopy(found) if found else None

    def refunds_of(self, app_id: str, out_trade_no: str) -> list[Refund]:
        with self._lock:
            return [copy.deepcopy(r) for (a, n, _), r in self.refunds.items() if a == app_id and n == out_trade_no]

    # -- ledger ------------------------------------------------------------------------------------------

    def balance_fen(self, account: str) -> int:
        with self._lock:
            credits = sum(e.amount_fen for e in self.ledger if e.credit_account == account)
            debits = sum(e.amount_fen for e in self.ledger if e.debit_account == account)
            return credits - debits

    def ledger_entries(self, app_id: str | None = None) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self.ledger if app_id is None or e.app_id == app_id]

    def ledger_for_day(self, app_id: str, day: date) -> list[LedgerEntry]:
        """Entries of one app on a Beijing calendar day, omitting orders the channel has since lost."""
        with self._lock:
            lost = {n for (a, n), o in self.orders.items() if a == app_id and o.forgotten}
            return [e for e in self.ledger if e.app_id == app_id and e.out_trade_no not in lost
                    and e.occurred_at.astimezone(BEIJING).date() == day]

    # -- internals (lock held) ---------------------------------------------------------------------------

    def _order(self, app_id: str, out_trade_no: str) -> Order:
        order = self.orders.get((app_id, out_trade_no))
        if order is None or order.forgotten:
            raise UnknownOrder(f"no order {out_trade_no}")
        return order

    def _trade(self, app_id: str, out_trade_no: str) -> Order:
        order = self.orders.get((app_id, out_trade_no))
        if order is None or not order.is_trade:
            raise trade_not_exist()
        self._expire_if_due(order)
        return order

    def _open(self, order: Order) -> None:
        if order.terms.time_expire is not None and now_utc() >= order.terms.time_expire:
            raise IllegalTransition(f"order {order.out_trade_no} expired before the payer opened it")
        order.status = "WAIT_BUYER_PAY"
        order.trade_no = f"{datetime.now(BEIJING):%Y%m%d}2200" + _digits(18)
        order.buyer_id = "2088" + _digits(12)
        order.buyer_logon_id = f"{secrets.choice(string.ascii_lowercase)}**@sandbox.alipay"

    def _expire_if_due(self, order: Order) -> None:
        expire = order.terms.time_expire
        if expire is not None and order.status == "WAIT_BUYER_PAY" and now_utc() >= expire:
            order.status, order.closed_at = "TRADE_CLOSED", expire

    def _move(self, order: Order, target: TradeStatus) -> None:
        if target not in _TRANSITIONS[order.status]:
            raise IllegalTransition(f"order {order.out_trade_no} is {order.status}, cannot become {target}")
        order.status = target

    def _entry(self, order: Order, kind: Literal["payment", "refund"], amount_fen: int, at: datetime,
               out_request_no: str = "") -> LedgerEntry:
        merchant = self.merchants[order.app_id]
        payer, seller = f"payer:{order.buyer_id}", f"merchant:{order.app_id}"
        return LedgerEntry(
            entry_id=f"LE-{next(self._ids):08d}", kind=kind, occurred_at=at,
            debit_account=payer if kind == "payment" else seller, credit_account=seller if kind == "payment" else payer,
            amount_fen=amount_fen, fee_fen=fee_fen(amount_fen, merchant.fee_rate_bps), app_id=order.app_id,
            pid=merchant.pid, out_trade_no=order.out_trade_no, trade_no=order.trade_no, subject=order.terms.subject,
            created_at=order.created_at, buyer_logon_id=order.buyer_logon_id, out_request_no=out_request_no,
        )

    def _book_payment(self, order: Order) -> None:
        assert order.paid_at is not None
        self.ledger.append(self._entry(order, "payment", order.terms.total_fen, order.paid_at))

    def _book_refund(self, order: Order, refund: Refund) -> None:
        self.ledger.append(self._entry(order, "refund", refund.refund_fen, refund.refunded_at, refund.out_request_no))


def _comparable(stored: OrderTerms, incoming: OrderTerms) -> OrderTerms:
    """The page/wap/app payer may open the same signed order again later; only the order itself must match,
    not the notify/return URLs or the product the same order number was presented through."""
    return OrderTerms(incoming.app_id, stored.method, incoming.out_trade_no, incoming.total_fen, incoming.subject,
                      stored.product_code, stored.notify_url, stored.return_url, stored.time_expire,
                      incoming.hb_fq_num, incoming.hb_fq_seller_percent)
