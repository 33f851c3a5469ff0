"""Definitions of every stateful resource, shared by the CDK stack and the local stack.

One source of truth: ``infra/stack.py`` turns these into CloudFormation, ``infra/local`` creates the same
tables and queues in moto over boto3. Change a key schema or an index here and both follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.channels.registry import ADAPTERS, NO_CHANNEL_STATEMENT
from chalicelib.config.names import QUEUES, StageNames
from chalicelib.recon.schedule import utc_cron

# A reconciliation run may take the worker's full 15 minutes; SQS wants the visibility timeout at 6x that.
# A payouts message (100 items, each one or two signed bank calls; a reserve's day statement) takes up to the
# payout worker's 5 minutes.
PAYOUTS_VISIBILITY_S = 6 * 300
RECON_VISIBILITY_S = 6 * 900


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None
    # ALL, or KEYS_ONLY for an index read only to find items: then only a change of its keys writes to it;
    # INCLUDE adds ``non_key_attributes``: a change of any other attribute writes nothing to the index
    projection: str = "ALL"
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    logical_id: str
    name: str
    partition_key: str = "pk"
    sort_key: str | None = "sk"
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None
    stream: str | None = None  # StreamViewType (NEW_IMAGE): the outbox relay reads new outbox items from it

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
class DailySchedule:
    """Fires once a day at ``cron`` (an EventBridge UTC expression) with ``payload`` as the event."""

    logical_id: str
    function: str  # key of the worker in infra.functions.WORKERS
    cron: str
    payload: dict[str, str]


@dataclass(frozen=True)
class Bucket:
    logical_id: str
    name: str  # local name; deployed with "-<account>-<region>" appended (bucket names are global)


@dataclass(frozen=True)
class KmsKey:
    logical_id: str
    alias: str
    description: str
    key_spec: str = "SYMMETRIC_DEFAULT"
    key_usage: str = "ENCRYPT_DECRYPT"
    # Yearly automatic rotation. AWS supports it for symmetric encryption keys only; an HMAC key cannot be
    # rotated automatically, and rotating the fingerprint key would change every card's fingerprint anyway.
    rotation: bool = True


@dataclass(frozen=True)
class Resources:
    names: StageNames
    tables: tuple[Table, ...]
    queues: tuple[Queue, ...]
    schedules: tuple[Schedule, ...] = field(default=())
    keys: tuple[KmsKey, ...] = field(default=())
    buckets: tuple[Bucket, ...] = field(default=())
    daily_schedules: tuple[DailySchedule, ...] = field(default=())


def resources(stage: str) -> Resources:
    names = StageNames(stage)
    tables = (
        Table(
            "StateTable",
            names.state_table,
            indexes=(
                # merchant's event list, newest first: gsi1pk = MERCHANT#<id>#EVENTS#<shard>, gsi1sk = <created_at>#<evt id>
                # keys only: publishing and delivering an event update it, and must not write to the list too
                Index("gsi1", "gsi1pk", "gsi1sk", projection="KEYS_ONLY"),
                # sparse: outbox events not yet published, for the sweep (sharded: storage/shards.py)
                Index("outbox", "outbox_shard", "outbox_created_at"),
                # sparse: attempts/refunds whose status must be synced with the channel, by due time (sharded)
                Index("sync", "sync_shard", "sync_due_at"),
                # sparse: what reconciliation must match, by account, Beijing day and shard (storage/recon_index.py)
                Index("recon", "recon_spk", "recon_sk"),
                # a merchant's payments and refunds, newest first: list_pk = LIST#<merchant>#PAY|REF#<shard>,
                # list_sk = <created_at>#<id> (storage/listing_index.py). Only attributes that never change are
                # projected, so an object is written to the index once, at creation: its status changes, refund
                # bookkeeping and sync fields write nothing here (a status filter reads the items themselves)
                Index("listing", "list_pk", "list_sk", projection="INCLUDE",
                      non_key_attributes=("method", "channel", "payment_id")),
            ),
            ttl_attribute="expires_at_epoch",
            stream="NEW_IMAGE",  # new outbox items reach the relay (functions/outbox_relay.py) through it
        ),
        # sparse value_day index: entries by (ledger account, Beijing day the money moved, shard), for drill-down;
        # the recon ledger check reads the running day totals instead (storage/ledger_repo.py)
        Table("LedgerTable", names.ledger_table, indexes=(Index("value_day", "value_key", "sk"),)),
        Table("IdempotencyTable", names.idempotency_table, sort_key=None, ttl_attribute="expires_at_epoch"),
        Table("ConfigTable", names.config_table),
        # reconciliation runs, their discrepancy items and the cross-day pool (chalicelib/recon/repo.py)
        Table("ReconTable", names.recon_table),
    )
    queues = tuple(
        Queue(
            logical_id="".join(part.title() for part in key.split("-")) + "Queue",
            key=key,
            name=names.queue(key),
            dead_letter_name=names.dead_letter_queue(key),
            **({"visibility_timeout_s": RECON_VISIBILITY_S} if key == "recon" else {}),
            **({"visibility_timeout_s": PAYOUTS_VISIBILITY_S} if key == "payouts" else {}),
        )
        for key in QUEUES
    )
    schedules = (
        Schedule("OutboxSweepSchedule", "outbox_sweep", 1),
        Schedule("StatusSyncSweepSchedule", "status_sync_sweep", 1),
        # Payer businesses' transfers into the reserve: today's statement read every few minutes.
        Schedule("TransfersSweepSchedule", "transfers_sweep", 5),
    )
    keys = (
        KmsKey("Key", names.kms_alias, f"payhub {stage}: tables, queues, channel secrets"),
        # The card vault has keys of its own, so that only the functions that handle cards can use them.
        KmsKey("CardVaultKey", names.card_vault_key_alias, f"payhub {stage}: wraps the card vault's data keys"),
        KmsKey("CardFingerprintKey", names.card_fingerprint_key_alias,
               f"payhub {stage}: HMAC of card numbers (fingerprints, keyed request hashes)",
               key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC", rotation=False),
        # Signs list cursors and payer bill links: a function derives its signing key once (GenerateMac over a
        # fixed label), so a page or a link costs no KMS call. HMAC keys cannot rotate automatically.
        KmsKey("LinkKey", names.link_key_alias, f"payhub {stage}: signs list cursors and payer bill links",
               key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC", rotation=False),
    )
    recon_schedules = tuple(
        DailySchedule(f"Recon{''.join(part.title() for part in channel.split('_'))}Schedule", "recon_fanout",
                      utc_cron(channel), {"channel": channel})
        for channel in ADAPTERS if channel not in NO_CHANNEL_STATEMENT
    )
    # Every day at 15:00 Beijing (after the last reconciliation of the day, PayPal's at 14:00): the previous
    # month's statements that are not published yet (functions/statements.py)
    statement_schedule = DailySchedule("StatementsSchedule", "statements", "cron(0 7 * * ? *)",
                                       {"job": "statements", "after_beijing": "15:00"})
    # Every day at 16:00 Beijing (after the day's reconciliations have booked the channels' fees): each merchant is
    # settled for the day before under its terms, and paid from the reserve (functions/settlement_fanout.py)
    settlement_schedule = DailySchedule("SettlementSchedule", "settlement_fanout", "cron(0 8 * * ? *)",
                                        {"job": "settlement", "after_beijing": "16:00"})
    return Resources(names=names, tables=tables, queues=queues, schedules=schedules, keys=keys,
                     buckets=(Bucket("ReconBucket", names.recon_bucket),
                              # bills and monthly statements as rendered (chalicelib/bills/store.py)
                              Bucket("DocumentsBucket", names.documents_bucket),
                              Bucket("InvoiceBucket", names.invoice_bucket)),  # issued invoices' PDFs
                     daily_schedules=(*recon_schedules, statement_schedule, settlement_schedule))
