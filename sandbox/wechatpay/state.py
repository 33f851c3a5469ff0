"""The sandbox's own books: merchants, orders, refunds and an append-only ledger, behind one lock.

Every state change goes through ``_ORDER_TRANSITIONS`` / ``_REFUND_TRANSITIONS`` under the lock, so two
concurrent payer actions cannot both move an order. Readers get copies, never the live records.

Ledger: one entry per money movement, never edited. A payment moves ``payer:<openid> -> merchant:<mchid>``,
a refund the reverse; each entry snapshots what a statement row needs (appid, trade type, fee), so the bill
is a pure function of the entries and a later "statement discrepancy" fault can alter the rendering without
touching the books.
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

from .auth import SignType
from .errors import (
    InvalidRequest,
    NotEnough,
    OrderClosed,
    OrderNotExist,
    OrderPaid,
    ResourceNotExists,
)

BEIJING = timezone(timedelta(hours=8))

TradeState = Literal["NOTPAY", "USERPAYING", "SUCCESS", "CLOSED", "REFUND", "PAYERROR"]
RefundStatus = Literal["PROCESSING", "SUCCESS", "CLOSED", "ABNORMAL"]
TradeType = Literal["JSAPI", "APP", "MWEB", "NATIVE"]
SerialMode = Literal["public_key_id", "platform_serial"]

_ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    "NOTPAY": frozenset({"USERPAYING", "SUCCESS", "PAYERROR", "CLOSED"}),
    "USERPAYING": frozenset({"SUCCESS", "PAYERROR", "CLOSED"}),
    "SUCCESS": frozenset({"REFUND"}),
    "REFUND": frozenset(),
    "CLOSED": frozenset(),
    "PAYERROR": frozenset({"CLOSED"}),
}
_REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    "PROCESSING": frozenset({"SUCCESS", "CLOSED", "ABNORMAL"}),
    "SUCCESS": frozenset(),
    "CLOSED": frozenset(),
    "ABNORMAL": frozenset(),
}
TRADE_STATE_DESC: dict[str, str] = {
    "NOTPAY": "订单未支付", "USERPAYING": "用户支付中", "SUCCESS": "支付成功", "CLOSED": "已关闭",
    "REFUND": "转入退款", "PAYERROR": "支付失败",
}


class IllegalTransition(Exception):
    """A payer action asked for a move the state machine does not allow (a control-API 409)."""


def _digits(count: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(count))


def now_utc() -> datetime:
    return datetime.now(UTC)


def rfc3339_beijing(moment: datetime) -> str:
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Merchant:
    mchid: str
    appids: frozenset[str]
    merchant_serial_no: str
    sign_type: SignType
    merchant_public_key: str
    apiv3_key: str
    fee_rate_bps: int  # 60 = 0.60 %, WeChat's common rate
    serial_mode: SerialMode  # which name the sandbox puts in Wechatpay-Serial


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """The parsed body of a create-order call; equality decides whether a repeat is a retry."""

    mchid: str
    appid: str
    trade_type: TradeType
    out_trade_no: str
    description: str
    notify_url: str
    total_fen: int
    currency: str
    attach: str
    payer_openid: str | None
    payer_client_ip: str | None
    time_expire: datetime | None


@dataclass(slots=True)
class Order:
    request: OrderRequest
    prepay_id: str
    created_at: datetime
    trade_state: TradeState = "NOTPAY"
    transaction_id: str | None = None
    success_time: datetime | None = None
    payer_openid: str | None = None
    refunded_fen: int = 0  # sum of accepted refunds, PROCESSING included, so concurrent refunds cannot overrun

    @property
    def mchid(self) -> str:
        return self.request.mchid

    @property
    def out_trade_no(self) -> str:
        return self.request.out_trade_no


@dataclass(frozen=True, slots=True)
class RefundRequest:
    mchid: str
    out_refund_no: str
    out_trade_no: str | None
    transaction_id: str | None
    refund_fen: int
    total_fen: int
    currency: str
    reason: str
    notify_url: str | None


@dataclass(slots=True)
class Refund:
    request: RefundRequest
    refund_id: str
    out_trade_no: str
    transaction_id: str
    notify_url: str  # the request's, or the order's when the request gave none
    created_at: datetime
    status: RefundStatus = "PROCESSING"
    success_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: str
    kind: Literal["payment", "refund"]
    occurred_at: datetime  # payment: success time; refund: when it was accepted (funds leave then)
    debit_account: str  # where the money leaves
    credit_account: str  # where it arrives
    amount_fen: int
    fee_millifen: int  # channel fee in 1/1000 fen (= the bill's 5th yuan decimal); negative on refunds
    mchid: str
    appid: str
    trade_type: TradeType
    out_trade_no: str
    transaction_id: str
    payer_openid: str
    order_total_fen: int
    paid_at: datetime
    description: str
    attach: str
    fee_rate_bps: int
    out_refund_no: str | None = None
    refund_id: str | None = None


def fee_millifen(amount_fen: int, rate_bps: int) -> int:
    """amount * rate, in 1/1000 fen, rounded half up with integers only."""
    numerator = amount_fen * rate_bps  # fen * bps; 1 millifen = fen * 10 bps
    return (numerator + 5) // 10


@dataclass
class SandboxState:
    merchants: dict[str, Merchant] = field(default_factory=dict)
    orders: dict[tuple[str, str], Order] = field(default_factory=dict)
    refunds: dict[tuple[str, str], Refund] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    forgotten: set[tuple[str, str]] = field(default_factory=set)  # (mchid, out_trade_no) lost by the channel
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _entry_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- merchants ---------------------------------------------------------------------------------------

    def register_merchant(self, merchant: Merchant) -> None:
        with self._lock:
            # Re-registering replaces the record: that is how a developer rotates keys against the sandbox.
            self.merchants[merchant.mchid] = merchant

    def merchant(self, mchid: str) -> Merchant | None:
        with self._lock:
            return self.merchants.get(mchid)

    # -- orders ------------------------------------------------------------------------------------------

    def create_order(self, request: OrderRequest) -> Order:
        """Create, or return the same order for an identical retry (same out_trade_no, same body)."""
        with self._lock:
            existing = self.orders.get((request.mchid, request.out_trade_no))
            if existing is not None:
                self._expire_if_due(existing)
                if existing.trade_state in ("SUCCESS", "REFUND"):
                    raise OrderPaid("该订单已支付")
                if existing.trade_state == "CLOSED":
                    raise OrderClosed("该订单已关闭")
                if existing.request != request:
                    raise InvalidRequest("商户订单号重复: out_trade_no already used with different parameters")
                return copy.deepcopy(existing)
            order = Order(request, prepay_id=f"wx{datetime.now(BEIJING):%d%H%M%S}{secrets.token_hex(12)}",
                          created_at=now_utc())
            self.orders[(request.mchid, request.out_trade_no)] = order
            return copy.deepcopy(order)

    def order(self, mchid: str, out_trade_no: str) -> Order:
        with self._lock:
            return copy.deepcopy(self._order(mchid, out_trade_no))

    def order_by_transaction_id(self, mchid: str, transaction_id: str) -> Order:
        with self._lock:
            for order in self.orders.values():
                if order.mchid == mchid and order.transaction_id == transaction_id:
                    return copy.deepcopy(order)
            raise OrderNotExist("订单不存在")

    def orders_named(self, out_trade_no: str, mchid: str | None) -> list[Order]:
        """Orders with this out_trade_no (any merchant unless ``mchid``), for the control API."""
        with self._lock:
            found = [o for (m, n), o in self.orders.items() if n == out_trade_no and (mchid is None or m == mchid)]
            for order in found:
                self._expire_if_due(order)
            return [copy.deepcopy(order) for order in found]

    def order_by_prepay_id(self, prepay_id: str) -> Order | None:
        """The order a JSAPI ``package=prepay_id=...`` names (what the WeChat client looks up when the payer pays)."""
        with self._lock:
            for order in self.orders.values():
                if order.prepay_id == prepay_id:
                    self._expire_if_due(order)
                    return copy.deepcopy(order)
            return None

    def close_order(self, mchid: str, out_trade_no: str) -> None:
        with self._lock:
            order = self._order(mchid, out_trade_no)
            if order.trade_state in ("SUCCESS", "REFUND"):
                raise OrderPaid("订单已支付")
            if order.trade_state != "CLOSED":  # closing twice is a success, as on WeChat
                self._move(order, "CLOSED")

    def set_userpaying(self, mchid: str, out_trade_no: str) -> Order:
        with self._lock:
            order = self._order(mchid, out_trade_no)
            self._move(order, "USERPAYING")
            return copy.deepcopy(order)

    def settle_payment(self, mchid: str, out_trade_no: str, succeeded: bool, payer_openid: str | None,
                       paid_at: datetime | None = None) -> Order:
        """The payer finished paying (or failed to): move the order and, on success, book the money.
        ``paid_at`` backdates the success (a payment made just before midnight, for reconciliation tests)."""
        with self._lock:
            order = self._order(mchid, out_trade_no)
            if not succeeded:
                self._move(order, "PAYERROR")
                return copy.deepcopy(order)
            self._move(order, "SUCCESS")
            order.transaction_id = "42000" + _digits(23)
            order.success_time = paid_at or now_utc()
            order.payer_openid = order.request.payer_openid or payer_openid or "o" + secrets.token_urlsafe(20)[:27]
            self._book(order, "payment", order.request.total_fen, order.success_time)
            return copy.deepcopy(order)

    # -- refunds -----------------------------------------------------------------------------------------

    def create_refund(self, request: RefundRequest) -> tuple[Refund, bool]:
        """Accept a refund (PROCESSING) and book it; a repeat of the same out_refund_no returns it unchanged."""
        with self._lock:
            existing = self.refunds.get((request.mchid, request.out_refund_no))
            if existing is not None:
                if existing.request != request:
                    raise InvalidRequest("out_refund_no already used with different parameters")
                return copy.deepcopy(existing), False
            order = self._refundable_order(request)
            if request.total_fen != order.request.total_fen:
                raise InvalidRequest("amount.total does not match the order total")
            if order.refunded_fen + request.refund_fen > order.request.total_fen:
                raise InvalidRequest("申请退款金额超过订单可退金额: refunds would exceed the order total")
            if self.balance_fen(f"merchant:{request.mchid}") < request.refund_fen:
                raise NotEnough("基本账户余额不足")
            assert order.transaction_id is not None
            refund = Refund(
                request, refund_id="503" + _digits(26), out_trade_no=order.out_trade_no,
                transaction_id=order.transaction_id, notify_url=request.notify_url or order.request.notify_url,
                created_at=now_utc(),
            )
            self.refunds[(request.mchid, request.out_refund_no)] = refund
            order.refunded_fen += request.refund_fen
            if order.trade_state == "SUCCESS":
                self._move(order, "REFUND")
            self._book(order, "refund", request.refund_fen, refund.created_at, refund)
            return copy.deepcopy(refund), True

    def settle_refund(self, mchid: str, out_refund_no: str) -> Refund:
        with self._lock:
            refund = self._refund(mchid, out_refund_no)
            if "SUCCESS" not in _REFUND_TRANSITIONS[refund.status]:
                raise IllegalTransition(f"refund {out_refund_no} is {refund.status}")
            refund.status = "SUCCESS"
            refund.success_time = now_utc()
            return copy.deepcopy(refund)

    def refund(self, mchid: str, out_refund_no: str) -> Refund:
        with self._lock:
            return copy.deepcopy(self._refund(mchid, out_refund_no))

    def refunds_of(self, mchid: str, out_trade_no: str) -> list[Refund]:
        with self._lock:
            return [copy.deepcopy(refund) for (owner, _), refund in self.refunds.items()
                    if owner == mchid and refund.out_trade_no == out_trade_no]

    # -- ledger ------------------------------------------------------------------------------------------

    def balance_fen(self, account: str) -> int:
        with self._lock:
            credits = sum(e.amount_fen for e in self.ledger if e.credit_account == account)
            debits = sum(e.amount_fen for e in self.ledger if e.debit_account == account)
            return credits - debits

    def ledger_entries(self, mchid: str | None = None) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self.ledger if mchid is None or e.mchid == mchid]

    def ledger_for_day(self, mchid: str, day: date) -> list[LedgerEntry]:
        """Entries of one merchant whose Beijing calendar day is ``day``, in booking order (forgotten orders'
        entries left out: a lost order is missing from the statements too)."""
        with self._lock:
            return [e for e in self.ledger if e.mchid == mchid and e.occurred_at.astimezone(BEIJING).date() == day
                    and (e.mchid, e.out_trade_no) not in self.forgotten]

    def forget_order(self, mchid: str, out_trade_no: str) -> Order:
        """The channel loses an order: queries and refunds say it does not exist, statements omit it. The
        ledger stays append-only; its entries for the order are only hidden from the statements."""
        with self._lock:
            order = self._order(mchid, out_trade_no)
            del self.orders[(mchid, out_trade_no)]
            for key in [key for key, refund in self.refunds.items()
                        if key[0] == mchid and refund.out_trade_no == out_trade_no]:
                del self.refunds[key]
            self.forgotten.add((mchid, out_trade_no))
            return copy.deepcopy(order)

    def refund_progress(self, mchid: str, out_refund_no: str) -> tuple[RefundStatus, datetime | None]:
        """(status, success time) of a refund now: what a bill shows at the moment it is generated."""
        with self._lock:
            refund = self._refund(mchid, out_refund_no)
            return refund.status, refund.success_time

    # -- internals (lock held) ---------------------------------------------------------------------------

    def _order(self, mchid: str, out_trade_no: str) -> Order:
        order = self.orders.get((mchid, out_trade_no))
        if order is None:
            raise OrderNotExist("订单不存在")
        self._expire_if_due(order)
        return order

    def _refund(self, mchid: str, out_refund_no: str) -> Refund:
        refund = self.refunds.get((mchid, out_refund_no))
        if refund is None:
            raise ResourceNotExists("退款单不存在")
        return refund

    def _refundable_order(self, request: RefundRequest) -> Order:
        for order in self.orders.values():
            if order.mchid != request.mchid:
                continue
            if (request.transaction_id and order.transaction_id == request.transaction_id) or (
                not request.transaction_id and order.out_trade_no == request.out_trade_no
            ):
                if order.trade_state not in ("SUCCESS", "REFUND"):
                    raise InvalidRequest(f"订单状态不允许退款: trade_state is {order.trade_state}")
                return order
        raise ResourceNotExists("订单不存在")

    def _expire_if_due(self, order: Order) -> None:
        # WeChat closes unpaid orders at time_expire; doing it lazily on read gives the same observable result.
        expire = order.request.time_expire
        if expire is not None and order.trade_state in ("NOTPAY", "USERPAYING") and now_utc() >= expire:
            order.trade_state = "CLOSED"

    def _move(self, order: Order, target: TradeState) -> None:
        if target not in _ORDER_TRANSITIONS[order.trade_state]:
            raise IllegalTransition(f"order {order.out_trade_no} is {order.trade_state}, cannot become {target}")
        order.trade_state = target

    def _book(self, order: Order, kind: Literal["payment", "refund"], amount_fen: int, at: datetime,
              refund: Refund | None = None) -> None:
        merchant = self.merchants[order.mchid]
        payer = f"payer:{order.payer_openid}"
        seller = f"merchant:{order.mchid}"
        fee = fee_millifen(amount_fen, merchant.fee_rate_bps)
        assert order.transaction_id is not None and order.payer_openid is not None
        entry = LedgerEntry(
            entry_id=f"LE-{next(self._entry_ids):08d}", kind=kind, occurred_at=at,
            debit_account=payer if kind == "payment" else seller,
            credit_account=seller if kind == "payment" else payer,
            amount_fen=amount_fen, fee_millifen=fee if kind == "payment" else -fee,
            mchid=order.mchid, appid=order.request.appid, trade_type=order.request.trade_type,
            out_trade_no=order.out_trade_no, transaction_id=order.transaction_id, payer_openid=order.payer_openid,
            order_total_fen=order.request.total_fen, paid_at=order.success_time or at,
            description=order.request.description,
            attach=order.request.attach, fee_rate_bps=merchant.fee_rate_bps,
            out_refund_no=refund.request.out_refund_no if refund else None,
            refund_id=refund.refund_id if refund else None,
        )
        self.ledger.append(entry)
