"""PaymentIntent requests and what the payer's client must do next.

Two ways to pay ``stripe.card``:
- with ``payment_method`` (a ``pm_...`` token the merchant's page collected): the intent is created and confirmed
  at once under *manual confirmation* with a ``return_url``. A card that needs 3-D Secure answers
  ``requires_action`` with a ``redirect_to_url``: the action is ``three_ds`` ``{"redirect_url"}``. When the payer
  comes back the intent is ``requires_confirmation`` and the hub confirms it (``confirm``).
- without: the intent is created unconfirmed and the action is ``app_params`` ``{"client_secret",
  "publishable_key"}`` for Stripe.js, which collects the card, runs 3-D Secure and confirms in the browser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chalicelib.channels.base import ClientAction, CreateRequest
from chalicelib.channels.stripe.amounts import to_wire, wire_currency
from chalicelib.channels.stripe.credentials import StripeCredentials
from chalicelib.domain.errors import InvalidRequest

METHODS = frozenset({"stripe.card"})
ATTEMPT_KEY = "attempt_id"
DESCRIPTION_CHARS_MAX = 1000
_PAYMENT_METHOD = re.compile(r"^pm_[A-Za-z0-9_]{1,250}$")
_OUR_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def idempotency_key(object_id: str, operation: str) -> str:
    """Derived from our id and the operation, so every retry of one operation, from any process, is one."""
    return f"payhub:{object_id}:{operation}"


def check_our_id(value: str, name: str) -> str:
    """Our ids go into search queries and keys; only [A-Za-z0-9_] may pass."""
    if not _OUR_ID.match(value):
        raise InvalidRequest(f"{name} must be 1-64 of [A-Za-z0-9_]", param=name)
    return value


def create_params(request: CreateRequest) -> dict[str, Any]:
    try:
        amount, currency = to_wire(request.amount), wire_currency(request.amount)
    except ValueError as exc:
        raise InvalidRequest(f"Stripe cannot take this amount: {exc}", param="amount") from exc
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency,
        "description": request.description[:DESCRIPTION_CHARS_MAX],
        "payment_method_types": ["card"],
        "metadata": {ATTEMPT_KEY: check_our_id(request.attempt_id, "attempt_id")},
    }
    if request.payment_method is None:
        return params
    if not _PAYMENT_METHOD.match(request.payment_method):
        raise InvalidRequest("payment_method must be a Stripe pm_ id", param="payment_method")
    if not request.return_url:
        raise InvalidRequest("return_url is required with payment_method: 3-D Secure sends the payer back there",
                             param="return_url")
    params.update({
        "payment_method": request.payment_method,
        "confirm": True,
        "confirmation_method": "manual",
        "return_url": request.return_url,
    })
    return params


def three_ds_action(intent: Mapping[str, Any]) -> ClientAction | None:
    """The 3-D Secure redirect of an intent waiting for the payer, if that is what it waits for."""
    next_action = intent.get("next_action")
    if intent.get("status") != "requires_action" or not isinstance(next_action, Mapping):
        return None
    redirect = next_action.get("redirect_to_url") if next_action.get("type") == "redirect_to_url" else None
    url = redirect.get("url") if isinstance(redirect, Mapping) else None
    return ClientAction(type="three_ds", params={"redirect_url": url}) if isinstance(url, str) and url else None


def client_action(credentials: StripeCredentials, intent: Mapping[str, Any]) -> ClientAction:
    """What the payer's client does next: the 3-D Secure redirect, or else Stripe.js with the client secret
    (``use_stripe_sdk``, an intent waiting for a card, or one already decided: Stripe.js shows its status)."""
    return three_ds_action(intent) or ClientAction(type="app_params", params={
        "client_secret": str(intent.get("client_secret") or ""),
        "publishable_key": credentials.publishable_key,
        "payment_intent_status": str(intent.get("status") or ""),
    })
