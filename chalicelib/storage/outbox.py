"""Outbox: events written in the same transaction as the change that caused them, published after commit.

Each event is addressed to a queue (``topic``). Until it is published it carries ``outbox_shard``, which
puts it in the sparse ``outbox`` index; the relay removes that attribute after SQS accepted the message, and
the sweep republishes whatever is still in the index a little later (a Lambda may die between commit and
publish). Consumers are idempotent, so an event published twice is harmless.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.ids import event_id
from chalicelib.storage import records
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item
from chalicelib.storage.transaction import Transaction

log = logging.getLogger(__name__)
OUTBOX_SHARD = "0"
MERCHANT_EVENT_TYPES = frozenset(
    {"payment.succeeded", "payment.failed", "payment.closed", "refund.succeeded", "refund.failed"}
)


@dataclass(frozen=True)
class OutboxEvent:
    event_id: str
    topic: str  # queue key: webhooks | refunds | status-sync
    body: dict[str, Any]


def add_event(
    tx: Transaction, *, merchant_id: str, object_id: str, event_type: str, data: dict[str, Any], now: str,
) -> OutboxEvent:
    """A merchant-visible event (webhook), deterministic id per (object, type)."""
    evt_id = event_id(object_id, event_type)
    item = {
        **records.event_key(evt_id),
        "event_id": evt_id, "type": event_type, "merchant_id": merchant_id, "object_id": object_id,
        "data": data, "created_at": now, "topic": "webhooks",
        "delivery_status": "pending", "delivery_attempts": 0,
        "gsi1pk": f"MERCHANT#{merchant_id}#EVENTS", "gsi1sk": f"{now}#{evt_id}",
        "outbox_shard": OUTBOX_SHARD, "outbox_created_at": now,
    }
    tx.put_new(f"event:{evt_id}", settings().names.state_table, item)
    return OutboxEvent(evt_id, "webhooks", {"event_id": evt_id})


def add_command(tx: Transaction, *, topic: str, object_id: str, command: str, now: str,
                body: dict[str, Any] | None = None) -> OutboxEvent:
    """An internal step for a worker (e.g. send a refund to the channel); not shown to merchants. ``body``:
    the message as the topic's consumer reads it (default ``{"command", "object_id"}``)."""
    evt_id = event_id(object_id, command)
    body = body if body is not None else {"command": command, "object_id": object_id}
    item = {
        **records.event_key(evt_id),
        "event_id": evt_id, "type": command, "object_id": object_id, "created_at": now, "topic": topic,
        "body": body, "outbox_shard": OUTBOX_SHARD, "outbox_created_at": now,
    }
    tx.put_new(f"command:{evt_id}", settings().names.state_table, item)
    return OutboxEvent(evt_id, topic, body)


_QUEUE_URLS: dict[str, str] = {}


def queue_url(topic: str) -> str:
    """Looked up once per process and queue."""
    if topic not in _QUEUE_URLS:
        name = settings().names.queue(topic)
        _QUEUE_URLS[topic] = client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    return _QUEUE_URLS[topic]


def send(topic: str, body: dict[str, Any], *, delay_s: int = 0) -> None:
    client("sqs").send_message(
        QueueUrl=queue_url(topic), MessageBody=json.dumps(body, sort_keys=True), DelaySeconds=max(0, min(delay_s, 900))
    )


def publish(events: list[OutboxEvent]) -> None:
    for event in events:
        send(event.topic, event.body)
        mark_published(event.event_id)


def publish_after_commit(events: list[OutboxEvent]) -> None:
    """Relay right after commit. The commit is what counts: if publishing fails now, the sweep publishes later."""
    try:
        publish(events)
    except Exception:  # noqa: BLE001 - recovered by the outbox sweep; logged loudly, never swallowed silently
        log.exception("outbox publish failed; the sweep will retry %s", [e.event_id for e in events])


def mark_published(evt_id: str) -> None:
    client("dynamodb").update_item(
        TableName=settings().names.state_table,
        Key={"pk": {"S": f"EVT#{evt_id}"}, "sk": {"S": "EVENT"}},
        UpdateExpression="REMOVE outbox_shard",
    )


def pending(older_than: str) -> Iterator[OutboxEvent]:
    """Unpublished events older than ``older_than``, oldest first, page by page."""
    pages = client("dynamodb").get_paginator("query").paginate(
        TableName=settings().names.state_table,
        IndexName="outbox",
        KeyConditionExpression="outbox_shard = :shard AND outbox_created_at < :cutoff",
        ExpressionAttributeValues={":shard": {"S": OUTBOX_SHARD}, ":cutoff": {"S": older_than}},
    )
    for page in pages:
        for raw in page.get("Items", []):
            evt_id = raw["event_id"]["S"]
            topic = raw["topic"]["S"]
            body = {"event_id": evt_id} if topic == "webhooks" else from_item({"body": raw["body"]})["body"]
            yield OutboxEvent(evt_id, topic, body)
