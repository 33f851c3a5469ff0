"""Definitions of every stateful resource, shared by the CDK stack and the local stack.

One source of truth: ``infra/stack.py`` turns these into CloudFormation, ``infra/local`` creates the same
tables and queues in moto over boto3. Change a key schema or an index here and both follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.config.names import QUEUES, StageNames


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class Table:
    logical_id: str
    name: str
    partition_key: str = "pk"
    sort_key: str | None = "sk"
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None

    @property
    def attributes(self) -> list[str]:
        names = [self.partition_key] + ([self.sort_key] if self.sort_key else [])
        for index in self.indexes:
            names.append(index.partition_key)
            if index.sort_key:
                names.append(index.sort_key)
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Queue:
    logical_id: str
    key: str
    name: str
    dead_letter_name: str
    visibility_timeout_s: int = 180
    max_receive_count: int = 8
    retention_s: int = 4 * 24 * 3600
    # One message per invocation: each may wait on a channel or a merchant for ~10 s, and a batch that
    # outlives the Lambda timeout would be redelivered whole (delivered webhooks posted twice, innocent
    # messages pushed toward the DLQ). Concurrency, not batching, gives throughput here.
    batch_size: int = 1


@dataclass(frozen=True)
class Schedule:
    logical_id: str
    function: str  # key of the worker in infra.functions.WORKERS
    rate_minutes: int


@dataclass(frozen=True)
class Resources:
    names: StageNames
    tables: tuple[Table, ...]
    queues: tuple[Queue, ...]
    schedules: tuple[Schedule, ...] = field(default=())


def resources(stage: str) -> Resources:
    names = StageNames(stage)
    tables = (
        Table(
            "StateTable",
            names.state_table,
            indexes=(
                # merchant's event list, newest first: gsi1pk = MERCHANT#<id>#EVENTS, gsi1sk = <created_at>#<evt id>
                Index("gsi1", "gsi1pk", "gsi1sk"),
                # sparse: outbox events not yet published, for the sweep
                Index("outbox", "outbox_shard", "outbox_created_at"),
                # sparse: attempts/refunds whose status must be synced with the channel, by due time
                Index("sync", "sync_shard", "sync_due_at"),
            ),
            ttl_attribute="expires_at_epoch",
        ),
        Table("LedgerTable", names.ledger_table),
        Table("IdempotencyTable", names.idempotency_table, sort_key=None, ttl_attribute="expires_at_epoch"),
        Table("ConfigTable", names.config_table),
    )
    queues = tuple(
        Queue(
            logical_id="".join(part.title() for part in key.split("-")) + "Queue",
            key=key,
            name=names.queue(key),
            dead_letter_name=names.dead_letter_queue(key),
        )
        for key in QUEUES
    )
    schedules = (
        Schedule("OutboxSweepSchedule", "outbox_sweep", 1),
        Schedule("StatusSyncSweepSchedule", "status_sync_sweep", 1),
    )
    return Resources(names=names, tables=tables, queues=queues, schedules=schedules)
