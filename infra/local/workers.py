"""Drive SQS consumers and schedules locally, the way Lambda would: `chalice local` serves routes only.

Messages are handed to the same handler functions Lambda calls, in the same event shape, and the
handler's ``batchItemFailures`` decide what is deleted, so partial failures and DLQ redrive behave as
deployed (moto applies the queues' redrive policies).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.clock import utcnow
from chalicelib.recon.schedule import BEIJING, due_today, previous_beijing_day
from chalicelib.storage.aws import client
from infra.functions import STREAM_BATCH, STREAM_RETRIES
from infra.resources import resources

log = logging.getLogger(__name__)

# queue key -> handler path, as infra wires them
CONSUMERS = {
    "webhooks": "functions.webhook_worker.handler",
    "status-sync": "functions.status_sync_worker.handler",
    "refunds": "functions.refund_worker.handler",
    "recon": "functions.recon_worker.handler",
    "invoices": "functions.invoice_worker.handler",
    "payouts": "functions.payout_worker.handler",
}
# table logical id -> handler of its stream consumer (the outbox relay), as infra wires them
STREAM_CONSUMERS = {"StateTable": "functions.outbox_relay.handler"}
SCHEDULES = ("functions.sweeps.outbox_sweep", "functions.sweeps.status_sync_sweep")
# Sweeps on a slower clock (infra.resources schedules of several minutes), run by the `make run` loop only: tests
# call them when they mean to (a drain would otherwise read every test bank's statement each round).
SLOW_SCHEDULES = ("functions.sweeps.transfers_sweep",)
SLOW_EVERY_S = 60.0
RETRY_VISIBILITY_S = 2  # locally, a failed message comes back after 2 s instead of the deployed timeout


# Daily schedules (infra.resources daily_schedules, e.g. each channel's reconciliation fan-out): worker name
# -> handler. They fire in `make run` at their time of day; `drain` never fires them (tests enqueue runs).
DAILY = {"recon_fanout": "functions.recon_fanout.fan_out", "statements": "functions.statements.handler",
         "settlement_fanout": "functions.settlement_fanout.fan_out"}


class DailySchedules:
    """Fires each daily schedule once per Beijing day, when its channel's time has passed. Started after the
    time, the stack waits for the next day rather than reconciling at once."""

    def __init__(self, now: datetime) -> None:
        self._specs = resources(settings().stage).daily_schedules
        self._fired = {spec.logical_id: self._today(now) if self._due(spec.payload, now) else None
                       for spec in self._specs}

    @staticmethod
    def _today(now: datetime) -> str:
        return previous_beijing_day(now).isoformat()

    @staticmethod
    def _due(payload: dict[str, str], now: datetime) -> bool:
        if "after_beijing" in payload:  # a job at a fixed Beijing time (monthly statements)
            return now.astimezone(BEIJING).strftime("%H:%M") >= payload["after_beijing"]
        return due_today(payload.get("channel", ""), now)

    def fire_due(self, now: datetime) -> list[str]:
        fired = []
        for spec in self._specs:
            if self._due(spec.payload, now) and self._fired[spec.logical_id] != self._today(now):
                self._fired[spec.logical_id] = self._today(now)
                _resolve(DAILY[spec.function])(dict(spec.payload), None)
                fired.append(spec.logical_id)
        return fired


def _resolve(path: str) -> Callable[[dict[str, Any], Any], Any]:
    module, name = path.rsplit(".", 1)
    handler: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module), name)
    return handler


def _sqs_event(queue_arn: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": settings().region,
    } for m in messages]}


def poll_once(queue_key: str, *, wait_s: int = 0) -> int:
    """Receive one batch from a queue, run its consumer, delete what succeeded. Returns messages handled."""
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=settings().names.queue(queue_key))["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s,
                                   AttributeNames=["All"]).get("Messages", [])
    if not messages:
        return 0
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    try:
        result = _resolve(CONSUMERS[queue_key])(_sqs_event(arn, messages), None) or {}
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    except Exception:  # noqa: BLE001 - as in Lambda: a crashed invocation fails the whole batch
        log.exception("%s consumer crashed; the whole batch will be retried", queue_key)
        failed = {m["MessageId"] for m in messages}
    for message in messages:
        if message["MessageId"] in failed:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=RETRY_VISIBILITY_S)
        else:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


class StreamPoller:
    """A DynamoDB stream's event source mapping, as Lambda runs it: read each shard from its start, hand the
    consumer batches in the stream event shape, move on past what it relayed, and read again from the first
    record it reports failed (``ReportBatchItemFailures``), at most ``STREAM_RETRIES`` times before moving on
    past the batch, as the deployed mapping does (what it leaves is the outbox sweep's). Lambda's filter is not
    applied: the relay skips what is not a new outbox item itself. One poller per process, per stream."""

    def __init__(self) -> None:
        self._positions: dict[tuple[str, str], str] = {}  # (stream arn, shard id) -> next shard iterator
        self._retries: dict[tuple[str, str], int] = {}  # (stream arn, shard id) -> retries of the current batch
        self._lock = threading.Lock()

    def poll_once(self, table_key: str) -> int:
        with self._lock:  # `make run`'s loop and a test's drain may poll at once: one reader per stream
            return self._poll(table_key)

    def _poll(self, table_key: str) -> int:
        table = next(t for t in resources(settings().stage).tables if t.logical_id == table_key)
        arn = client("dynamodb").describe_table(TableName=table.name)["Table"]["LatestStreamArn"]
        streams = client("dynamodbstreams")
        handled = 0
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            position = (arn, shard["ShardId"])
            iterator = self._positions.get(position) or streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            answer = streams.get_records(ShardIterator=iterator, Limit=STREAM_BATCH)
            records = answer["Records"]
            self._positions[position] = answer["NextShardIterator"]
            if not records:
                continue
            event = {"Records": [_lambda_record(record, arn) for record in records]}
            try:
                result = _resolve(STREAM_CONSUMERS[table_key])(event, None) or {}
                failed = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            except Exception:  # noqa: BLE001 - as in Lambda: a crashed invocation is retried from its first record
                log.exception("%s stream consumer crashed; the batch will be retried", table_key)
                failed = [records[0]["dynamodb"]["SequenceNumber"]]
            retries = self._retries.pop(position, 0)
            if failed and retries < STREAM_RETRIES:
                self._retries[position] = retries + 1
                self._positions[position] = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
                    SequenceNumber=min(failed, key=int))["ShardIterator"]
            elif failed:
                log.error("%s stream: %d record(s) from %s failed %d times; moving on (the outbox sweep has them)",
                          table_key, len(records), min(failed, key=int), retries + 1)
            handled += len(records)
        return handled


def _lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it over: the stream's ARN added, the time in epoch seconds."""
    change = dict(record["dynamodb"])
    if "ApproximateCreationDateTime" in change:
        change["ApproximateCreationDateTime"] = change["ApproximateCreationDateTime"].timestamp()
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn}


