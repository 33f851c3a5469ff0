"""The hub's records. Immutable values; a change is a new value written under a condition on the old one."""

from __future__ import annotations

from dataclasses import field, replace
from typing import Any

from chalicelib.domain.money import Money
from chalicelib.domain.states import AttemptState, PaymentState, RefundState
from chalicelib.domain.value_class import value_class


@value_class
class Payment:
    """A merchant's payment (the order it pays for), one per merchant order number; its attempts are the channel calls."""

    payment_id: str
    merchant_id: str
    merchant_order_no: str
    amount: int
    currency: str
    description: str
    method: str
    status: PaymentState
    version: int
    created_at: str
    updated_at: str
    expires_at: str
    current_attempt_id: str | None = None
    succeeded_attempt_id: str | None = None
    notify_url: str | None = None
    payer: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    action: dict[str, Any] | None = None
    # Refund bookkeeping. refundable = captured - refunded - refund_pending, kept as its own attribute so a
    # DynamoDB condition can guard it (conditions cannot add).
    amount_captured: int = 0
    amount_refunded: int = 0
    amount_refund_pending: int = 0
    amount_refundable: int = 0
    failure_reason: str | None = None
    # What may be shown of the card a card method was paid with: token, brand, last4, expiry, fingerprint.
    # The number itself lives only encrypted in the card vault.
    card: dict[str, Any] | None = None
    # Set when the payment is a hosted checkout session (``cs_...``): the payer may make several attempts on it
    # (retry, switch method), so a failed attempt leaves it open, and money on a switched-away attempt is late.
    session_id: str | None = None
    # Risk decisions by operation ("create", "confirm"): action, score, reasons, rules; read by operators only.
    risk: dict[str, Any] | None = None
    # The step-up the payer was asked for: methods offered, the challenge, its outcome and how long it took.
    step_up: dict[str, Any] | None = None
    # Paid by instalments: the schedule the payer was shown (domain/instalments.py ``Schedule.public``).
    instalments: dict[str, Any] | None = None
    # Settled to the merchant in another currency than the payer sees (docs/fx.md): ``amount``/``currency`` are
    # the presentment side, these the settlement side at the rate snapshot locked at creation (``fx_rate``).
    # None when the payment settles in its own currency. ``settlement_refundable`` is kept like
    # ``amount_refundable`` so a refund's condition can guard it.
    settlement_currency: str | None = None
    settlement_amount: int | None = None
    settlement_refunded: int = 0
    settlement_refundable: int = 0
    fx_rate: dict[str, Any] | None = None

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def converted(self) -> bool:
        return self.settlement_currency is not None and self.settlement_currency != self.currency

    @property
    def settlement_money(self) -> Money:
        """What the merchant is owed for one capture: the locked settlement amount, or the amount itself."""
        if self.converted:
            assert self.settlement_currency is not None and self.settlement_amount is not None
            return Money(self.settlement_amount, self.settlement_currency)
        return self.money

    def evolve(self, **changes: Any) -> Payment:
        return replace(self, **changes)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.payment_id,
            "object": "payment",
            "merchant_order_no": self.merchant_order_no,
            "amount": self.amount,
            "currency": self.currency,
            "description": self.description,
            "method": self.method,
            "status": str(self.status),
            "amount_captured": self.amount_captured,
            "amount_refunded": self.amount_refunded,
            "amount_refund_pending": self.amount_refund_pending,
            "action": self.action,
            "attempt_id": self.current_attempt_id,
            "notify_url": self.notify_url,
            "metadata": self.metadata,
            "failure_reason": self.failure_reason,
            "card": self.card,
            "step_up": self.step_up,
            "instalments": self.instalments,
            "settlement_amount": self.settlement_money.minor,
            "settlement_currency": self.settlement_money.currency,
            "settlement_amount_refunded": self.settlement_refunded if self.converted else self.amount_refunded,
            "fx_rate": self.fx_rate,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
        }


@value_class
class Attempt:
    """One try at a channel account to collect a payment; a payment may have several, at most one succeeds."""

    attempt_id: str
    payment_id: str
    merchant_id: str
    channel: str
    account_id: str
    method: str
    amount: int
    currency: str
    status: AttemptState
    version: int
    created_at: str
    updated_at: str
    expires_at: str
    channel_order_ref: str | None = None
    channel_transaction_id: str | None = None
    raw_status: str | None = None
    card_token: str | None = None  # the vaulted card this attempt was made with (``card_...``)
    return_url: str | None = None  # where the payer returns after a redirect step; passed again on confirm
    instalments: dict[str, Any] | None = None  # the payment's schedule, sent to the channel with every create

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    def evolve(self, **changes: Any) -> Attempt:
        return replace(self, **changes)


@value_class
class Refund:
    """Money sent back for a payment, through the attempt that collected it."""

    refund_id: str
    payment_id: str
    attempt_id: str
    merchant_id: str
    channel: str
    account_id: str
    amount: int
    currency: str
    status: RefundState
    version: int
    created_at: str
    updated_at: str
    merchant_refund_no: str
    reason: str | None = None
    automatic: bool = False  # created by the hub (late or double success), not by the merchant
    channel_refund_id: str | None = None
    failure_reason: str | None = None
    risk: dict[str, Any] | None = None  # the risk decision taken on this refund (operators only)
    # A refund of a converted payment: what it takes back from the merchant, at the payment's locked rate.
    settlement_amount: int | None = None
    settlement_currency: str | None = None

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def settlement_money(self) -> Money:
        if self.settlement_currency is not None and self.settlement_currency != self.currency:
            assert self.settlement_amount is not None
            return Money(self.settlement_amount, self.settlement_currency)
        return self.money

    def evolve(self, **changes: Any) -> Refund:
        return replace(self, **changes)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.refund_id,
            "object": "refund",
            "payment_id": self.payment_id,
            "amount": self.amount,
            "currency": self.currency,
            "status": str(self.status),
            "merchant_refund_no": self.merchant_refund_no,
            "reason": self.reason,
            "automatic": self.automatic,
            "settlement_amount": self.settlement_money.minor,
            "settlement_currency": self.settlement_money.currency,
            "failure_reason": self.failure_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@value_class
class Merchant:
    """A merchant of the hub and the settings its payments follow."""

    merchant_id: str
    name: str
    late_success_policy: str = "refund"  # "accept" | "refund": what to do with money arriving after close
    webhook_url: str | None = None
    status: str = "active"
