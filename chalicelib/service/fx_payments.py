"""What a payment settled in another currency adds to the create, capture and refund flows (docs/fx.md).

Each function answers the same question for a payment in its own currency (nothing to add, the plain journal),
so the flows call them unconditionally and stay one path.
- create: lock the latest valid rate snapshot of ``<presentment><settlement>`` and record the settlement side;
- capture: book clearing in the presentment currency, the merchant's payable in the settlement currency,
  through the pair's position accounts; the merchant's refundable settlement amount grows by the locked amount;
- refund: take back the settlement side at the locked ratio (``fx.settlement_side``): reserved with the
  presentment amount under one condition, so concurrent refunds can never together take more than was booked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain import fx, ledger
from chalicelib.domain.errors import InvalidState
from chalicelib.domain.ledger import Journal
from chalicelib.domain.models import Attempt, Payment, Refund
from chalicelib.domain.money import Money
from chalicelib.domain.value_class import value_class


def settlement_fields(money: Money, settlement_currency: str | None, at: datetime) -> dict[str, Any]:
    """The payment's settlement side, locked now: empty when it settles in its own currency. Raises a 422 naming
    ``settlement_currency`` when no snapshot of the pair is valid, a 400 naming ``amount`` when the amount
    converts to less than one minor unit."""
    if settlement_currency is None or settlement_currency == money.currency:
        return {}
    from chalicelib.service import fx_rates  # the rate store: loaded by converted creates only

    locked, snapshot = fx_rates.lock(money, settlement_currency, at)
    return {"settlement_currency": settlement_currency, "settlement_amount": locked.settlement.minor,
            "fx_rate": snapshot.record()}


def captured(payment: Payment, attempt: Attempt) -> Journal:
    """The capture journal of ``attempt``: both sides at the payment's locked rate when it is converted."""
    if not payment.converted:
        return ledger.payment_captured(attempt.attempt_id, attempt.account_id, attempt.merchant_id, attempt.money)
    return ledger.fx_payment_captured(attempt.attempt_id, attempt.account_id, attempt.merchant_id, attempt.money,
                                      payment.settlement_money)


def capture_changes(payment: Payment, *, auto_refund: bool) -> dict[str, Any]:
    """Payment attributes a capture sets besides the presentment counters (a capture refunded at once by the hub
    is not refundable by the merchant, on either side)."""
    if not payment.converted or auto_refund:
        return {}
    return {"settlement_refundable": payment.settlement_refundable + payment.settlement_money.minor}


@value_class
class RefundSide:
    """What a refund of a converted payment reserves on the settlement side, and how its update is guarded."""

    fields: dict[str, Any]  # the refund's settlement_amount and settlement_currency
    add: dict[str, int]  # added to the payment with the presentment reservation
    condition: str  # ANDed to the reservation's condition
    values: dict[str, Any]


NO_SIDE = RefundSide(fields={}, add={}, condition="", values={})


def refund_side(payment: Payment, amount: int) -> RefundSide:
    """The settlement amount a refund of ``amount`` takes back, from the payment as just read. The reservation's
    condition requires the settlement amount still to be there, so a race refuses rather than overdraws."""
    if not payment.converted:
        return NO_SIDE
    assert payment.settlement_amount is not None and payment.settlement_currency is not None
    try:
        side = fx.settlement_side(amount, presentment_total=payment.amount,
                                  settlement_total=payment.settlement_amount,
                                  presentment_left=payment.amount_refundable,
                                  settlement_left=payment.settlement_refundable)
    except fx.FxError as exc:
        raise InvalidState(f"payment's refundable amounts do not allow it: {exc}", param="amount") from exc
    return RefundSide(fields={"settlement_amount": side, "settlement_currency": payment.settlement_currency},
                      add={"settlement_refundable": -side},
                      condition=" AND settlement_refundable >= :settlement",
                      values={":settlement": side})


def auto_refund_fields(payment: Payment) -> dict[str, Any]:
    """A late second capture refunded whole by the hub takes back exactly what that capture booked."""
    if not payment.converted:
        return {}
    return {"settlement_amount": payment.settlement_money.minor, "settlement_currency": payment.settlement_currency}


def refund_paid(refund: Refund) -> Journal:
    settlement = refund.settlement_money
    if settlement.currency == refund.currency:
        return ledger.refund_paid(refund.refund_id, refund.account_id, refund.merchant_id, refund.money)
    return ledger.fx_refund_paid(refund.refund_id, refund.account_id, refund.merchant_id, refund.money, settlement)


def refund_settled(refund: Refund, *, succeeded: bool) -> dict[str, int]:
    """The payment's settlement counters when a refund ends: paid -> refunded; failed -> refundable again."""
    settlement = refund.settlement_money
    if settlement.currency == refund.currency:
        return {}
    return {"settlement_refunded" if succeeded else "settlement_refundable": settlement.minor}
