"""The channel's own references the hub recorded, as the keyword arguments the adapter seam takes.

Every caller of ``query``/``close``/``query_refund`` passes these, so an adapter finds the channel's object by
the handle the channel gave it (a Stripe intent id, a PayPal order id, UnionPay's original txnTime) instead of
searching the channel or reading the hub's records back.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from chalicelib.domain.clock import parse_iso
from chalicelib.domain.models import Attempt, Refund


class PaymentRefs(TypedDict):
    channel_order_ref: str | None


class RefundRefs(TypedDict):
    attempt_id: str
    channel_refund_id: str | None
    channel_order_ref: str | None
    created_at: datetime | None


def payment_refs(attempt: Attempt) -> PaymentRefs:
    return {"channel_order_ref": attempt.channel_order_ref}


def refund_refs(refund: Refund, attempt: Attempt | None) -> RefundRefs:
    """``attempt``: the refunded attempt, when the caller has it (its ``channel_order_ref`` is passed along)."""
    return {
        "attempt_id": refund.attempt_id,
        "channel_refund_id": refund.channel_refund_id,
        "channel_order_ref": attempt.channel_order_ref if attempt is not None else None,
        "created_at": _moment(refund.created_at),
    }


def _moment(stamp: str) -> datetime | None:
    """An unreadable stamp gives no reference (the adapter then falls back to its own lookup), never a wrong one."""
    try:
        moment = parse_iso(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
