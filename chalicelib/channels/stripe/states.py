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

# requires_payment_method after a decline (or a failed 3-D Secure) carries ``last_payment_error`` but is still payable
# by whoever may confirm the intent. Under automatic confirmation that is the payer: Stripe.js lets them try another
# card, so the attempt stays PENDING until it succeeds or expires (and the expiry close cancels the intent). Under
# manual confirmation only a secret key can confirm it, i.e. only the hub, which never retries a decline: the
# attempt FAILED (and ``confirm`` cancels such an intent before it says so). See ``payment_outcome``.
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


def payment_outcome(status: str, *, has_payment_error: bool = False, manual_confirmation: bool = False) -> PaymentOutcome:
    """``manual_confirmation``: the intent's ``confirmation_method`` is ``manual`` (only a secret key can confirm it).

    A declined manual intent is FAILED whether it still waits for a payment method or the hub cancelled it after
    the decline (so a ``payment_intent.canceled`` racing the hub's own answer tells the same story).
    """
    if has_payment_error and manual_confirmation and status in ("requires_payment_method", "canceled"):
        return PaymentOutcome.FAILED
    return INTENT_STATUSES.get(status, PaymentOutcome.PENDING)


def refund_outcome(status: str) -> RefundOutcome:
    return REFUND_STATUSES.get(status, RefundOutcome.PROCESSING)


def _error_code(intent: Mapping[str, Any]) -> str | None:
    error = intent.get("last_payment_error")
    if not isinstance(error, Mapping):
        return None
    return str(error.get("decline_code") or error.get("code") or error.get("type") or "payment_error")


def _charge_created(charge: Any) -> datetime | None:
    return from_unix(charge.get("created")) if isinstance(charge, Mapping) else None


def charge_time(intent: Mapping[str, Any]) -> datetime | None:
    """When Stripe made the intent's successful charge: ``latest_charge`` when it is expanded (the adapter asks for
    ``expand[]=latest_charge``), else a succeeded charge embedded in ``charges.data`` (API versions before
    2022-11-15). None when the answer carries neither (a webhook event's ``latest_charge`` is only an id)."""
    latest = intent.get("latest_charge")
    if isinstance(latest, Mapping) and latest.get("status") in (None, "succeeded"):
        return _charge_created(latest)
    charges = intent.get("charges")
    listed = charges.get("data") if isinstance(charges, Mapping) else None
    times = [_charge_created(c) for c in listed if isinstance(c, Mapping) and c.get("status") == "succeeded"] \
        if isinstance(listed, list) else []
    found = [t for t in times if t is not None]
    return max(found) if found else None


def payment_status(intent: Mapping[str, Any], *, paid_at: datetime | None = None) -> PaymentStatus:
    """A PaymentIntent (API answer or event ``data.object``); raises ValueError on a malformed amount.

    ``raw_status`` carries the last decline reason (``requires_payment_method:card_declined``): the hub keeps it
    as the payment's failure reason when the attempt failed. ``paid_at`` (of a success) is when Stripe made the
    charge (``charge_time``), so the capture is value-dated on the day the money moved; ``paid_at`` as given
    (the event's time) only when the object does not say.
    """
    status = str(intent.get("status") or "")
    error_code = _error_code(intent)
    outcome = payment_outcome(status, has_payment_error=error_code is not None,
                              manual_confirmation=intent.get("confirmation_method") == "manual")
    with_reason = outcome is PaymentOutcome.FAILED or status == "requires_payment_method"
    raw_status = f"{status}:{error_code}" if with_reason and error_code is not None else status
    intent_id = intent.get("id")
    return PaymentStatus(
        outcome=outcome,
        raw_status=raw_status,
        channel_transaction_id=intent_id if isinstance(intent_id, str) and intent_id else None,
        amount=from_wire(intent.get("amount"), intent.get("currency")),
        paid_at=(charge_time(intent) or paid_at) if outcome is PaymentOutcome.SUCCEEDED else None,
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
