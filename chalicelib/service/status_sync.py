"""Status sync: ask the channel about attempts and refunds whose outcome we do not know yet.

Callbacks get lost (a crash after the channel took the money but before we recorded it, a network
partition, a channel that never calls). Every non-final attempt and refund carries ``sync_due_at`` in the
sparse ``sync`` index; the sweep enqueues the due ones, the worker queries the channel and applies the
answer through the same path as callbacks, then schedules the next query on a backoff until final.
Expired attempts that are still unpaid are closed at the channel, then locally.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from chalicelib.channels.base import PaymentOutcome, PaymentStatus, RefundOutcome
from chalicelib.channels.registry import adapter
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.states import ATTEMPT_FINAL, REFUND_FINAL
from chalicelib.service.outcomes import apply_attempt_status
from chalicelib.service.routing import account_or_error
from chalicelib.storage import outbox, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item

log = logging.getLogger(__name__)
SYNC_SHARD = "0"
BACKOFF_S = (15, 30, 60, 120, 300, 600, 1800, 3600)  # then hourly
LEASE_S = 120  # a due item handed to the queue is not handed out again for this long


def first_sync(now: datetime) -> dict[str, Any]:
    return {"sync_shard": SYNC_SHARD, "sync_due_at": iso(now + timedelta(seconds=BACKOFF_S[0])), "sync_count": 0}


def _reschedule(key: dict[str, str], count: int, expires_at: str | None = None) -> None:
    delay = BACKOFF_S[min(count, len(BACKOFF_S) - 1)]
    due = utcnow() + timedelta(seconds=delay)
    if expires_at:  # look again right when the order expires, so it is closed on time
        due = min(due, max(parse_iso(expires_at), utcnow() + timedelta(seconds=1)))
    client("dynamodb").update_item(
        TableName=state_repo.state_table(), Key=to_item(key),
        UpdateExpression="SET sync_due_at = :due, sync_count = :count",
        ConditionExpression="attribute_exists(sync_shard)",  # gone means final: do not resurrect it
        ExpressionAttributeValues={":due": {"S": iso(due)}, ":count": {"N": str(count + 1)}},
    )


def sync_attempt(attempt_id: str) -> str:
    attempt = state_repo.get_attempt(attempt_id)
    if attempt is None or attempt.status in ATTEMPT_FINAL:
        return "final"
    account = account_or_error(attempt.account_id)
    status = adapter(attempt.channel).query(account, attempt_id, attempt.money)
    result = apply_attempt_status(attempt_id, status, source="status_sync")
    if status.outcome in (PaymentOutcome.SUCCEEDED, PaymentOutcome.FAILED, PaymentOutcome.CLOSED):
        return str(result)
    if parse_iso(attempt.expires_at) <= utcnow():
        return close_attempt(attempt_id, source="expired")
    current = state_repo.get_item(records.attempt_key(attempt_id)) or {}
    if current.get("sync_shard"):
        _reschedule_safely(records.attempt_key(attempt_id), int(current.get("sync_count", 0)), attempt.expires_at)
    return str(result)


def close_attempt(attempt_id: str, *, source: str) -> str:
    """Close at the channel, then record it. If the payer paid in the meantime, record the success instead."""
    attempt = state_repo.get_attempt(attempt_id)
    if attempt is None or attempt.status in ATTEMPT_FINAL:
        return "final"
    account = account_or_error(attempt.account_id)
    channel = adapter(attempt.channel)
    try:
        channel.close(account, attempt_id)
    except ChannelError as exc:
        if exc.channel_code != "ORDERPAID":
            raise
        status = channel.query(account, attempt_id, attempt.money)
        return str(apply_attempt_status(attempt_id, status, source=f"{source}:paid_before_close"))
    closed = PaymentStatus(outcome=PaymentOutcome.CLOSED, raw_status="CLOSED")
    return str(apply_attempt_status(attempt_id, closed, source=source))


def sync_refund(refund_id: str) -> str:
    from chalicelib.service.refunds import apply_refund_status

    refund = state_repo.get_refund(refund_id)
    if refund is None or refund.status in REFUND_FINAL:
        return "final"
    if refund.status.value == "pending":
        outbox.send("refunds", {"command": "refund.submit", "object_id": refund_id})
        return "resubmitted"
    account = account_or_error(refund.account_id)
    status = adapter(refund.channel).query_refund(account, refund_id, refund.money)
    result = apply_refund_status(refund_id, status, source="status_sync")
    if status.outcome in (RefundOutcome.PROCESSING, RefundOutcome.NOT_FOUND):
        current = state_repo.get_item(records.refund_key(refund_id)) or {}
        if current.get("sync_shard"):
            _reschedule_safely(records.refund_key(refund_id), int(current.get("sync_count", 0)))
    return str(result)


def _reschedule_safely(key: dict[str, str], count: int, expires_at: str | None = None) -> None:
    try:
        _reschedule(key, count, expires_at)
    except client("dynamodb").exceptions.ConditionalCheckFailedException:
        log.info("%s became final while syncing; not rescheduled", key["pk"])


def sweep(limit: int = 200) -> int:
    """Enqueue every due attempt/refund and push its due time out by a lease so it is not enqueued twice."""
    now = iso(utcnow())
    response = client("dynamodb").query(
        TableName=state_repo.state_table(), IndexName="sync",
        KeyConditionExpression="sync_shard = :shard AND sync_due_at <= :now",
        ExpressionAttributeValues={":shard": {"S": SYNC_SHARD}, ":now": {"S": now}}, Limit=limit,
    )
    leased = iso(utcnow() + timedelta(seconds=LEASE_S))
    sent = 0
    for raw in response.get("Items", []):
        pk, due = raw["pk"]["S"], raw["sync_due_at"]["S"]
        try:
            client("dynamodb").update_item(
                TableName=state_repo.state_table(), Key={"pk": raw["pk"], "sk": raw["sk"]},
                UpdateExpression="SET sync_due_at = :leased", ConditionExpression="sync_due_at = :due",
                ExpressionAttributeValues={":leased": {"S": leased}, ":due": {"S": due}},
            )
        except client("dynamodb").exceptions.ConditionalCheckFailedException:
            continue  # another sweep took it, or it changed
        kind = "attempt" if pk.startswith("ATT#") else "refund"
        outbox.send("status-sync", {"kind": kind, "id": pk.split("#", 1)[1]})
        sent += 1
    return sent

