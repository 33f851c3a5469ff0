"""PayPal statuses mapped exhaustively to the hub's outcomes. Unknown statuses mean "query again", never success.

An order's status says what the payer did; only a capture's status says whether money moved: a
COMPLETED order is not the same as having the money (docs/channels/paypal.md#the-life-of-a-payment).
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.channels.base import PaymentOutcome, RefundOutcome

ORDER_STATES: Mapping[str, PaymentOutcome] = {
    "CREATED": PaymentOutcome.PENDING,  # waiting for the payer to approve
    "SAVED": PaymentOutcome.PENDING,
    "PAYER_ACTION_REQUIRED": PaymentOutcome.PENDING,
    "APPROVED": PaymentOutcome.REQUIRES_CONFIRMATION,  # the payer approved; the hub must capture
    "VOIDED": PaymentOutcome.CLOSED,
    # COMPLETED is decided by the capture, see CAPTURE_STATES.
}

CAPTURE_STATES: Mapping[str, PaymentOutcome] = {
    "COMPLETED": PaymentOutcome.SUCCEEDED,
    "PARTIALLY_REFUNDED": PaymentOutcome.SUCCEEDED,  # captured, and a refund has since been made
    "REFUNDED": PaymentOutcome.SUCCEEDED,
    "PENDING": PaymentOutcome.PROCESSING,  # held (status_details.reason says why); a webhook follows
    "DECLINED": PaymentOutcome.FAILED,
    "FAILED": PaymentOutcome.FAILED,
}

REFUND_STATES: Mapping[str, RefundOutcome] = {
    "COMPLETED": RefundOutcome.SUCCEEDED,
    "PENDING": RefundOutcome.PROCESSING,
    "FAILED": RefundOutcome.FAILED,
    "CANCELLED": RefundOutcome.FAILED,  # cancelled before it completed: no money moved
}


def order_outcome(status: str) -> PaymentOutcome:
    return ORDER_STATES.get(status, PaymentOutcome.PENDING)


def capture_outcome(status: str) -> PaymentOutcome:
    return CAPTURE_STATES.get(status, PaymentOutcome.PENDING)


def refund_outcome(status: str) -> RefundOutcome:
    return REFUND_STATES.get(status, RefundOutcome.PROCESSING)
