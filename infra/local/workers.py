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
from chalicelib.recon.schedule import due_today, previous_beijing_day
from chalicelib.storage.aws import client

log = logging.getLogger(__name__)

# queue key -> handler path, as infra wires them
CONSUMERS = {
    "webhooks": "functions.webhook_worker.handler",
    "status-sync": "functions.status_sync_worker.handler",
    "refunds": "functions.refund_worker.handler",
    "recon": "functions.recon_worker.handler",
    "invoices": "functions.invoice_worker.handler",
}
SCHEDULES = ("functions.sweeps.outbox_sweep", "functions.sweeps.status_sync_sweep")
RETRY_VISIBILITY_S = 2  # locally, a failed message comes back after 2 s instead of the deployed timeout


# Daily schedules (infra.resources daily_schedules, e.g. each channel's reconciliation fan-out): worker name
# -> handler. They fire in `make run` at their time of day; `drain` never fires them (tests enqueue runs).
DAILY = {"recon_fanout": "functions.recon_fanout.fan_out"}


class DailySchedules:
    """Fires each daily schedule once per Beijing day, when its channel's time has passed. Started after the
    time, the stack waits for the next day rather than reconciling at once."""

    def __init__(self, now: datetime) -> None:
        from infra.resources import resources

        self._specs = resources(settings().stage).daily_schedules
        self._fired = {spec.logical_id: self._today(now) if self._due(spec.payload, now) else None
                       for spec in self._specs}

    @staticmethod
    def _today(now: datetime) -> str:
        return previous_beijing_day(now).isoformat()

    @staticmethod
    def _due(payload: dict[str, str], now: datetime) -> bool:
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


def run_schedules() -> None:
    for path in SCHEDULES:
        _resolve(path)({"source": "local.schedule"}, None)


def drain(max_rounds: int = 50) -> int:
    """Run schedules and consumers until every queue is empty (for tests and one-shot runs)."""
    handled = 0
    for _ in range(max_rounds):
        run_schedules()
        batch = sum(poll_once(key) for key in CONSUMERS)
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

        next_schedule = 0.0
        daily = DailySchedules(utcnow())
        while not self._stop_event.is_set():
            try:
                if time.monotonic() >= next_schedule:
                    run_schedules()
                    for fired in daily.fire_due(utcnow()):
                        log.info("daily schedule %s fired", fired)
                    next_schedule = time.monotonic() + self._schedule_every_s
                if sum(poll_once(key, wait_s=0) for key in CONSUMERS) == 0:
                    self._stop_event.wait(0.5)
            except Exception:  # noqa: BLE001 - the loop must survive a bad tick; the error is logged in full
                log.exception("local worker tick failed")
                self._stop_event.wait(1.0)

    def stop(self) -> None:
        self._stop_event.set()
