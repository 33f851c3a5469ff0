"""Every Lambda function of the hub: what it runs, how big it is and what it may touch.

One table read by the CDK stack (roles, sizing, triggers), the package test (handlers to import) and the
local stack (which queue feeds which worker, which sweep runs on which schedule). Access is declared here,
per function, so least privilege is reviewed in one place instead of being spread through ``stack.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Access levels for tables. "append" is for the ledger: entries are written once, never updated or deleted.
READ = "read"
APPEND = "append"
WRITE = "write"
# The keys an APPEND role may update in place: the ledger's running totals (never its entries).
LEDGER_TOTAL_KEYS = ("BAL#*", "DAY#*")
ARCHIVE = "archive"  # buckets only: write objects under S3 Object Lock retention, read them back


@dataclass(frozen=True)
class Access:
    tables: dict[str, str] = field(default_factory=dict)  # Table.logical_id -> READ | APPEND | WRITE
    sends_to: tuple[str, ...] = ()  # queue keys (chalicelib.config.names.QUEUES)
    channel_secrets: bool = False  # payhub/<stage>/channels/*
    merchant_webhook_secrets: bool = False  # payhub/<stage>/merchants/*/webhook
    rotates_merchant_webhook_secrets: bool = False  # may also put a new version of those (rotation)
    risk_secrets: bool = False  # payhub/<stage>/risk/* (risk and step-up providers, one-time-code key)
    # KmsKey.logical_id (infra.resources) -> the KMS actions allowed on it, beyond the stage key every function
    # uses for its encrypted tables and queues. Only what handles cards touches the card vault's keys.
    kms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)  # Bucket.logical_id -> READ | WRITE | ARCHIVE (objects)
    bucket_lists: tuple[str, ...] = ()  # Bucket.logical_ids it may list, under shards/ only (ReconShards' match)
    scans: tuple[str, ...] = ()  # Table.logical_ids it may Scan (the archival sweep only)
    invoicing_secrets: bool = False  # payhub/<stage>/invoicing/*: merchants' invoice-provider credentials
    bank_secrets: bool = False  # payhub/<stage>/banks/*: the keys of the hub's own bank-direct connections


@dataclass(frozen=True)
class Sizing:
    memory_mb: int
    timeout_s: int
    reserved_concurrency: int


@dataclass(frozen=True)
class RouteGroup:
    """Routes served by one Lambda behind the shared API Gateway (docs/design.md#api-split)."""

    name: str
    handler: str  # the group's standalone Chalice app: imports only its own route module
    routes: tuple[tuple[str, str], ...]  # (METHOD, path) exactly as in the Chalice app
    access: Access
    sizing: dict[str, Sizing]  # per stage; API Gateway throttles of the routes are derived from the cap


@dataclass(frozen=True)
class Worker:
    """A ``@app.lambda_function`` fed by a queue or a schedule; its handler imports only its own module."""

    name: str  # the name given to @app.lambda_function, also Schedule.function in infra.resources
    handler: str
    access: Access
    queue: str | None = None  # queue key it consumes; None for scheduled sweeps
    stream: str | None = None  # Table.logical_id whose stream it consumes (the outbox relay)
    memory_mb: int = 512
    timeout_s: int = 30  # the queue's visibility timeout must be >= 6x this (AWS guidance for SQS triggers)
    engine: bool = False  # gets the reconciliation engine's layer (DuckDB) beside the runtime one
    ephemeral_mb: int = 512  # /tmp: a step that holds a statement part or a shard's files needs more


# The outbox relay's stream mapping. A batch of 100 is 10 SendMessageBatch calls and 100 marks; 10 concurrent
# batches per stream shard keep up with a shard's ~1,000 writes/s; after 5 retries the stream moves on and the
# outbox sweep publishes what was left (docs/outbox.md). The local stack's poller keeps the same numbers.
STREAM_BATCH = 100
STREAM_PARALLELIZATION = 10
STREAM_RETRIES = 5

_STATE_RW = {"StateTable": WRITE, "ConfigTable": READ}


def _sizes(dev: Sizing, prod: Sizing) -> dict[str, Sizing]:
    return {"local": dev, "dev": dev, "test": dev, "prod": prod}


ROUTE_GROUPS: tuple[RouteGroup, ...] = (
    RouteGroup(
        name="payments",
        handler="functions.payments.app",
        routes=(
            ("POST", "/v1/payments"),
            ("GET", "/v1/payments"),
            ("GET", "/v1/payments/{payment_id}"),
            ("POST", "/v1/payments/{payment_id}/confirm"),
            ("POST", "/v1/payments/{payment_id}/close"),
            ("POST", "/v1/payments/{payment_id}/step_up"),
            ("POST", "/v1/payments/{payment_id}/step_up/verify"),
            ("POST", "/v1/payers/{user_id}/authenticators/options"),
            ("POST", "/v1/payers/{user_id}/authenticators"),
            ("GET", "/v1/events"),
            ("GET", "/v1/events/{event_id}"),
            ("POST", "/v1/events/{event_id}/redeliver"),
            ("GET", "/v1/openapi.json"),
        ),
        access=Access(
            # Closing or confirming can learn that the payer paid: that records the capture in the ledger. A
            # confirmation the channel wants completed by the hub is handed to status sync.
            tables={**_STATE_RW, "IdempotencyTable": WRITE, "LedgerTable": APPEND},
            # What a transition causes leaves through the outbox relay; the API sends only an operator's or a
            # merchant's redelivery of a webhook.
            sends_to=("webhooks",),
            channel_secrets=True,
            risk_secrets=True,
            bank_secrets=True,  # a bank.transfer payment opens its sub-account at the reserve's bank
            # Seal a card (new data key), open it for confirm (unwrap), fingerprint it and key the hash of
            # requests that carry it (HMAC). Nothing else: no Encrypt, no ReEncrypt, no key management.
            kms={"CardVaultKey": ("kms:GenerateDataKey", "kms:Decrypt"), "CardFingerprintKey": ("kms:GenerateMac",),
                 # list cursors are signed under a key derived once per container (chalicelib/bills/signing.py)
                 "LinkKey": ("kms:GenerateMac",)},
        ),
        sizing=_sizes(Sizing(1024, 15, 20), Sizing(1024, 15, 300)),
    ),
    RouteGroup(
        name="checkout",
        handler="functions.checkout.app",
        routes=(
            ("POST", "/v1/checkout_sessions"),
            ("GET", "/v1/checkout_sessions/{session_id}"),
            ("GET", "/checkout/{session_id}/{key}"),
            ("GET", "/checkout/{session_id}/{key}/status"),
            ("GET", "/checkout/{session_id}/{key}/return"),
            ("POST", "/checkout/{session_id}/{key}/return"),
            ("GET", "/checkout/{session_id}/{key}/wechat-oauth"),
            ("POST", "/checkout/{session_id}/{key}/pay"),
            ("POST", "/checkout/{session_id}/{key}/confirm"),
            ("POST", "/checkout/{session_id}/{key}/forget"),
            ("GET", "/checkout-assets/{name}"),
            ("POST", "/checkout/{session_id}/{key}/stepup"),
            ("POST", "/checkout/{session_id}/{key}/stepup/webauthn"),
        ),
        # The payer's side of a payment: opens attempts at channels (and closes the one switched away from, which
        # can learn that the payer paid it: a capture in the ledger), seals the card typed into the hub's own card
        # fields and opens it again for the SMS confirmation, like the payments function. What its transitions
        # cause leaves through the outbox relay: it sends to no queue.
        access=Access(
            tables={**_STATE_RW, "IdempotencyTable": WRITE, "LedgerTable": APPEND},
            channel_secrets=True,
            risk_secrets=True,  # every attempt's risk decision (the risk service) and the payer's step-up (SMS, face)
            kms={"CardVaultKey": ("kms:GenerateDataKey", "kms:Decrypt"), "CardFingerprintKey": ("kms:GenerateMac",)},
        ),
        # Payers poll the status while they pay: its own cap, so a crowd at the cashier cannot starve the API.
        # Above the route count, as every route's throttle takes a share of it.
        sizing=_sizes(Sizing(1024, 15, 20), Sizing(1024, 15, 200)),
    ),
    RouteGroup(
        name="refunds",
        handler="functions.refunds.app",
        routes=(
            ("POST", "/v1/payments/{payment_id}/refunds"),
            ("GET", "/v1/refunds"),
            ("GET", "/v1/refunds/{refund_id}"),
        ),
        access=Access(
            tables={**_STATE_RW, "IdempotencyTable": WRITE},  # the refund's submit command: outbox relay
            kms={"LinkKey": ("kms:GenerateMac",)},  # list cursors (chalicelib/bills/signing.py)
            risk_secrets=True,  # a refund's risk decision may ask the third-party risk service
        ),
        sizing=_sizes(Sizing(1024, 15, 5), Sizing(1024, 15, 50)),
    ),
    RouteGroup(
        name="callbacks",
        handler="functions.callbacks.app",
        routes=(("POST", "/callbacks/{channel}/{account}"),),
        access=Access(
            tables={**_STATE_RW, "LedgerTable": APPEND},  # one read, one transaction: the relay publishes
            channel_secrets=True,
        ),
        # Own cap so merchant traffic can never starve channel callbacks (docs/design.md#api-split).
        sizing=_sizes(Sizing(1024, 15, 10), Sizing(1024, 15, 200)),
    ),
    RouteGroup(
        name="invoices",
        handler="functions.invoices.app",
        routes=(
            ("POST", "/v1/invoices"),
            ("GET", "/v1/invoices/{invoice_id}"),
            ("POST", "/v1/invoices/{invoice_id}/reversals"),
            ("POST", "/invoice-callbacks/nuonuo/{merchant_id}"),
        ),
        # Records invoices and reversals (state table), reads the merchant's invoicing set-up, signs links to
        # the PDFs; the provider is called by the invoice worker only.
        access=Access(tables={**_STATE_RW, "IdempotencyTable": WRITE}, sends_to=("invoices",),
                      buckets={"InvoiceBucket": READ}),
        sizing=_sizes(Sizing(512, 15, 5), Sizing(512, 15, 50)),
    ),
    RouteGroup(
        name="payouts",
        handler="functions.payouts.app",
        routes=(
            ("POST", "/v1/payout_batches"),
            ("POST", "/v1/payout_batches/validate"),
            ("GET", "/v1/payout_batches/{batch_id}"),
            ("GET", "/v1/payout_batches/{batch_id}/items"),
            ("GET", "/v1/payout_batches/{batch_id}/result"),
            ("POST", "/v1/payout_batches/{batch_id}/retry"),
        ),
        # A merchant's batches and items (state table), the funds reserved in the ledger under the merchant's draw
        # guard, the first messages to the payouts queue. The bank is called by the payout worker only.
        access=Access(tables={**_STATE_RW, "IdempotencyTable": WRITE, "LedgerTable": APPEND}, sends_to=("payouts",)),
        # Up to 4 MB of batch validated in one request.
        sizing=_sizes(Sizing(1024, 29, 5), Sizing(1024, 29, 20)),
    ),
    RouteGroup(
        name="recon",
        handler="functions.recon.app",
        routes=(
            ("GET", "/v1/recon/runs"),
            ("GET", "/v1/recon/runs/{run_id}"),
            ("GET", "/v1/recon/runs/{run_id}/items"),
            ("POST", "/v1/recon/runs/{run_id}/items/{item_id}/close"),
        ),
        # Operators only: reads runs and items, signs links to the report files; closing a reviewed item writes it,
        # its audit record (config table) and the run's refreshed counts and report files.
        access=Access(tables={"ReconTable": WRITE, "ConfigTable": WRITE}, buckets={"ReconBucket": WRITE}),
        sizing=_sizes(Sizing(512, 15, 2), Sizing(512, 15, 5)),
    ),
    RouteGroup(
        name="operator",
        handler="functions.operator_api.app",
        routes=(
            ("GET", "/v1/operator/merchants/{merchant_id}/api-keys"),
            ("POST", "/v1/operator/merchants/{merchant_id}/api-keys"),
            ("POST", "/v1/operator/merchants/{merchant_id}/api-keys/{key_id}/rotate"),
            ("POST", "/v1/operator/merchants/{merchant_id}/api-keys/{key_id}/revoke"),
            ("POST", "/v1/operator/merchants/{merchant_id}/suspend"),
            ("POST", "/v1/operator/merchants/{merchant_id}/reactivate"),
            ("POST", "/v1/operator/merchants/{merchant_id}/webhook-secret/rotate"),
            ("GET", "/v1/operator/audit"),
            ("GET", "/v1/operator/risk/rules"),
            ("POST", "/v1/operator/risk/rules"),
            ("GET", "/v1/operator/payments/{payment_id}/risk"),
            ("POST", "/v1/operator/payout_batches/{batch_id}/approve"),
            ("POST", "/v1/operator/payout_batches/{batch_id}/reject"),
            ("GET", "/v1/operator/transfers/receipts"),
            ("POST", "/v1/operator/transfers/receipts/{receipt_id}/approve"),
            ("POST", "/v1/operator/transfers/receipts/{receipt_id}/assign"),
            ("POST", "/v1/operator/transfers/receipts/{receipt_id}/return"),
            ("POST", "/v1/operator/transfers/receipts/{receipt_id}/keep"),
        ),
        # Operators only: API keys, merchant status, risk rules and the audit trail live in the config table; a webhook
        # secret rotation reads the current secret and puts the new version. No channels.
        # Risk: rule versions are config; a payment's decisions are read from the state table, never written.
        # A checker's decision on a payout batch: the batch (state table), its funds reserved in the ledger under the
        # merchant's draw guard, and its first messages to the payouts queue.
        # A decision on a bank credit: its receipt and order (state table), journals, the capture through the state
        # machine; a return to the payer is a transfer through the bank (bank-direct keys).
        access=Access(tables={"ConfigTable": WRITE, "StateTable": WRITE, "LedgerTable": APPEND},
                      sends_to=("payouts",), merchant_webhook_secrets=True, rotates_merchant_webhook_secrets=True,
                      bank_secrets=True),
        sizing=_sizes(Sizing(512, 15, 2), Sizing(512, 15, 5)),
    ),
)

ROUTE_GROUPS += (
    RouteGroup(
        name="bills",
        handler="functions.bills.app",
        routes=(
            ("GET", "/v1/payments/{payment_id}/bill"),
            ("GET", "/v1/refunds/{refund_id}/bill"),
            ("GET", "/v1/bills/{token}"),  # the payer's link: no API key, the signed token is the permission
            ("GET", "/v1/statements/{month}"),
        ),
        # Reads payments, refunds and attempts; renders bills into the documents bucket and signs links to them
        # and to the statements the scheduled function wrote. Writes nothing else.
        access=Access(tables={"StateTable": READ, "ConfigTable": READ}, buckets={"DocumentsBucket": WRITE},
                      kms={"LinkKey": ("kms:GenerateMac",)}),
        sizing=_sizes(Sizing(1024, 15, 5), Sizing(1024, 15, 50)),
    ),
)

WORKERS: tuple[Worker, ...] = (
    Worker(
        name="webhook_worker",
        handler="functions.webhook_worker.handler",
        queue="webhooks",
        access=Access(tables=_STATE_RW, sends_to=("webhooks",), merchant_webhook_secrets=True),
    ),
    Worker(
        name="status_sync_worker",
        handler="functions.status_sync_worker.handler",
        queue="status-sync",
        access=Access(
            tables={**_STATE_RW, "LedgerTable": APPEND},
            sends_to=("refunds",),  # resubmits a refund whose submit message was lost
            channel_secrets=True,
            bank_secrets=True,  # a bank-transfer refund's status is its transfer's, asked at the reserve's bank
        ),
    ),
    Worker(
        name="refund_worker",
        handler="functions.refund_worker.handler",
        queue="refunds",
        access=Access(
            tables={**_STATE_RW, "LedgerTable": APPEND},
            channel_secrets=True,
            bank_secrets=True,  # a bank-transfer refund is a transfer out of the reserve through its bank
        ),
    ),
    Worker(
        name="outbox_relay",
        handler="functions.outbox_relay.handler",
        # Reads the state table's stream (granted with the mapping), sends each new outbox event to its queue and
        # marks it sent (UpdateItem). Nothing else: no channels, no ledger, no secrets.
        access=Access(tables={"StateTable": WRITE},
                      sends_to=("webhooks", "status-sync", "refunds", "invoices", "payouts")),
        stream="StateTable",
        timeout_s=30,
    ),
    Worker(
        name="outbox_sweep",
        handler="functions.sweeps.outbox_sweep",
        access=Access(tables=_STATE_RW, sends_to=("webhooks", "status-sync", "refunds", "invoices", "payouts")),
        timeout_s=60,
    ),
    Worker(
        name="status_sync_sweep",
        handler="functions.sweeps.status_sync_sweep",
        access=Access(tables=_STATE_RW, sends_to=("status-sync",)),
        timeout_s=60,
    ),
    Worker(
        name="recon_worker",
        handler="functions.recon_worker.handler",
        queue="recon",
        # Repairs go through the state machine (transitions, journals, outbox events, automatic refunds).
        access=Access(
            tables={**_STATE_RW, "LedgerTable": APPEND, "ReconTable": WRITE},
            channel_secrets=True,
            buckets={"ReconBucket": WRITE},
        ),
        memory_mb=2048,  # the day's hub records are indexed in memory (~200 bytes each)
        timeout_s=900,
    ),
    Worker(
        name="recon_fanout",
        handler="functions.recon_fanout.fan_out",
        access=Access(tables={"ConfigTable": READ}, sends_to=("recon",)),
        timeout_s=60,
    ),
    # A day of 100 million rows: the ReconShards state machine's steps (infra/recon_stack.py, docs/recon-engine.md).
    # Plan and combine begin and complete the run as the recon worker does, so they have its rights.
    Worker(
        name="recon_shard_plan",
        handler="functions.recon_shards.plan",
        access=Access(tables={"ConfigTable": READ, "ReconTable": WRITE}, channel_secrets=True,
                      buckets={"ReconBucket": WRITE}),
        memory_mb=1769,  # one full vCPU: ISA-L and bytes.split over the statement, no parsing
        timeout_s=900,
        engine=True,
        ephemeral_mb=10_240,  # the statement and its parts pass through /tmp
    ),
    Worker(
        name="recon_shard_partition",
        handler="functions.recon_shards.partition",
        access=Access(buckets={"ReconBucket": WRITE}),  # the fee rate comes from plan: no table, no secret
        memory_mb=1769,  # one part (1 M lines) or one export data file under DuckDB's 300 MB limit, 2 threads
        timeout_s=300,
        engine=True,
        ephemeral_mb=2048,
    ),
    Worker(
        name="recon_shard_match",
        handler="functions.recon_shards.match",
        access=Access(buckets={"ReconBucket": WRITE}, bucket_lists=("ReconBucket",)),
        memory_mb=1769,  # ~1 M rows + 1 M records a shard under DuckDB's 256 MB limit
        timeout_s=300,
        engine=True,
        ephemeral_mb=2048,
    ),
    Worker(
        name="recon_shard_combine",
        handler="functions.recon_shards.combine",
        access=Access(
            tables={**_STATE_RW, "LedgerTable": APPEND, "ReconTable": WRITE},
            sends_to=("webhooks", "status-sync", "refunds"),
            channel_secrets=True,
            buckets={"ReconBucket": WRITE},
        ),
        memory_mb=3008,
        timeout_s=900,
        engine=True,
    ),
)

WORKERS += (
    Worker(
        name="archive_sweep",
        handler="functions.archive_sweep.handler",
        # Reads the state table segment by segment; swaps settled records for pointers (put + conditional delete)
        # after writing them, locked, to the archive bucket. Nothing else: no channels, no queues, no ledger.
        access=Access(tables={"StateTable": WRITE}, scans=("StateTable",), buckets={"ArchiveBucket": ARCHIVE}),
        memory_mb=1024,
        timeout_s=900,
    ),
    Worker(
        name="settlement_fanout",
        handler="functions.settlement_fanout.fan_out",
        # Lists merchants and bank accounts (the small config table, as `payhub merchant list`) and queues one
        # settlement per merchant and currency, one reserve reconciliation per bank account: the payout worker
        # does each.
        access=Access(tables={"ConfigTable": READ}, scans=("ConfigTable",), sends_to=("payouts",)),
        timeout_s=300,
    ),
)

WORKERS += (
    Worker(
        name="statements",
        handler="functions.statements.handler",
        # Reads the ledger's entries and totals and the records they name, finds merchants (one filtered Scan
        # of the small config table, as `payhub merchant list`), writes the files, and announces each through
        # the outbox (an event item in the state table; the outbox relay sends it).
        access=Access(tables={"StateTable": WRITE, "LedgerTable": READ, "ConfigTable": READ},
                      scans=("ConfigTable",), buckets={"DocumentsBucket": WRITE}),
        memory_mb=1024,
        timeout_s=900,
    ),
)

WORKERS += (
    Worker(
        name="invoice_worker",
        handler="functions.invoice_worker.handler",
        queue="invoices",
        # Calls the invoice provider with each merchant's credentials, keeps the PDFs, tells merchants.
        access=Access(tables=_STATE_RW, sends_to=("invoices",), invoicing_secrets=True,
                      buckets={"InvoiceBucket": WRITE}),
    ),
    Worker(
        name="transfers_sweep",
        handler="functions.sweeps.transfers_sweep",
        # Reads each reserve's statement through the bank (bank-direct keys; the bank accounts are found by a
        # filtered Scan of the small config table), records each credit once with its journal, moves paid payments
        # through the state machine (its outbox events), follows up the returns to payers.
        access=Access(tables={**_STATE_RW, "LedgerTable": APPEND, "ConfigTable": READ}, scans=("ConfigTable",),
                      bank_secrets=True),
        timeout_s=120,
    ),
    Worker(
        name="payout_worker",
        handler="functions.payout_worker.handler",
        queue="payouts",
        # Sends each item and settlement to the bank (bank-direct keys), records its end with its journal, asks again
        # later; reconciles each reserve's bank statement (its run in the recon table, channel settlements booked).
        access=Access(tables={**_STATE_RW, "LedgerTable": APPEND, "ReconTable": WRITE}, sends_to=("payouts",),
                      bank_secrets=True),
        timeout_s=300,
    ),
)

WORKERS_BY_NAME = {worker.name: worker for worker in WORKERS}

