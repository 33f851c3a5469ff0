"""Outbox: events written in the same transaction as the change that caused them, published after commit.

Each event is addressed to a queue (``topic``). Until it is published it carries ``outbox_shard``, which
puts it in the sparse ``outbox`` index. Nothing is published on the request path: the state table's stream
hands each new outbox item to the relay (``functions/outbox_relay.py``, :func:`relay`), which sends it to its
queue and then removes ``outbox_shard``; the sweep republishes whatever is still in the index a little later
(the relay may fail, or the stream give up on a record). Consumers are idempotent, so an event published twice
is harmless.

Both keys an event writes that every payment would otherwise share are sharded by a hash of the event id
(chalicelib/storage/shards.py): ``outbox_shard`` and the merchant's event list key ``gsi1pk``
(``MERCHANT#<id>#EVENTS#<shard>``; events written before sharding keep the bare ``MERCHANT#<id>#EVENTS``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.config.names import queue_url_variable
from chalicelib.config.settings import settings
from chalicelib.domain.ids import event_id
from chalicelib.domain.value_class import value_class
from chalicelib.storage import records, shards
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item
from chalicelib.storage.transaction import Transaction

log = logging.getLogger(__name__)
MERCHANT_EVENT_TYPES = frozenset(
    {"payment.succeeded", "payment.failed", "payment.closed", "refund.succeeded", "refund.failed"}
)


@value_class
class OutboxEvent:
    """An event written with the change it reports, published to its queue afterwards."""

    event_id: str
    topic: str  # queue key: webhooks | refunds | status-sync
    body: dict[str, Any]


def outbox_shard(evt_id: str, count: int | None = None) -> str:
    return shards.shard_of(evt_id, count or shards.counts().outbox)


def legacy_event_list_key(merchant_id: str) -> str:
    """The merchant's event list key before it was sharded: still read, never written."""
    return f"MERCHANT#{merchant_id}#EVENTS"


def event_list_key(merchant_id: str, evt_id: str, count: int | None = None) -> str:
    return f"{legacy_event_list_key(merchant_id)}#{shards.shard_of(evt_id, count or shards.counts().events)}"


def event_item(*, merchant_id: str, object_id: str, event_type: str, data: dict[str, Any], now: str,
               counts: shards.ShardCounts | None = None) -> dict[str, Any]:
    """The item of a merchant-visible event (webhook), deterministic id per (object, type)."""
    counts = counts or shards.counts()
    evt_id = event_id(object_id, event_type)
    return {
        **records.event_key(evt_id),
        "event_id": evt_id, "type": event_type, "merchant_id": merchant_id, "object_id": object_id,
        "data": data, "created_at": now, "topic": "webhooks",
        "delivery_status": "pending", "delivery_attempts": 0,
        "gsi1pk": event_list_key(merchant_id, evt_id, counts.events), "gsi1sk": f"{now}#{evt_id}",
        "outbox_shard": outbox_shard(evt_id, counts.outbox), "outbox_created_at": now,
    }


def command_item(*, topic: str, object_id: str, command: str, now: str, body: dict[str, Any] | None = None,
                 counts: shards.ShardCounts | None = None) -> dict[str, Any]:
    """The item of an internal step for a worker. ``body``: the message as the topic's consumer reads it
    (default ``{"command", "object_id"}``)."""
    evt_id = event_id(object_id, command)
    return {
        **records.event_key(evt_id),
        "event_id": evt_id, "type": command, "object_id": object_id, "created_at": now, "topic": topic,
        "body": body if body is not None else {"command": command, "object_id": object_id},
        "outbox_shard": outbox_shard(evt_id, (counts or shards.counts()).outbox), "outbox_created_at": now,
    }


def add_event(
    tx: Transaction, *, merchant_id: str, object_id: str, event_type: str, data: dict[str, Any], now: str,
) -> OutboxEvent:
    """A merchant-visible event (webhook), deterministic id per (object, type)."""
    item = event_item(merchant_id=merchant_id, object_id=object_id, event_type=event_type, data=data, now=now)
    tx.put_new(f"event:{item['event_id']}", settings().names.state_table, item)
    return OutboxEvent(item["event_id"], "webhooks", {"event_id": item["event_id"]})


