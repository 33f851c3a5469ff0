"""The sandbox's records: accounts, PaymentIntents, charges, refunds, balance transactions, webhook endpoints.

Amounts are Stripe wire integers (the currency's smallest unit as Stripe counts it) and currencies lower-case,
as on the wire. Balance transactions are append-only; each snapshots what a report row needs, so reports are a
pure function of them and a statement fault can alter the rendering without touching the books.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Account:
    merchant_id: str  # acct_...
    secret_keys: list[str]
    publishable_key: str
    connect: bool  # events name the account in ``account`` (as for Connect endpoints)
    fee_rate_bps: int
    fixed_fee: int  # per successful charge, in the smallest unit of two-decimal currencies
    created: int


@dataclass(frozen=True, slots=True)
class TestCard:
    """What a test ``pm_...`` token does when it is confirmed (docs.stripe.com/testing)."""

    brand: str
    last4: str
    three_ds: bool = False
    decline_code: str | None = None  # card_declined with this decline code
    error_code: str = "card_declined"
    refund_fails: bool = False  # charge succeeds; its refunds go pending, then fail


TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242"),
    "pm_card_visa_debit": TestCard("visa", "5556"),
    "pm_card_mastercard": TestCard("mastercard", "4444"),
    "pm_card_amex": TestCard("amex", "8431"),
    "pm_card_unionpay": TestCard("unionpay", "0005"),
    "pm_card_threeDSecure2Required": TestCard("visa", "3220", three_ds=True),
    "pm_card_threeDSecureRequired": TestCard("visa", "3063", three_ds=True),
    "pm_card_authenticationRequired": TestCard("visa", "3184", three_ds=True),
    "pm_card_chargeDeclined": TestCard("visa", "0002", decline_code="generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard("visa", "9995", decline_code="insufficient_funds"),
    "pm_card_chargeDeclinedExpiredCard": TestCard("visa", "0069", decline_code="expired_card",
                                                  error_code="expired_card"),
    "pm_card_refundFail": TestCard("visa", "5126", refund_fails=True),
}


@dataclass(slots=True)
class Intent:
    id: str
    account: str
    amount: int
    currency: str
    client_secret: str
    created: int
    description: str | None
    metadata: dict[str, str]
    payment_method_types: list[str]
    confirmation_method: str  # automatic | manual
    capture_method: str  # automatic | manual
    status: str = "requires_payment_method"
    payment_method: str | None = None
    return_url: str | None = None
    next_action: dict[str, Any] | None = None
    last_payment_error: dict[str, Any] | None = None
    latest_charge: str | None = None
    amount_received: int = 0
    amount_capturable: int = 0
    canceled_at: int | None = None
    cancellation_reason: str | None = None
    authenticated: bool = False  # 3-D Secure completed for the current payment method
    forgotten: bool = False  # control API: the channel "lost" it


@dataclass(slots=True)
class Charge:
    id: str
    account: str
    payment_intent: str
    amount: int
    currency: str
    created: int
    payment_method: str
    metadata: dict[str, str]
    captured: bool = True
    amount_refunded: int = 0
    balance_transaction: str | None = None
    refund_fails: bool = False


@dataclass(slots=True)
class Refund:
    id: str
    account: str
    amount: int
    currency: str
    charge: str
    payment_intent: str
    created: int
    metadata: dict[str, str]
    reason: str | None
    status: str = "pending"
    balance_transaction: str | None = None
    failure_reason: str | None = None
    failure_balance_transaction: str | None = None


@dataclass(frozen=True, slots=True)
class BalanceTransaction:
    id: str
    account: str
    amount: int  # signed: + into the balance, - out of it
    currency: str
    fee: int
    type: str  # charge | refund | refund_failure
    reporting_category: str  # charge | refund | refund_failure
    source: str  # ch_... or re_...
    created: int
    available_on: int
    description: str | None
    payment_intent: str
    charge: str
    payment_metadata: dict[str, str]
    refund_metadata: dict[str, str]

    @property
    def net(self) -> int:
        return self.amount - self.fee


@dataclass(slots=True)
class WebhookEndpoint:
    id: str
    account: str
    url: str
    enabled_events: list[str]
    created: int
    api_version: str | None
    # (secret, expires_at unix or None); the first is current, older ones sign too until they expire
    secrets: list[tuple[str, float | None]] = field(default_factory=list)

    def active_secrets(self, now: float) -> list[str]:
        return [secret for secret, expires in self.secrets if expires is None or expires > now]

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


@dataclass(slots=True)
class CheckoutSession:
    """A hosted payment page session (``mode=payment``). Its PaymentIntent is made only when the payer pays, with
    ``payment_intent_data`` (metadata, description) applied, as Stripe does from API version 2022-08-01 on."""

    id: str
    account: str
    amount_total: int
    currency: str
    created: int
    expires_at: int
    success_url: str
    cancel_url: str | None
    client_reference_id: str | None
    metadata: dict[str, str]
    intent_metadata: dict[str, str]
    intent_description: str | None
    product_name: str
    status: str = "open"  # open | complete | expired
    payment_status: str = "unpaid"  # unpaid | paid
    payment_intent: str | None = None
