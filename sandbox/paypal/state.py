"""The sandbox's own books: merchants (REST apps), tokens, webhooks, orders, captures, refunds and a ledger.

Everything changes under one lock; readers get copies. The ledger is append-only: one entry when a capture
completes (payer -> merchant, with PayPal's fee) and one when a refund completes (merchant -> payer); reports
are rendered from it, so statement faults alter only the rendering, never the books.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import string
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from . import money
from .errors import IllegalTransition, PayPalError, not_found, unprocessable

_ALNUM = string.ascii_uppercase + string.digits
FundingResult = Literal["success", "fail", "pending"]


def paypal_id(length: int = 17) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Merchant:
    client_id: str
    client_secret: str
    merchant_id: str
    email: str
    fee_rate_bps: int
    fee_fixed_minor: int


@dataclass(frozen=True, slots=True)
class Webhook:
    webhook_id: str
    client_id: str
    url: str
    event_types: frozenset[str]  # "*" means every event

    def wants(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


@dataclass(slots=True)
class Order:
    order_id: str
    client_id: str
    currency: str
    amount_minor: int
    reference_id: str
    custom_id: str
    invoice_id: str
    description: str
    return_url: str | None
    cancel_url: str | None
    brand_name: str | None
    created_at: datetime
    status: str = "CREATED"
    updated_at: datetime | None = None
    payer: dict[str, Any] | None = None
    funding: FundingResult | None = None  # what the payer's funding source will do at capture
    capture_ids: list[str] = field(default_factory=list)
    forgotten: bool = False


@dataclass(slots=True)
class Capture:
    capture_id: str
    order_id: str
    client_id: str
    currency: str
    amount_minor: int
    fee_minor: int
    invoice_id: str
    custom_id: str
    created_at: datetime
    status: str
    status_reason: str | None = None
    updated_at: datetime | None = None
    refunded_minor: int = 0  # completed and pending refunds, so concurrent refunds cannot overrun


@dataclass(slots=True)
class Refund:
    refund_id: str
    capture_id: str
    order_id: str
    client_id: str
    currency: str
    amount_minor: int
    invoice_id: str | None
    custom_id: str | None
    note: str | None
    created_at: datetime
    status: str = "PENDING"
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: str
    kind: Literal["payment", "refund"]
    occurred_at: datetime  # when the money moved (capture or refund completed)
    client_id: str
    merchant_id: str
    currency: str
    amount_minor: int
    fee_minor: int  # PayPal's fee on a payment; refunds give no fee back in this sandbox
    transaction_id: str  # capture id / refund id
    paypal_reference_id: str  # order id (payments) / capture id (refunds)
    paypal_reference_id_type: str  # ODR / TXN
    invoice_id: str
    custom_id: str
    order_id: str


@dataclass
class SandboxState:
    merchants: dict[str, Merchant] = field(default_factory=dict)
    tokens: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    captures: dict[str, Capture] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    idempotency: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _entry_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- apps, tokens, webhooks --------------------------------------------------------------------------

    def register_merchant(self, merchant_id: str, email: str, fee_rate_bps: int, fee_fixed_minor: int) -> Merchant:
        merchant = Merchant(client_id="A" + secrets.token_urlsafe(60)[:79], client_secret="E" + secrets.token_urlsafe(60)[:79],
                            merchant_id=merchant_id, email=email, fee_rate_bps=fee_rate_bps,
                            fee_fixed_minor=fee_fixed_minor)
        with self._lock:
            self.merchants[merchant.client_id] = merchant
        return merchant

    def merchant(self, client_id: str) -> Merchant | None:
        with self._lock:
            return self.merchants.get(client_id)

    def issue_token(self, client_id: str, ttl_s: int) -> str:
        token = "A21AA" + secrets.token_urlsafe(64)
        with self._lock:
            self.tokens[token] = (client_id, now_utc() + timedelta(seconds=ttl_s))
        return token

    def token_owner(self, token: str) -> Merchant | None:
        with self._lock:
            found = self.tokens.get(token)
            if found is None or found[1] <= now_utc():
                return None
            return self.merchants.get(found[0])

    def revoke_tokens(self) -> int:
        with self._lock:
            count = len(self.tokens)
            self.tokens.clear()
            return count

    def add_webhook(self, client_id: str, url: str, event_types: frozenset[str]) -> Webhook:
        webhook = Webhook(paypal_id(17), client_id, url, event_types)
        with self._lock:
            if any(w.client_id == client_id and w.url == url for w in self.webhooks.values()):
                raise PayPalError(400, "WEBHOOK_URL_ALREADY_EXISTS", "WEBHOOK_URL_ALREADY_EXISTS",
                                  "Webhook URL already exists.")
            self.webhooks[webhook.webhook_id] = webhook
        return webhook

    def webhooks_of(self, client_id: str) -> list[Webhook]:
        with self._lock:
            return [w for w in self.webhooks.values() if w.client_id == client_id]

    def webhook(self, webhook_id: str) -> Webhook | None:
        with self._lock:
            return self.webhooks.get(webhook_id)

    # -- PayPal-Request-Id -------------------------------------------------------------------------------

    def recall(self, client_id: str, request_id: str, operation: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            found = self.idempotency.get((client_id, request_id))
        if found is None:
            return None
        if found[0] != operation:
            raise unprocessable("DUPLICATE_REQUEST_ID", "PayPal-Request-Id was used for another operation.")
        return found[1], copy.deepcopy(found[2])

    def remember(self, client_id: str, request_id: str, operation: str, status: int, body: dict[str, Any]) -> None:
        with self._lock:
            self.idempotency.setdefault((client_id, request_id), (operation, status, copy.deepcopy(body)))

    # -- orders ------------------------------------------------------------------------------------------

    def create_order(self, order: Order) -> Order:
        with self._lock:
            self.orders[order.order_id] = order
            return copy.deepcopy(order)

    def _order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.forgotten:
            raise not_found("The specified resource does not exist.")
        return order

    def order(self, order_id: str) -> Order:
        with self._lock:
            return copy.deepcopy(self._order(order_id))

    def order_for_attempt(self, custom_id: str) -> Order | None:
        """The newest order whose custom_id (the hub's attempt id) is ``custom_id``."""
        with self._lock:
            found = [o for o in self.orders.values() if o.custom_id == custom_id and not o.forgotten]
            return copy.deepcopy(max(found, key=lambda o: o.created_at)) if found else None

    def approve(self, order_id: str, funding: FundingResult, payer: dict[str, Any]) -> Order:
        with self._lock:
            order = self._order(order_id)
            if order.status != "CREATED":
                raise IllegalTransition(f"order {order_id} is {order.status}; only CREATED orders can be approved")
            order.status, order.funding, order.payer, order.updated_at = "APPROVED", funding, payer, now_utc()
            return copy.deepcopy(order)

    def capture_order(self, order_id: str, client_id: str) -> tuple[Order, Capture]:
        with self._lock:
            order = self._order(order_id)
            if order.client_id != client_id:
                raise not_found("The specified resource does not exist.")
            if order.status == "COMPLETED":
                raise unprocessable("ORDER_ALREADY_CAPTURED", "Order already captured.")
            if order.status != "APPROVED":
                raise unprocessable("ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment.")
            if order.invoice_id and any(
                    c.client_id == client_id and c.invoice_id == order.invoice_id and c.order_id != order_id
                    and c.status != "DECLINED" for c in self.captures.values()):
                raise unprocessable("DUPLICATE_INVOICE_ID", "Duplicate Invoice ID detected. Your account setting "
                                    "requires that Invoice Id be unique for each transaction.")
            merchant = self.merchants[client_id]
            status, reason = {"success": ("COMPLETED", None), "fail": ("DECLINED", None),
                              "pending": ("PENDING", "PENDING_REVIEW")}[order.funding or "success"]
            now = now_utc()
            capture = Capture(
                capture_id=paypal_id(17), order_id=order_id, client_id=client_id, currency=order.currency,
                amount_minor=order.amount_minor,
                fee_minor=money.fee_minor(order.currency, order.amount_minor, merchant.fee_rate_bps,
                                          merchant.fee_fixed_minor),
                invoice_id=order.invoice_id, custom_id=order.custom_id, created_at=now, status=status,
                status_reason=reason, updated_at=now,
            )
            self.captures[capture.capture_id] = capture
            order.capture_ids.append(capture.capture_id)
            order.status, order.updated_at = "COMPLETED", now
            if status == "COMPLETED":
                self._book_payment(order, capture, now)
            return copy.deepcopy(order), copy.deepcopy(capture)

    def settle_capture(self, capture_id: str, success: bool) -> Capture:
        with self._lock:
            capture = self._capture(capture_id)
            if capture.status != "PENDING":
                raise IllegalTransition(f"capture {capture_id} is {capture.status}, not PENDING")
            now = now_utc()
            capture.status, capture.status_reason, capture.updated_at = ("COMPLETED" if success else "DECLINED"), None, now
            if success:
                self._book_payment(self.orders[capture.order_id], capture, now)
            return copy.deepcopy(capture)

    def _capture(self, capture_id: str) -> Capture:
        capture = self.captures.get(capture_id)
        if capture is None or self.orders[capture.order_id].forgotten:
            raise not_found("The specified resource does not exist.")
        return capture

    def capture(self, capture_id: str) -> Capture:
        with self._lock:
            return copy.deepcopy(self._capture(capture_id))

    def captures_of(self, order_id: str) -> list[Capture]:
        with self._lock:
            order = self.orders[order_id]
            return [copy.deepcopy(self.captures[c]) for c in order.capture_ids]

    # -- refunds -----------------------------------------------------------------------------------------

    def create_refund(self, capture_id: str, client_id: str, amount_minor: int | None, currency: str | None,
                      invoice_id: str | None, custom_id: str | None, note: str | None, complete_now: bool) -> Refund:
        with self._lock:
            capture = self._capture(capture_id)
            if capture.client_id != client_id:
                raise not_found("The specified resource does not exist.")
            if capture.status not in ("COMPLETED", "PARTIALLY_REFUNDED"):
                raise unprocessable("CAPTURE_FULLY_REFUNDED" if capture.status == "REFUNDED" else "REFUND_NOT_ALLOWED",
                                    f"Capture is {capture.status}; it cannot be refunded.")
            if currency is not None and currency != capture.currency:
                raise unprocessable("REFUND_CURRENCY_MISMATCH", "Refund must be in the currency of the capture.")
            wanted = capture.amount_minor - capture.refunded_minor if amount_minor is None else amount_minor
            if wanted <= 0 or capture.refunded_minor + wanted > capture.amount_minor:
                raise unprocessable("REFUND_AMOUNT_EXCEEDED", "The refund amount must be less than or equal to the "
                                    "capture amount that has not yet been refunded.")
            refund = Refund(paypal_id(17), capture_id, capture.order_id, client_id, capture.currency, wanted,
                            invoice_id, custom_id, note, now_utc())
            self.refunds[refund.refund_id] = refund
            capture.refunded_minor += wanted
            if complete_now:
                self._complete_refund(refund)
            return copy.deepcopy(refund)

    def settle_refund(self, refund_id: str) -> Refund:
        with self._lock:
            refund = self._refund(refund_id)
            if refund.status != "PENDING":
                raise IllegalTransition(f"refund {refund_id} is {refund.status}, not PENDING")
            self._complete_refund(refund)
            return copy.deepcopy(refund)

    def _complete_refund(self, refund: Refund) -> None:
        capture = self.captures[refund.capture_id]
        now = now_utc()
        refund.status, refund.updated_at = "COMPLETED", now
        completed = sum(r.amount_minor for r in self.refunds.values()
                        if r.capture_id == capture.capture_id and r.status == "COMPLETED")
        capture.status = "REFUNDED" if completed >= capture.amount_minor else "PARTIALLY_REFUNDED"
        capture.updated_at = now
        order = self.orders[refund.order_id]
        self._append(LedgerEntry(
            f"LE-{next(self._entry_ids):08d}", "refund", now, refund.client_id, self.merchants[refund.client_id].merchant_id,
            refund.currency, refund.amount_minor, 0, refund.refund_id, capture.capture_id, "TXN",
            refund.invoice_id or "", refund.custom_id or "", order.order_id,
        ))

    def _refund(self, refund_id: str) -> Refund:
        refund = self.refunds.get(refund_id)
        if refund is None or self.orders[refund.order_id].forgotten:
            raise not_found("The specified resource does not exist.")
        return refund

    def refund(self, refund_id: str) -> Refund:
        with self._lock:
            return copy.deepcopy(self._refund(refund_id))

    def refunds_of_order(self, order_id: str) -> list[Refund]:
        with self._lock:
            return [copy.deepcopy(r) for r in self.refunds.values() if r.order_id == order_id]

    # -- forgetting, ledger ------------------------------------------------------------------------------

    def forget(self, custom_id: str) -> int:
        with self._lock:
            found = [o for o in self.orders.values() if o.custom_id == custom_id and not o.forgotten]
            for order in found:
                order.forgotten = True
            return len(found)

    def forgotten_orders(self) -> set[str]:
        with self._lock:
            return {o.order_id for o in self.orders.values() if o.forgotten}

    def ledger_entries(self, client_id: str | None = None) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self.ledger if client_id is None or e.client_id == client_id]

    def _book_payment(self, order: Order, capture: Capture, at: datetime) -> None:
        self._append(LedgerEntry(
            f"LE-{next(self._entry_ids):08d}", "payment", at, order.client_id, self.merchants[order.client_id].merchant_id,
            capture.currency, capture.amount_minor, capture.fee_minor, capture.capture_id, order.order_id, "ODR",
            capture.invoice_id, capture.custom_id, order.order_id,
        ))

    def _append(self, entry: LedgerEntry) -> None:
        self.ledger.append(entry)
