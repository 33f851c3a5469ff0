"""PayPal webhook events reduced to ``Notification`` values, after the transmission signature was verified.

  CHECKOUT.ORDER.APPROVED          order    payment, REQUIRES_CONFIRMATION (the hub captures)
  PAYMENT.CAPTURE.COMPLETED        capture  payment, succeeded (channel_transaction_id = capture id)
  PAYMENT.CAPTURE.PENDING          capture  payment, processing
  PAYMENT.CAPTURE.DENIED           capture  payment, failed
  PAYMENT.CAPTURE.REFUNDED         refund   refund, by its status (object id = our refund id in custom_id)
  PAYMENT.CAPTURE.REVERSED         refund   refund made by PayPal (chargeback, reversal): never one of ours, so
                                            its object id is PayPal's refund id; marked ``alert="chargeback"``,
                                            the hub acknowledges it and raises it for a person, never applies it

The payment's object id is the attempt id we sent as ``custom_id``; the merchant id is the payee's
(``payee.merchant_id``; for refunds the paying merchant, ``payer.merchant_id``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.channels.base import (
    CallbackReply,
    Notification,
    NotificationKind,
    PaymentStatus,
    RefundOutcome,
    RefundStatus,
)
from chalicelib.channels.paypal.amounts import from_wire
from chalicelib.channels.paypal.orders import capture_status, order_status, purchase_unit
from chalicelib.channels.paypal.states import refund_outcome
from chalicelib.domain.errors import CallbackRejected

PAYMENT_CAPTURE_EVENTS = frozenset({"PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.PENDING", "PAYMENT.CAPTURE.DENIED"})
ORDER_EVENTS = frozenset({"CHECKOUT.ORDER.APPROVED", "CHECKOUT.ORDER.COMPLETED"})
REFUND_EVENTS = frozenset({"PAYMENT.CAPTURE.REFUNDED"})
REVERSAL_EVENTS = frozenset({"PAYMENT.CAPTURE.REVERSED"})
SUPPORTED_EVENTS = PAYMENT_CAPTURE_EVENTS | ORDER_EVENTS | REFUND_EVENTS | REVERSAL_EVENTS


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _merchant(block: Any) -> str | None:
    return _text(block.get("merchant_id")) if isinstance(block, Mapping) else None


def refund_status(resource: Mapping[str, Any]) -> RefundStatus:
    raw = str(resource.get("status") or "")
    amount = resource.get("amount")
    return RefundStatus(
        outcome=refund_outcome(raw), raw_status=raw, channel_refund_id=_text(resource.get("id")),
        amount=from_wire(amount) if amount is not None else None,
    )


def parse_event(event: Mapping[str, Any]) -> Notification:
    event_id, event_type, resource = _text(event.get("id")), event.get("event_type"), event.get("resource")
    if event_id is None or not isinstance(resource, Mapping):
        raise CallbackRejected("webhook event lacks id or resource")
    if event_type not in SUPPORTED_EVENTS:
        raise CallbackRejected("unsupported event_type")
    try:
        return _notification(str(event_type), event_id, resource)
    except (KeyError, ValueError) as exc:
        raise CallbackRejected(f"webhook resource is malformed: {exc}") from None


def _notification(event_type: str, event_id: str, resource: Mapping[str, Any]) -> Notification:
    kind = NotificationKind.PAYMENT
    payment: PaymentStatus | None = None
    refund: RefundStatus | None = None
    alert: str | None = None
    if event_type in ORDER_EVENTS:
        unit = purchase_unit(resource)
        object_id = _text(unit.get("custom_id")) or _text(unit.get("reference_id"))
        merchant = _merchant(unit.get("payee"))
        payment = order_status(resource)
    elif event_type in PAYMENT_CAPTURE_EVENTS:
        object_id, merchant = _text(resource.get("custom_id")), _merchant(resource.get("payee"))
        payment = capture_status(resource)
    elif event_type in REFUND_EVENTS:
        kind = NotificationKind.REFUND
        object_id = _text(resource.get("custom_id")) or _text(resource.get("invoice_id")) or _text(resource.get("id"))
        merchant = _merchant(resource.get("payer"))
        refund = refund_status(resource)
    else:  # a reversal PayPal made: never one of our refunds, never final
        kind = NotificationKind.REFUND
        object_id, merchant = _text(resource.get("id")), _merchant(resource.get("payer"))
        refund = RefundStatus(outcome=RefundOutcome.PROCESSING, raw_status="REVERSED",
                              channel_refund_id=object_id)
        alert = "chargeback"
    if object_id is None or merchant is None:
        raise CallbackRejected(f"{event_type} resource lacks our id or the merchant id")
    return Notification(kind=kind, event_id=event_id, channel_merchant_id=merchant, channel_app_id=None,
                        object_id=object_id, payment=payment, refund=refund, raw=dict(resource), alert=alert)


def acknowledgement(ok: bool) -> CallbackReply:
    """PayPal only looks at the status: any 2xx is delivered, anything else is retried (up to 25 times, 3 days)."""
    if ok:
        return CallbackReply(status=200)
    body = json.dumps({"error": "rejected"}).encode()
    return CallbackReply(status=400, body=body, headers={"Content-Type": "application/json"})