STREAMS = StreamPoller()


def poll_streams() -> int:
    return sum(STREAMS.poll_once(table_key) for table_key in STREAM_CONSUMERS)


def run_schedules() -> None:
    for path in SCHEDULES:
        _resolve(path)({"source": "local.schedule"}, None)


def drain(max_rounds: int = 50) -> int:
    """Run schedules and consumers until every queue is empty (for tests and one-shot runs)."""
    handled = 0
    for _ in range(max_rounds):
        run_schedules()
        batch = poll_streams() + sum(poll_once(key) for key in CONSUMERS)
        handled += batch
        if batch == 0:
            return handled
    return handled


class WorkerLoop(threading.Thread):
    """Background loop for `make run`: consumers long-poll, schedules fire every ``schedule_every_s``."""

    def __init__(self, schedule_every_s: float = 5.0) -> None:
        super().__init__(name="local-workers", daemon=True)
        self._stop_event = threading.Event()
        self._schedule_every_s = schedule_every_s

    def run(self) -> None:
        import time

        next_schedule = next_slow = 0.0
        daily = DailySchedules(utcnow())
        while not self._stop_event.is_set():
            try:
                if time.monotonic() >= next_schedule:
                    run_schedules()
                    for fired in daily.fire_due(utcnow()):
                        log.info("daily schedule %s fired", fired)
                    next_schedule = time.monotonic() + self._schedule_every_s
                if time.monotonic() >= next_slow:
                    for path in SLOW_SCHEDULES:
                        _resolve(path)({"source": "local.schedule"}, None)
                    next_slow = time.monotonic() + SLOW_EVERY_S
                if poll_streams() + sum(poll_once(key, wait_s=0) for key in CONSUMERS) == 0:
                    self._stop_event.wait(0.5)
            except Exception:  # noqa: BLE001 - the loop must survive a bad tick; the error is logged in full
                log.exception("local worker tick failed")
                self._stop_event.wait(1.0)

    def stop(self) -> None:
        self._stop_event.set()
