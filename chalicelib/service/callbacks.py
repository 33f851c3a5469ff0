"""Channel callbacks: verify → decrypt → cross-check against what we stored → dedupe → transition.

A callback that fails verification is rejected and logged as a security event. One that verifies but whose
business fields disagree with our records (another merchant id, another amount, an object id the hub never
issued) is acknowledged, so the channel stops retrying, but never applied, and raised as an alert for a person.
A payment id in the hub's own format with no record is an orphan (every create is recorded before the channel
hears its id): money it reports is adopted and refunded (``orphans``). News the hub never applies (a
chargeback) is acknowledged and raised under the notification's alert name.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from chalicelib.channels.base import CallbackReply, InboundCallback, Notification, NotificationKind
from chalicelib.channels.registry import adapter
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.clock import utcnow
from chalicelib.domain.errors import CallbackRejected
from chalicelib.domain.models import Attempt, Payment, Refund
from chalicelib.observability import alert, security_event
from chalicelib.service import orphans
from chalicelib.service.outcomes import Dedupe, apply_attempt_status
from chalicelib.service.refunds import apply_refund_status
from chalicelib.storage import config_repo, state_repo

log = logging.getLogger(__name__)


class BusinessMismatch(Exception):
    """A verified callback whose fields disagree with our records."""


class Unrecorded(Exception):
    """A verified callback about a payment attempt id in the hub's format that the hub holds no record of."""


def handle_callback(channel: str, account_id: str, headers: Mapping[str, str], body: bytes) -> CallbackReply:
    channel_adapter = adapter(channel)
    account = config_repo.channel_account(account_id)
    fingerprint = hashlib.sha256(body).hexdigest()[:16]  # lets operators match logs without storing bodies
    if account is None or account.config.channel != channel:
        log.warning("callback rejected: unknown account", extra=security_event(
            "callback_unknown_account", channel=channel, account=account_id, body_sha256=fingerprint))
        return channel_adapter.acknowledge(False)
    inbound = InboundCallback(headers={k.lower(): v for k, v in headers.items()}, body=body, received_at=utcnow())
    try:
        notification = channel_adapter.verify_and_parse_notification(account, inbound)
    except CallbackRejected as exc:
        log.warning("callback rejected: %s", exc.message, extra=security_event(
            "callback_rejected", channel=channel, account=account_id, body_sha256=fingerprint))
        return channel_adapter.acknowledge(False)
    parsed = [notification] if isinstance(notification, Notification) else list(notification)
    for item in parsed:
        _apply(channel, account, item)
    return channel_adapter.acknowledge(True)


def _apply(channel: str, account: ChannelAccount, notification: Notification) -> None:
    """Apply one verified notification; a business mismatch or an alert (chargeback) is logged for a person and
    skipped, never applied; an orphan's money is adopted and refunded."""
    if notification.alert:
        _raise_alert(channel, account, notification)
        return
    try:
        record = _cross_check(account, notification)
    except Unrecorded:
        assert notification.payment is not None
        adopted = orphans.adopt(account, notification.object_id, notification.payment, source="callback")
        log.warning("callback for unrecorded attempt %s (%s): %s", notification.object_id,
                    notification.payment.raw_status, adopted or "nothing to give back", extra={
                        "channel": channel, "account": account.account_id, "event_id": notification.event_id})
        return
    except BusinessMismatch as exc:
        log.error("ALERT callback verified but not applied: %s", exc, extra=alert(
            "callback_business_mismatch", channel=channel, account=account.account_id,
            event_id=notification.event_id, object_id=notification.object_id))
        return
    dedupe = Dedupe(channel, account.account_id, notification.event_id)
    if notification.kind is NotificationKind.PAYMENT:
        assert notification.payment is not None
        assert isinstance(record, tuple)
        result = apply_attempt_status(notification.object_id, notification.payment, source="callback", dedupe=dedupe,
                                      known=record)
    else:
        assert notification.refund is not None and isinstance(record, Refund)
        result = apply_refund_status(notification.object_id, notification.refund, source="callback", dedupe=dedupe,
                                     known=record)
    log.info("callback %s for %s: %s", notification.event_id, notification.object_id, result)


def _raise_alert(channel: str, account: ChannelAccount, notification: Notification) -> None:
    """A person must act (a chargeback took money back); the hub's records are left as they are."""
    assert notification.alert is not None
    status = notification.refund or notification.payment
    amount = status.amount if status is not None else None
    log.error("ALERT %s reported by %s for %s; acknowledged, nothing applied", notification.alert, channel,
              notification.object_id, extra=alert(
                  notification.alert, channel=channel, account=account.account_id,
                  event_id=notification.event_id, object_id=notification.object_id,
                  raw_status=status.raw_status if status is not None else None,
                  amount_minor=amount.minor if amount is not None else None,
                  currency=amount.currency if amount is not None else None))


def _cross_check(account: ChannelAccount, notification: Notification) -> tuple[Attempt, Payment] | Refund:
    """The notification is about our object on this account; returns that object as read (an attempt with its
    payment, read together: the only read of the callback's request path)."""
    expected_merchant = account.config.settings.get("mchid") or account.config.settings.get("merchant_id")
    if expected_merchant and notification.channel_merchant_id != expected_merchant:
        raise BusinessMismatch(f"merchant id {notification.channel_merchant_id} is not this account's")
    expected_app = account.config.settings.get("appid")
    if expected_app and notification.channel_app_id and notification.channel_app_id != expected_app:
        raise BusinessMismatch(f"app id {notification.channel_app_id} is not this account's")
    # Amounts are checked where every channel answer is applied (outcomes/refunds), for queries as well.
    if notification.kind is NotificationKind.PAYMENT:
        attempt, payment = state_repo.get_attempt_and_payment(notification.object_id)
        if attempt is None and orphans.is_orphan_candidate(notification.object_id):
            raise Unrecorded(notification.object_id)
        _owned(account, notification, attempt)
        assert attempt is not None
        if payment is None:
            raise BusinessMismatch(f"attempt {notification.object_id} has no payment record")
        return attempt, payment
    refund = state_repo.get_refund(notification.object_id)
    _owned(account, notification, refund)
    assert refund is not None
    return refund


def _owned(account: ChannelAccount, notification: Notification, record: Attempt | Refund | None) -> None:
    if record is None:
        raise BusinessMismatch(f"{notification.kind} object id {notification.object_id} is not one the hub issued")
    if record.account_id != account.account_id:
        raise BusinessMismatch(f"no {notification.kind} object {notification.object_id} on this account")
