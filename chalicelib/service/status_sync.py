"""Status sync: ask the channel about attempts and refunds whose outcome we do not know yet.

Callbacks get lost (a crash after the channel took the money but before we recorded it, a network
partition, a channel that never calls). Every non-final attempt and refund carries ``sync_due_at`` in the
sparse ``sync`` index; the sweep enqueues the due ones, the worker queries the channel and applies the
answer through the same path as callbacks, then schedules the next query on a backoff until final.
Expired attempts that are still unpaid are closed at the channel, then locally.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from chalicelib.channels.base import PaymentOutcome, PaymentStatus, RefundOutcome
from chalicelib.channels.registry import adapter
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.states import ATTEMPT_FINAL, REFUND_FINAL, RefundState
from chalicelib.service.channel_refs import payment_refs, refund_refs
from chalicelib.service.confirmation import OPEN, Confirmed, confirm_at_channel
from chalicelib.service.outcomes import apply_attempt_status
from chalicelib.service.routing import account_or_error
from chalicelib.storage import outbox, records, shards, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item

log = logging.getLogger(__name__)
BACKOFF_S = (15, 30, 60, 120, 300, 600, 1800, 3600)  # then hourly
LEASE_S = 120  # a due item handed to the queue is not handed out again for this long


def _reschedule(key: dict[str, str], count: int, expires_at: str | None = None) -> None:
    delay = BACKOFF_S[min(count, len(BACKOFF_S) - 1)]
    due = utcnow() + timedelta(seconds=delay)
    if expires_at:  # look again right when the order expires, so it is closed on time
        due = min(due, max(parse_iso(expires_at), utcnow() + timedelta(seconds=1)))
    try:
        client("dynamodb").update_item(
            TableName=state_repo.state_table(), Key=to_item(key),
            UpdateExpression="SET sync_due_at = :due, sync_count = :count",
            ConditionExpression="attribute_exists(sync_shard)",  # gone means final: do not resurrect it
            ExpressionAttributeValues={":due": {"S": iso(due)}, ":count": {"N": str(count + 1)}},
        )
    except client("dynamodb").exceptions.ConditionalCheckFailedException:
        log.info("%s became final while syncing; not rescheduled", key["pk"])


def sync_attempt(attempt_id: str, count: int = 0) -> str:
    """``count``: how many times this attempt was queried before (carried in the sweep's message).

    When the channel says the payer is done and the hub must complete the attempt (REQUIRES_CONFIRMATION),
    it is confirmed here at once, with no inputs; if that does not make it final, the normal backoff goes on.
    """
    attempt, payment = state_repo.get_attempt_and_payment(attempt_id)
    if attempt is None or attempt.status in ATTEMPT_FINAL:
        return "final"
    account = account_or_error(attempt.account_id)
    status = adapter(attempt.channel).query(account, attempt_id, attempt.money, **payment_refs(attempt))
    # Read once above, before the query: if either changed meanwhile, the versioned commit races and re-reads.
    result = apply_attempt_status(attempt_id, status, source="status_sync",
                                  known=(attempt, payment) if payment is not None else None)
    if status.outcome is PaymentOutcome.REQUIRES_CONFIRMATION:
        confirmed = _complete(attempt_id)
        if confirmed is not None:
            status, result = confirmed.status, confirmed.applied
    if status.outcome in (PaymentOutcome.SUCCEEDED, PaymentOutcome.FAILED, PaymentOutcome.CLOSED):
        return str(result)
    if parse_iso(attempt.expires_at) <= utcnow():
        if status.outcome is PaymentOutcome.NOT_FOUND and attempt.channel_order_ref is None:
            # Recorded before the create that never reached the channel (the hub died or the call failed, and the
            # merchant did not retry): nobody can pay an order the channel does not have. Closed here only.
            return str(apply_attempt_status(attempt_id, PaymentStatus(PaymentOutcome.CLOSED, raw_status="NEVER_CREATED"),
                                            source="expired:never_created"))
        return close_attempt(attempt_id, source="expired")
    _reschedule(records.attempt_key(attempt_id), count, attempt.expires_at)
    return str(result)


def _complete(attempt_id: str) -> Confirmed | None:
    """Confirm at the channel what the payer approved, if the attempt is still the live one of an open payment.

    The worker holds no card (it has no access to the vault): channels that need the card to confirm ask the
    payer through the merchant instead. A channel error here is logged and the backoff decides when to retry.
    """
    attempt = state_repo.get_attempt(attempt_id)
    payment = state_repo.get_payment(attempt.payment_id) if attempt else None
    if attempt is None or payment is None or attempt.status in ATTEMPT_FINAL:
        return None
    if payment.status not in OPEN or payment.current_attempt_id != attempt_id:
        log.warning("attempt %s awaits confirmation but payment %s is %s; not completing it", attempt_id,
                    payment.payment_id, payment.status, extra={"attempt_id": attempt_id})
        return None
    try:
        return confirm_at_channel(attempt, inputs={}, card=None, source="status_sync:confirm")
    except ChannelError as exc:
        log.warning("confirm of %s failed (%s, retryable=%s); trying again on the next sync", attempt_id,
                    exc.channel_code, exc.retryable, extra={"attempt_id": attempt_id})
        return None


def close_attempt(attempt_id: str, *, source: str) -> str:
    """Close at the channel, then record it. If the payer paid in the meantime, record the success instead."""
    attempt = state_repo.get_attempt(attempt_id)
    if attempt is None or attempt.status in ATTEMPT_FINAL:
        return "final"
    account = account_or_error(attempt.account_id)
    channel = adapter(attempt.channel)
    try:
        channel.close(account, attempt_id, **payment_refs(attempt))
    except ChannelError as exc:
        if exc.channel_code != "ORDERPAID":
            raise
        status = channel.query(account, attempt_id, attempt.money, **payment_refs(attempt))
        return str(apply_attempt_status(attempt_id, status, source=f"{source}:paid_before_close"))
    closed = PaymentStatus(outcome=PaymentOutcome.CLOSED, raw_status="CLOSED")
    return str(apply_attempt_status(attempt_id, closed, source=source))


def sync_refund(refund_id: str, count: int = 0) -> str:
    from chalicelib.service.refunds import apply_refund_status

    refund = state_repo.get_refund(refund_id)
    if refund is None or refund.status in REFUND_FINAL:
        return "final"
    if refund.status is RefundState.PENDING:  # its refund.submit message was lost or dead-lettered
        outbox.send("refunds", {"command": "refund.submit", "object_id": refund_id})
        _reschedule(records.refund_key(refund_id), count)
        return "resubmitted"
    account = account_or_error(refund.account_id)
    status = adapter(refund.channel).query_refund(account, refund_id, refund.money,
                                                  **refund_refs(refund, state_repo.get_attempt(refund.attempt_id)))
    result = apply_refund_status(refund_id, status, source="status_sync")
    if status.outcome is RefundOutcome.NOT_FOUND:
        log.warning("refund %s is processing here but unknown to the channel (query %d)", refund_id, count + 1)
    if status.outcome in (RefundOutcome.PROCESSING, RefundOutcome.NOT_FOUND):
        _reschedule(records.refund_key(refund_id), count)
    return str(result)


def sweep(budget_s: float = 40.0) -> int:
    """Enqueue every due attempt/refund and push its due time out by a lease so it is not enqueued twice.

    Visits every shard of the index (chalicelib/storage/shards.py), several at a time, paging through what is
    due until the time budget (kept under the sweep Lambda's timeout) runs out; what is left is due at the next
    run. Shard "0" also holds every item written before the index was sharded.
    """
    deadline = time.monotonic() + budget_s
    now = iso(utcnow())
    leased = iso(utcnow() + timedelta(seconds=LEASE_S))
    dynamodb = client("dynamodb")

    def sweep_shard(shard: str) -> int:
        sent = 0
        if time.monotonic() > deadline:
            return sent
        pages = dynamodb.get_paginator("query").paginate(
            TableName=state_repo.state_table(), IndexName="sync",
            KeyConditionExpression="sync_shard = :shard AND sync_due_at <= :now",
            ExpressionAttributeValues={":shard": {"S": shard}, ":now": {"S": now}},
        )
        for page in pages:
            sent += _enqueue_due(page.get("Items", []), leased)
            if time.monotonic() > deadline:
                break
        return sent

    return sum(shards.over_shards(shards.counts().sync, sweep_shard))


def _enqueue_due(items: list[dict[str, Any]], leased: str) -> int:
    """Lease each due item (one conditional write each: two sweeps never both take it), then send the page's
    messages in batches. A send that fails leaves the items leased: the next sweep after the lease takes them."""
    messages: list[dict[str, Any]] = []
    for raw in items:
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
        count = int(raw.get("sync_count", {}).get("N", "0"))
        messages.append({"kind": kind, "id": pk.split("#", 1)[1], "count": count})
    outbox.send_batch("status-sync", messages)
    return len(messages)