def add_command(tx: Transaction, *, topic: str, object_id: str, command: str, now: str,
                body: dict[str, Any] | None = None) -> OutboxEvent:
    """An internal step for a worker (e.g. send a refund to the channel); not shown to merchants."""
    item = command_item(topic=topic, object_id=object_id, command=command, now=now, body=body)
    tx.put_new(f"command:{item['event_id']}", settings().names.state_table, item)
    return OutboxEvent(item["event_id"], topic, item["body"])


_QUEUE_URLS: dict[str, str] = {}


def queue_url(topic: str) -> str:
    """From the environment the template gives the function; looked up once per process where it is not set
    (the local stack, the operator CLI)."""
    if topic not in _QUEUE_URLS:
        given = os.environ.get(queue_url_variable(topic))
        _QUEUE_URLS[topic] = given or client("sqs").get_queue_url(QueueName=settings().names.queue(topic))["QueueUrl"]
    return _QUEUE_URLS[topic]


def send(topic: str, body: dict[str, Any], *, delay_s: int = 0) -> None:
    client("sqs").send_message(
        QueueUrl=queue_url(topic), MessageBody=json.dumps(body, sort_keys=True), DelaySeconds=max(0, min(delay_s, 900))
    )


SQS_BATCH_MAX = 10  # SendMessageBatch takes at most 10 entries


def send_batch(topic: str, bodies: list[dict[str, Any]]) -> None:
    """Send many messages in as few requests as SQS allows. An entry SQS refuses raises, naming how many: the caller's
    lease (status sync) or the outbox index (events) makes sure nothing refused is forgotten."""
    for start in range(0, len(bodies), SQS_BATCH_MAX):
        chunk = bodies[start:start + SQS_BATCH_MAX]
        answer = client("sqs").send_message_batch(QueueUrl=queue_url(topic), Entries=[
            {"Id": str(i), "MessageBody": json.dumps(body, sort_keys=True)} for i, body in enumerate(chunk)])
        if answer.get("Failed"):
            raise RuntimeError(f"SQS refused {len(answer['Failed'])} of {len(chunk)} messages for {topic}: "
                               f"{sorted({f.get('Code') for f in answer['Failed']})}")


def publish(events: list[OutboxEvent]) -> None:
    for event in events:
        send(event.topic, event.body)
        mark_published(event.event_id)


def publish_after_commit(events: list[OutboxEvent]) -> None:
    """Nothing to do on the request path: the commit is what counts. The state table's stream carries every new
    outbox item to the relay (:func:`relay`, the ``outbox_relay`` function), and the sweep publishes whatever the
    relay has not marked a little later. Kept as the one place a writer hands its events over, so each caller
    says where its events go."""
    if events:
        log.debug("outbox: %d event(s) committed, left to the stream relay: %s", len(events),
                  [event.event_id for event in events])


# --- the stream relay: new outbox items, read from the state table's stream, sent to their queues --------------

RELAY_MARK_THREADS = 8


def relay(records: list[dict[str, Any]]) -> str | None:
    """Publish the outbox events among a batch of DynamoDB stream records (INSERTs of items that carry
    ``outbox_shard``; any other record is skipped, whatever filter the event source mapping has), in as few SQS
    requests as the queues allow, then mark each one sent.

    Returns the sequence number of the first record not fully relayed, or None. Lambda then retries the batch
    from that record on (``ReportBatchItemFailures``): records after it that were sent are sent again, which the
    consumers tolerate, as they tolerate the sweep's republishing. The sweep also covers a record the stream
    gave up on."""
    pending: list[tuple[str, OutboxEvent]] = []
    for record in records:
        image = record.get("dynamodb", {}).get("NewImage") or {}
        if record.get("eventName") != "INSERT" or "outbox_shard" not in image or "topic" not in image:
            continue
        pending.append((record["dynamodb"]["SequenceNumber"], _event(image)))
    if not pending:
        return None
    failed: set[str] = set()
    by_topic: dict[str, list[tuple[str, OutboxEvent]]] = {}
    for sequence, event in pending:
        by_topic.setdefault(event.topic, []).append((sequence, event))
    for topic, entries in by_topic.items():
        failed |= _send_entries(topic, entries)
    sent = [(sequence, event) for sequence, event in pending if sequence not in failed]
    with ThreadPoolExecutor(max_workers=min(RELAY_MARK_THREADS, len(sent) or 1)) as pool:
        marks = list(pool.map(lambda entry: _mark_or_none(*entry), sent))
    failed |= {sequence for sequence in marks if sequence is not None}
    first = next((sequence for sequence, _ in pending if sequence in failed), None)
    if first is not None:
        log.warning("outbox relay: %d of %d event(s) not relayed; retrying from %s", len(failed), len(pending), first)
    return first


