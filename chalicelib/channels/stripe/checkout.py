"""``stripe.checkout``: the payer pays on Stripe's own hosted page (a Checkout Session), so no Stripe.js runs on
the hub's page or the merchant's.

One attempt makes one session (``POST /v1/checkout/sessions`` under the key ``payhub:<attempt>:checkout``), in
``mode=payment`` with one ``price_data`` line item for the attempt's amount. Our attempt id rides in
``client_reference_id``, in the session's ``metadata`` and in ``payment_intent_data.metadata``, so the intent Stripe
makes when the payer pays carries it too (and refunds, statements and ``payment_intent.*`` events find the
attempt as for ``stripe.card``). The session id (``cs_...``) is the ``channel_order_ref``; the intent id is the
``channel_transaction_id`` once paid.

Session ``status`` / ``payment_status`` -> the hub's outcome:
  open                      -> PENDING (the payer has not paid yet)
  complete + paid           -> the intent's own status (SUCCEEDED, dated by its charge)
  complete + unpaid         -> PROCESSING (a delayed payment method; the intent's events settle it)
  expired                   -> CLOSED (nobody can pay it any more)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.channels.base import ClientAction, CreateRequest, PaymentOutcome, PaymentStatus
from chalicelib.channels.stripe.amounts import from_wire, to_wire, wire_currency
from chalicelib.channels.stripe.intents import ATTEMPT_KEY, DESCRIPTION_CHARS_MAX, check_our_id
from chalicelib.domain.errors import ChannelError, InvalidRequest

METHOD = "stripe.checkout"
SESSION_ID = re.compile(r"^cs_(test|live)_[A-Za-z0-9]{1,250}$")
PRODUCT_NAME_CHARS_MAX = 250
# Stripe accepts an ``expires_at`` 30 minutes to 24 hours after the create; the hub expires the session itself
# when the attempt expires (``close``), so a shorter attempt simply asks for the shortest Stripe allows.
EXPIRES_MIN = timedelta(minutes=31)
EXPIRES_MAX = timedelta(hours=23, minutes=59)


def is_session_id(ref: str | None) -> bool:
    return ref is not None and SESSION_ID.match(ref) is not None


def create_params(request: CreateRequest, *, now: datetime | None = None) -> dict[str, Any]:
    try:
        amount, currency = to_wire(request.amount), wire_currency(request.amount)
    except ValueError as exc:
        raise InvalidRequest(f"Stripe cannot take this amount: {exc}", param="amount") from exc
    if not request.return_url:
        raise InvalidRequest("return_url is required for stripe.checkout: Stripe's page sends the payer back there",
                             param="return_url")
    if request.payment_method is not None:
        raise InvalidRequest("payment_method is for stripe.card; stripe.checkout collects the card on Stripe's page",
                             param="payment_method")
    attempt_id = check_our_id(request.attempt_id, "attempt_id")
    moment = now or datetime.now(UTC)
    expires = request.expires_at if request.expires_at.tzinfo else request.expires_at.replace(tzinfo=UTC)
    expires = min(max(expires, moment + EXPIRES_MIN), moment + EXPIRES_MAX)
    description = request.description[:DESCRIPTION_CHARS_MAX]
    return {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": currency, "unit_amount": amount,
            "product_data": {"name": description[:PRODUCT_NAME_CHARS_MAX] or attempt_id}}}],
        "payment_method_types": ["card"],
        "success_url": request.return_url,
        "cancel_url": request.return_url,
        "client_reference_id": attempt_id,
        "metadata": {ATTEMPT_KEY: attempt_id},
        "payment_intent_data": {"description": description, "metadata": {ATTEMPT_KEY: attempt_id}},
        "expires_at": int(expires.timestamp()),
    }


def check_session(session: Mapping[str, Any], attempt_id: str, *, session_id: str | None = None,
                  amount: int | None = None, currency: str | None = None) -> str:
    """What Stripe says must be about what we asked: our attempt's session (and, just made, our amount)."""
    found = session.get("id")
    metadata = session.get("metadata")
    ours = isinstance(metadata, Mapping) and metadata.get(ATTEMPT_KEY) == attempt_id
    if not isinstance(found, str) or not is_session_id(found) or (session_id is not None and found != session_id) \
            or not ours or session.get("object") != "checkout.session":
        raise ChannelError(f"Checkout Session answer is not the attempt {attempt_id}'s session",
                           channel_code="ATTEMPT_MISMATCH")
    if amount is not None and (session.get("amount_total") != amount or session.get("currency") != currency):
        raise ChannelError(f"Checkout Session {found} was made for another amount than asked",
                           channel_code="AMOUNT_MISMATCH")
    return found


def redirect_action(session: Mapping[str, Any]) -> ClientAction:
    url = session.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ChannelError("Stripe answered a Checkout Session create without a page url")
    return ClientAction("redirect_url", {"url": url, "checkout_session_id": str(session.get("id"))})


def paid_intent_id(session: Mapping[str, Any]) -> str | None:
    """The intent a paid session made (an id, or the object when expanded); None while it is not paid."""
    if session.get("status") != "complete" or session.get("payment_status") != "paid":
        return None
    intent = session.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, Mapping) else intent
    if not isinstance(intent_id, str) or not intent_id.startswith("pi_"):
        raise ChannelError("a paid Checkout Session names no PaymentIntent")
    return intent_id


def unpaid_status(session: Mapping[str, Any]) -> PaymentStatus:
    """A session not (yet) paid; raises ValueError on a malformed amount."""
    status = str(session.get("status") or "")
    outcome = {"open": PaymentOutcome.PENDING, "expired": PaymentOutcome.CLOSED,
               "complete": PaymentOutcome.PROCESSING}.get(status, PaymentOutcome.PENDING)
    return PaymentStatus(outcome=outcome, raw_status=f"checkout_session:{status}:{session.get('payment_status')}",
                         amount=from_wire(session.get("amount_total"), session.get("currency")))


def event_status(session: Mapping[str, Any], *, paid_at: datetime | None) -> PaymentStatus:
    """A ``checkout.session.*`` event's object: a paid session is SUCCEEDED with its intent as the transaction."""
    intent_id = session.get("payment_intent")
    if session.get("status") == "complete" and session.get("payment_status") == "paid" and isinstance(intent_id, str):
        return PaymentStatus(outcome=PaymentOutcome.SUCCEEDED, raw_status="checkout_session:complete:paid",
                             channel_transaction_id=intent_id, paid_at=paid_at,
                             amount=from_wire(session.get("amount_total"), session.get("currency")))
    return unpaid_status(session)
