"""Stripe webhook events: verify the raw bytes, then parse, then reduce to the hub's notifications.

The endpoint's signing secret binds an event to one account; events sent by Stripe for a connected account
also name it in ``account``, which must then be this account's ``merchant_id`` (cross-checked by the hub).
``livemode`` must match the account's mode. ``event.id`` is the dedupe key.

Events about objects the hub did not make (no ``metadata[attempt_id]`` / ``metadata[refund_id]``) and event
types the hub does not act on are acknowledged with no notification: rejecting them would only make Stripe
retry them for days.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from chalicelib.channels.base import CallbackReply, InboundCallback, Notification, NotificationKind
from chalicelib.channels.stripe.checkout import event_status
from chalicelib.channels.stripe.credentials import StripeCredentials
from chalicelib.channels.stripe.signature import SignatureInvalid, verify
from chalicelib.channels.stripe.states import from_unix, payment_status, refund_status
from chalicelib.domain.errors import CallbackRejected

PAYMENT_EVENTS = frozenset({
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.processing",
    "payment_intent.canceled", "payment_intent.requires_action", "payment_intent.amount_capturable_updated",
})
# A Checkout Session (``stripe.checkout``) reports its end: paid (``completed``, its intent's own events follow the
# same attempt too: both carry our attempt id, and the hub takes the first) or no longer payable (``expired``).
CHECKOUT_EVENTS = frozenset({"checkout.session.completed", "checkout.session.expired",
                             "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed"})
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed"})
CHARGE_REFUNDED = "charge.refunded"
ATTEMPT_KEY = "attempt_id"
REFUND_KEY = "refund_id"


def _event(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CallbackRejected("event body is not JSON") from exc
    if not isinstance(value, dict) or value.get("object") != "event":
        raise CallbackRejected("body is not a Stripe event")
    return value


def _metadata_value(obj: Mapping[str, Any], key: str) -> str | None:
    metadata = obj.get("metadata")
    value = metadata.get(key) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) and value else None


def parse_event(credentials: StripeCredentials, callback: InboundCallback) -> list[Notification]:
    received_at = callback.received_at if callback.received_at.tzinfo else callback.received_at.replace(tzinfo=UTC)
    try:
        verify(callback.headers.get("stripe-signature"), callback.body, credentials.webhook_secrets, received_at)
    except SignatureInvalid as exc:
        raise CallbackRejected(f"signature check failed: {exc}") from None
    event = _event(callback.body)
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not isinstance(obj, Mapping):
        raise CallbackRejected("event lacks id, type or data.object")
    if event.get("livemode") is not credentials.livemode:
        raise CallbackRejected("event livemode does not match the account's mode")
    account = event.get("account")
    if account is not None and not isinstance(account, str):
        raise CallbackRejected("event account is not a string")
    merchant_id = account or credentials.merchant_id
    try:
        return _notifications(event_id, event_type, obj, merchant_id, event)
    except ValueError as exc:
        raise CallbackRejected(f"event object has a bad amount: {exc}") from None


def _expect(obj: Mapping[str, Any], kind: str) -> None:
    if obj.get("object") != kind:
        raise CallbackRejected(f"event data.object is not a {kind}")


def _notifications(event_id: str, event_type: str, obj: Mapping[str, Any], merchant_id: str,
                   event: Mapping[str, Any]) -> list[Notification]:
    if event_type in PAYMENT_EVENTS:
        _expect(obj, "payment_intent")
        attempt_id = _metadata_value(obj, ATTEMPT_KEY)
        if attempt_id is None:
            return []
        status = payment_status(obj, paid_at=from_unix(event.get("created")))
        return [Notification(kind=NotificationKind.PAYMENT, event_id=event_id, channel_merchant_id=merchant_id,
                             channel_app_id=None, object_id=attempt_id, payment=status, raw=dict(obj))]
    if event_type in CHECKOUT_EVENTS:
        _expect(obj, "checkout.session")
        attempt_id = _metadata_value(obj, ATTEMPT_KEY)
        if attempt_id is None:
            return []
        status = event_status(obj, paid_at=from_unix(event.get("created")))
        if event_type == "checkout.session.async_payment_failed":
            return []  # the intent's own payment_intent.payment_failed tells the failure, with its reason
        return [Notification(kind=NotificationKind.PAYMENT, event_id=event_id, channel_merchant_id=merchant_id,
                             channel_app_id=None, object_id=attempt_id, payment=status, raw=dict(obj))]
    if event_type in REFUND_EVENTS:
        _expect(obj, "refund")
        return _refund_notifications(event_id, [obj], merchant_id)
    if event_type == CHARGE_REFUNDED:
        _expect(obj, "charge")
        # API versions before 2022-11-15 embed the charge's refunds; later ones do not, and each refund's
        # state then arrives in its own refund.* event.
        refunds = obj.get("refunds")
        listed = refunds.get("data") if isinstance(refunds, Mapping) else None
        found = [r for r in listed if isinstance(r, Mapping)] if isinstance(listed, list) else []
        return _refund_notifications(event_id, found, merchant_id, per_refund_ids=True)
    return []


def _refund_notifications(event_id: str, refunds: list[Mapping[str, Any]], merchant_id: str, *,
                          per_refund_ids: bool = False) -> list[Notification]:
    found = []
    for refund in refunds:
        refund_id = _metadata_value(refund, REFUND_KEY)
        if refund_id is None:
            continue
        # One event may carry several refunds: each needs its own dedupe id.
        dedupe_id = f"{event_id}:{refund.get('id')}" if per_refund_ids else event_id
        found.append(Notification(kind=NotificationKind.REFUND, event_id=dedupe_id, channel_merchant_id=merchant_id,
                                  channel_app_id=None, object_id=refund_id, refund=refund_status(refund),
                                  raw=dict(refund)))
    return found


def acknowledgement(ok: bool) -> CallbackReply:
    """Any 2xx tells Stripe the event arrived; anything else makes it retry with backoff."""
    if ok:
        return CallbackReply(status=200, body=b'{"received":true}', headers={"Content-Type": "application/json"})
    body = json.dumps({"error": "rejected"}).encode()
    return CallbackReply(status=400, body=body, headers={"Content-Type": "application/json"})