def _send_entries(topic: str, entries: list[tuple[str, OutboxEvent]]) -> set[str]:
    """Send in batches of ``SQS_BATCH_MAX``; returns the sequence numbers of the entries SQS did not take."""
    failed: set[str] = set()
    for start in range(0, len(entries), SQS_BATCH_MAX):
        chunk = entries[start:start + SQS_BATCH_MAX]
        try:
            answer = client("sqs").send_message_batch(QueueUrl=queue_url(topic), Entries=[
                {"Id": str(i), "MessageBody": json.dumps(event.body, sort_keys=True)}
                for i, (_, event) in enumerate(chunk)])
        except Exception:  # noqa: BLE001 - this chunk is retried by Lambda from its first record; logged in full
            log.exception("outbox relay: SQS refused a batch for %s", topic)
            failed |= {sequence for sequence, _ in chunk}
            continue
        failed |= {chunk[int(entry["Id"])][0] for entry in answer.get("Failed", [])}
    return failed


def _mark_or_none(sequence: str, event: OutboxEvent) -> str | None:
    try:
        mark_published(event.event_id)
    except Exception:  # noqa: BLE001 - sent but not marked: retried (a duplicate the consumer tolerates); logged
        log.exception("outbox relay: %s sent but not marked published", event.event_id)
        return sequence
    return None


def mark_published(evt_id: str) -> None:
    client("dynamodb").update_item(
        TableName=settings().names.state_table,
        Key={"pk": {"S": f"EVT#{evt_id}"}, "sk": {"S": "EVENT"}},
        UpdateExpression="REMOVE outbox_shard",
    )


PAGE_ITEMS = 100


def pending(older_than: str) -> Iterator[OutboxEvent]:
    """Unpublished events older than ``older_than``, from every shard (shard "0" also holds the events written
    before the index was sharded). Shards are read ``PARALLEL`` at a time, a page of ``PAGE_ITEMS`` each, so
    memory holds at most that many pages whatever the backlog."""
    dynamodb = client("dynamodb")
    table = settings().names.state_table

    def page(shard: str, start: dict[str, Any] | None) -> tuple[list[OutboxEvent], dict[str, Any] | None]:
        params: dict[str, Any] = {
            "TableName": table, "IndexName": "outbox", "Limit": PAGE_ITEMS,
            "KeyConditionExpression": "outbox_shard = :shard AND outbox_created_at < :cutoff",
            "ExpressionAttributeValues": {":shard": {"S": shard}, ":cutoff": {"S": older_than}},
        }
        if start:
            params["ExclusiveStartKey"] = start
        response = dynamodb.query(**params)
        return [_event(raw) for raw in response.get("Items", [])], response.get("LastEvaluatedKey")

    names = shards.all_shards(shards.counts().outbox)
    with ThreadPoolExecutor(max_workers=min(shards.PARALLEL, len(names))) as pool:
        for first in range(0, len(names), shards.PARALLEL):
            wave = names[first:first + shards.PARALLEL]
            for shard, (events, more) in zip(wave, pool.map(lambda shard: page(shard, None), wave), strict=True):
                yield from events
                while more:
                    events, more = page(shard, more)
                    yield from events


def _event(raw: dict[str, Any]) -> OutboxEvent:
    evt_id = raw["event_id"]["S"]
    topic = raw["topic"]["S"]
    body = {"event_id": evt_id} if topic == "webhooks" else from_item({"body": raw["body"]})["body"]
    return OutboxEvent(evt_id, topic, body)
