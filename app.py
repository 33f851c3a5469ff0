"""The Chalice app: every route group and worker, registered in one place. No business logic here.

Deployed, each route group runs as its own Lambda (see infra/stack.py); this app is what `chalice local`
serves and what Chalice packages.
"""

from chalice import Chalice

from chalicelib.observability import configure_logging
from functions import (
    archive_sweep,
    bills,
    callbacks,
    checkout,
    framework_errors,
    invoice_worker,
    invoices,
    operator_api,
    outbox_relay,
    payments,
    payout_worker,
    payouts,
    recon,
    recon_fanout,
    recon_shards,
    recon_worker,
    refund_worker,
    refunds,
    settlement_fanout,
    statements,
    status_sync_worker,
    sweeps,
    webhook_worker,
)
from functions.standalone import blueprint

configure_logging()
app = Chalice(app_name="payhub")
for group in (payments, refunds, callbacks, recon, operator_api, bills, checkout, invoices, payouts):
    app.register_blueprint(blueprint(group.__name__, group.ROUTES))
framework_errors.install(app)  # Chalice's own 405/415/500 answers in the hub's error shape


@app.lambda_function(name="webhook_worker")
def webhook_worker_fn(event, context):
    return webhook_worker.handler(event, context)


@app.lambda_function(name="status_sync_worker")
def status_sync_worker_fn(event, context):
    return status_sync_worker.handler(event, context)


@app.lambda_function(name="refund_worker")
def refund_worker_fn(event, context):
    return refund_worker.handler(event, context)


@app.lambda_function(name="outbox_relay")
def outbox_relay_fn(event, context):
    return outbox_relay.handler(event, context)


@app.lambda_function(name="outbox_sweep")
def outbox_sweep_fn(event, context):
    return sweeps.outbox_sweep(event, context)


@app.lambda_function(name="status_sync_sweep")
def status_sync_sweep_fn(event, context):
    return sweeps.status_sync_sweep(event, context)


@app.lambda_function(name="transfers_sweep")
def transfers_sweep_fn(event, context):
    return sweeps.transfers_sweep(event, context)


@app.lambda_function(name="recon_worker")
def recon_worker_fn(event, context):
    return recon_worker.handler(event, context)


@app.lambda_function(name="recon_fanout")
def recon_fanout_fn(event, context):
    return recon_fanout.fan_out(event, context)


@app.lambda_function(name="archive_sweep")
def archive_sweep_fn(event, context):
    return archive_sweep.handler(event, context)


@app.lambda_function(name="settlement_fanout")
def settlement_fanout_fn(event, context):
    return settlement_fanout.fan_out(event, context)


@app.lambda_function(name="statements")
def statements_fn(event, context):
    return statements.handler(event, context)


@app.lambda_function(name="payout_worker")
def payout_worker_fn(event, context):
    return payout_worker.handler(event, context)


@app.lambda_function(name="invoice_worker")
def invoice_worker_fn(event, context):
    return invoice_worker.handler(event, context)


@app.lambda_function(name="recon_shard_plan")
def recon_shard_plan_fn(event, context):
    return recon_shards.plan(event, context)


@app.lambda_function(name="recon_shard_partition")
def recon_shard_partition_fn(event, context):
    return recon_shards.partition(event, context)


@app.lambda_function(name="recon_shard_match")
def recon_shard_match_fn(event, context):
    return recon_shards.match(event, context)


@app.lambda_function(name="recon_shard_combine")
def recon_shard_combine_fn(event, context):
    return recon_shards.combine(event, context)
