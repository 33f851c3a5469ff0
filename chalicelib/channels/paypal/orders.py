"""Orders v2 bodies and answers: the create request, the approve link, and an order (or a capture) reduced to
a ``PaymentStatus``.

Our attempt id travels as ``reference_id``, ``custom_id`` and ``invoice_id`` of the one purchase unit, so every
capture, webhook and report row names it. PayPal's ``invoice_id`` must be unique per PayPal account, which the
attempt id is; ``custom_id`` is what captures and reports carry back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from chalicelib.channels.base import CreateRequest, PaymentOutcome, PaymentStatus
from chalicelib.channels.paypal.amounts import from_wire, to_wire
from chalicelib.channels.paypal.states import capture_outcome, order_outcome

# PayPal resource ids (orders, captures, refunds) are upper-case letters and digits; the hub's ids contain "_"
# and lower-case letters, so the two can never be confused.
PAYPAL_ID = re.compile(r"^[A-Z0-9]{8,36}$")
DESCRIPTION_CHARS_MAX = 127


def is_paypal_id(value: str) -> bool:
    return bool(PAYPAL_ID.match(value))


def request_id(object_id: str, operation: str) -> str:
    """``PayPal-Request-Id``: the same operation on the same object always sends the same id, so PayPal answers a
    retry with the original result instead of doing the work twice."""
    return f"{object_id}-{operation}"


def cancel_url(return_url: str) -> str:
    """Where PayPal sends a payer who cancels: the merchant's return URL, marked ``paypal=cancel``."""
    parts = urlsplit(return_url)
    query = f"{parts.query}&{urlencode({'paypal': 'cancel'})}" if parts.query else urlencode({"paypal": "cancel"})
    return urlunsplit(parts._replace(query=query))


def create_body(request: CreateRequest, brand_name: str | None) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "reference_id": request.attempt_id,
        "custom_id": request.attempt_id,
        "invoice_id": request.attempt_id,
        "description": request.description[:DESCRIPTION_CHARS_MAX],
        "amount": to_wire(request.amount),
    }
    context: dict[str, Any] = {"user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING"}
    if request.return_url:
        context["return_url"] = request.return_url
        context["cancel_url"] = cancel_url(request.return_url)
    if brand_name:
        context["brand_name"] = brand_name[:127]
    return {"intent": "CAPTURE", "purchase_units": [unit], "application_context": context}


def link(resource: Mapping[str, Any], *rels: str) -> str | None:
    links = resource.get("links")
    for rel in rels:
        for item in links if isinstance(links, list) else []:
            if isinstance(item, Mapping) and item.get("rel") == rel and isinstance(item.get("href"), str):
                return str(item["href"])
    return None


def approve_link(order: Mapping[str, Any]) -> str | None:
    return link(order, "approve", "payer-action")


def purchase_unit(order: Mapping[str, Any]) -> Mapping[str, Any]:
    units = order.get("purchase_units")
    if not isinstance(units, list) or not units or not isinstance(units[0], Mapping):
        raise ValueError("order has no purchase unit")
    unit: Mapping[str, Any] = units[0]
    return unit


def captures(order: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    payments = purchase_unit(order).get("payments")
    found = payments.get("captures") if isinstance(payments, Mapping) else None
    return [c for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []


def attempt_id_of_order(order: Mapping[str, Any]) -> str | None:
    unit = purchase_unit(order)
    for key in ("custom_id", "reference_id", "invoice_id"):
        value = unit.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def capture_status(capture: Mapping[str, Any]) -> PaymentStatus:
    """A capture (in an order, a capture answer or a PAYMENT.CAPTURE.* webhook) as a ``PaymentStatus``."""
    raw = str(capture.get("status") or "")
    outcome = capture_outcome(raw)
    capture_id = capture.get("id")
    return PaymentStatus(
        outcome=outcome,
        raw_status=raw,
        channel_transaction_id=capture_id if isinstance(capture_id, str) and capture_id else None,
        amount=from_wire(capture["amount"]) if "amount" in capture else None,
        paid_at=_time(capture.get("create_time")) if outcome is PaymentOutcome.SUCCEEDED else None,
    )


def decisive_capture(order: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The capture that says where the money is: a completed one if any, else the latest."""
    found = captures(order)
    for capture in found:
        if capture_outcome(str(capture.get("status") or "")) is PaymentOutcome.SUCCEEDED:
            return capture
    return found[-1] if found else None


def order_status(order: Mapping[str, Any]) -> PaymentStatus:
    """An order (GET, create or capture answer, CHECKOUT.ORDER.* webhook) as a ``PaymentStatus``."""
    raw = str(order.get("status") or "")
    capture = decisive_capture(order)
    if capture is not None:
        return capture_status(capture)
    if raw == "COMPLETED":
        # Completed without a capture in the answer (a minimal representation): not proof of money.
        return PaymentStatus(outcome=PaymentOutcome.PENDING, raw_status=raw)
    unit_amount = purchase_unit(order).get("amount")
    return PaymentStatus(
        outcome=order_outcome(raw), raw_status=raw,
        amount=from_wire(unit_amount) if unit_amount is not None else None,
    )
