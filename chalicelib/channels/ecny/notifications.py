"""Notifications from the bank: verify the raw bytes, then parse, then unseal (never the other way).

Three kinds, one envelope ``{"notify_id", "notify_type", "merchant_id", "create_time", ...}``:
``PAYMENT`` and ``REFUND`` carry one ``data`` object; ``OFFLINE_BATCH`` carries ``batch`` with the payments
that wallets made offline and the bank cleared since its last batch. A batch becomes one ``Notification`` per
item, each with the item's own id as event id (dedupe), so a resent batch, or an item repeated in a later batch,
is applied once. Every failure is ``CallbackRejected``; the bank then retries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from chalicelib.channels.base import CallbackReply, InboundCallback, Notification, NotificationKind
from chalicelib.channels.ecny.amounts import yuan_to_money
from chalicelib.channels.ecny.credentials import ECNYCredentials
from chalicelib.channels.ecny.sealing import SealError, masked_wallet, unseal
from chalicelib.channels.ecny.signing import SignatureInvalid, check_signed, notify_message
from chalicelib.channels.ecny.states import payment_status, refund_status
from chalicelib.domain.errors import CallbackRejected
from chalicelib.domain.money import Money

BATCH_ITEMS_MAX = 500  # the gateway splits larger uploads into several batches
_ACK = {"code": "SUCCESS", "msg": "OK"}


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CallbackRejected(f"{what} is not a JSON object")
    return value


def _text(payload: Mapping[str, Any], name: str, what: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise CallbackRejected(f"{what} lacks {name}")
    return value


def parse_callback(credentials: ECNYCredentials, callback: InboundCallback) -> Notification | list[Notification]:
    # The window is measured from when the hub received the request, not from when a queue got to it.
    received_at = callback.received_at if callback.received_at.tzinfo else callback.received_at.replace(tzinfo=UTC)
    try:
        check_signed(callback.headers, lambda ts, nonce: notify_message(ts, nonce, callback.body),
                     credentials.bank_public_keys, received_at)
    except SignatureInvalid as exc:
        raise CallbackRejected(f"signature check failed: {exc}") from None
    try:
        envelope = _object(json.loads(callback.body), "notification")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CallbackRejected("notification is not JSON") from None
    notify_id = _text(envelope, "notify_id", "notification")
    merchant_id = _text(envelope, "merchant_id", "notification")
    notify_type = envelope.get("notify_type")
    if notify_type == "PAYMENT":
        data = _object(envelope.get("data"), "data")
        return _payment(credentials, notify_id, merchant_id, data, offline_batch=None)
    if notify_type == "REFUND":
        return _refund(notify_id, merchant_id, _object(envelope.get("data"), "data"))
    if notify_type == "OFFLINE_BATCH":
        return _batch(credentials, merchant_id, _object(envelope.get("batch"), "batch"))
    raise CallbackRejected("unsupported notify_type")


def _payment(credentials: ECNYCredentials, event_id: str, merchant_id: str, data: dict[str, Any],
             offline_batch: str | None) -> Notification:
    out_order_no = _text(data, "out_order_no", "payment")
    raw: dict[str, Any] = {k: v for k, v in data.items() if k != "payer_wallet"}
    # Another merchant's notification (signed by the bank, sent to the wrong place) cannot be unsealed with our
    # data key; it is returned unsealed so the callback service acknowledges it and raises a mismatch alert.
    if "payer_wallet" in data and merchant_id == credentials.merchant_id:
        try:
            raw["payer_wallet_masked"] = masked_wallet(unseal(
                credentials, data["payer_wallet"], out_order_no=out_order_no, field="payer_wallet"))
        except SealError as exc:
            raise CallbackRejected(f"payer_wallet: {exc}") from None
    if offline_batch is not None:
        raw["batch_no"] = offline_batch
    try:
        status = payment_status(data)
    except (ValueError, KeyError) as exc:
        raise CallbackRejected(f"payment has a bad amount: {exc}") from None
    if offline_batch is not None and (not status.settled_offline or status.amount is None):
        raise CallbackRejected("an offline batch item must be an offline SUCCESS with its amount")
    return Notification(kind=NotificationKind.PAYMENT, event_id=event_id, channel_merchant_id=merchant_id,
                        channel_app_id=None, object_id=out_order_no, payment=status, raw=raw)


def _refund(event_id: str, merchant_id: str, data: dict[str, Any]) -> Notification:
    out_refund_no = _text(data, "out_refund_no", "refund")
    try:
        status = refund_status(data)
    except ValueError as exc:
        raise CallbackRejected(f"refund has a bad amount: {exc}") from None
    return Notification(kind=NotificationKind.REFUND, event_id=event_id, channel_merchant_id=merchant_id,
                        channel_app_id=None, object_id=out_refund_no, refund=status, raw=dict(data))


def _batch(credentials: ECNYCredentials, merchant_id: str, batch: dict[str, Any]) -> list[Notification]:
    """Every item, or none: a batch whose count or total disagrees with its items is rejected whole."""
    batch_no = _text(batch, "batch_no", "batch")
    items = batch.get("items")
    if not isinstance(items, list) or not items or len(items) > BATCH_ITEMS_MAX:
        raise CallbackRejected(f"batch items must be a list of 1..{BATCH_ITEMS_MAX}")
    if batch.get("count") != len(items):
        raise CallbackRejected("batch count does not match its items")
    notifications: list[Notification] = []
    seen: set[str] = set()
    for item in items:
        data = _object(item, "batch item")
        item_id = _text(data, "item_id", "batch item")
        if item_id in seen:
            raise CallbackRejected("batch repeats an item_id")
        seen.add(item_id)
        notifications.append(_payment(credentials, item_id, merchant_id, data, offline_batch=batch_no))
    try:
        stated_total = yuan_to_money(batch.get("total_amount"), batch.get("currency", "CNY"))
    except ValueError as exc:
        raise CallbackRejected(f"batch total_amount: {exc}") from None
    total = sum((n.payment.amount.minor for n in notifications if n.payment and n.payment.amount), 0)
    if Money(total, "CNY") != stated_total:
        raise CallbackRejected("batch total_amount does not match its items")
    return notifications


def acknowledgement(ok: bool, *, retry_later: bool = False) -> CallbackReply:
    """The bank stops retrying only on HTTP 200 with ``{"code":"SUCCESS"}``; anything else is retried."""
    if ok:
        body = _ACK
        status = 200
    else:
        status = 500 if retry_later else 400
        body = {"code": "FAIL", "msg": "retry later" if retry_later else "rejected"}
    return CallbackReply(status=status, body=json.dumps(body, separators=(",", ":")).encode(),
                         headers={"Content-Type": "application/json"})

