"""PaymentIntent and Refund statuses mapped exhaustively to the hub's outcomes; objects reduced to statuses.

Anything unknown is "not final yet" (PENDING / PROCESSING) so the hub queries again: a status we do not
recognise is never read as money having moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.channels.base import PaymentOutcome, PaymentStatus, RefundOutcome, RefundStatus
from chalicelib.channels.stripe.amounts import from_wire

# requires_payment_method is split below: with a last_payment_error the attempt failed (a decline, a failed
# 3-D Secure); without one the payer simply has not given a card yet.
INTENT_STATUSES: Mapping[str, PaymentOutcome] = {
    "requires_payment_method": PaymentOutcome.PENDING,
    "requires_action": PaymentOutcome.PENDING,  # the payer must authenticate (3-D Secure)
    # The payer is done; under manual confirmation the hub must confirm (or capture) at Stripe.
    "requires_confirmation": PaymentOutcome.REQUIRES_CONFIRMATION,
    "requires_capture": PaymentOutcome.REQUIRES_CONFIRMATION,  # authorised only; confirm() captures it
    "processing": PaymentOutcome.PROCESSING,
    "succeeded": PaymentOutcome.SUCCEEDED,
    "canceled": PaymentOutcome.CLOSED,
}

REFUND_STATUSES: Mapping[str, RefundOutcome] = {
    "pending": RefundOutcome.PROCESSING,
    "requires_action": RefundOutcome.PROCESSING,  # the customer must give bank details; not final
    "succeeded": RefundOutcome.SUCCEEDED,
    "failed": RefundOutcome.FAILED,
    "canceled": RefundOutcome.FAILED,
}


def payment_outcome(status: str, *, has_payment_error: bool = False) -> PaymentOutcome:
    if status == "requires_payment_method" and has_payment_error:
        return PaymentOutcome.FAILED
    return INTENT_STATUSES.get(status, PaymentOutcome.PENDING)


def refund_outcome(status: str) -> RefundOutcome:
    return REFUND_STATUSES.get(status, RefundOutcome.PROCESSING)


def _error_code(intent: Mapping[str, Any]) -> str | None:
    error = intent.get("last_payment_error")
    if not isinstance(error, Mapping):
        return None
    return str(error.get("decline_code") or error.get("code") or error.get("type") or "payment_error")


def payment_status(intent: Mapping[str, Any], *, paid_at: datetime | None = None) -> PaymentStatus:
    """A PaymentIntent (API answer or event ``data.object``); raises ValueError on a malformed amount.

    ``raw_status`` carries the decline reason after a failure (``requires_payment_method:card_declined``):
    the hub keeps it as the payment's failure reason.
    """
    status = str(intent.get("status") or "")
    error_code = _error_code(intent)
    outcome = payment_outcome(status, has_payment_error=error_code is not None)
    raw_status = f"{status}:{error_code}" if outcome is PaymentOutcome.FAILED else status
    intent_id = intent.get("id")
    return PaymentStatus(
        outcome=outcome,
        raw_status=raw_status,
        channel_transaction_id=intent_id if isinstance(intent_id, str) and intent_id else None,
        amount=from_wire(intent.get("amount"), intent.get("currency")),
        paid_at=paid_at if outcome is PaymentOutcome.SUCCEEDED else None,
    )


def refund_status(refund: Mapping[str, Any]) -> RefundStatus:
    """A Refund object; ``raw_status`` carries Stripe's ``failure_reason`` when it failed."""
    status = str(refund.get("status") or "")
    outcome = refund_outcome(status)
    failure = refund.get("failure_reason")
    raw_status = f"{status}:{failure}" if outcome is RefundOutcome.FAILED and failure else status
    refund_id = refund.get("id")
    return RefundStatus(
        outcome=outcome,
        raw_status=raw_status,
        channel_refund_id=refund_id if isinstance(refund_id, str) and refund_id else None,
        amount=from_wire(refund.get("amount"), refund.get("currency")),
    )


def from_unix(value: Any) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None
