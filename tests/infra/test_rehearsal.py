"""The deploy rehearsal: the synthesized PayHub-dev template run as deployed, minus AWS.

The template and its built artifacts come from the CDK app exactly as ``cdk deploy`` would publish them (the
cloud assembly's code and layer assets). The stateful resources are created in moto from their template
properties. Every function of the template then runs from those artifacts in a fresh process of its own, with
exactly the environment the template gives it (plus Lambda's reserved variables and the local AWS endpoint),
fed the events API Gateway (behind the stage's custom domain, over TLS), the SQS event source mappings and
EventBridge would send. Together they carry one WeChat Pay payment from creation through the channel's
callback, a refund, the merchant's webhooks and a reconciliation run. Finally every AWS call each function
made is decided against that function's role in the template by @cloud-copilot/iam-simulate.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from datetime import time as day_time
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3

from infra.local.moto import free_port
from infra.local.webhook_receiver import WebhookReceiver
from tests.infra.rehearsal import iam
from tests.infra.rehearsal.cfn import Template, provision
from tests.infra.rehearsal.lambdas import LAMBDA_RESERVED, ApiGateway, EventSources, FunctionProcess, lambda_environment
from tests.infra.rehearsal.network import Pki, TlsSite, hosts_map

ROOT = Path(__file__).resolve().parents[2]
REGION = "ap-east-1"
DOMAIN = "pay.rehearsal.test"  # the stage parameter DomainName
MERCHANT_HOST = "merchant.rehearsal.test"
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-4000-8000-000000000000"
BEIJING = timezone(timedelta(hours=8))
pytestmark = pytest.mark.timeout(900)

MOTO_SERVER = """
import sys, threading
from infra.local.moto import SerializedMotoServer
SerializedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
print("ready", flush=True)
threading.Event().wait()
"""


@dataclass
class Rehearsal:
    template: Template
    processes: dict[str, FunctionProcess]
    sources: EventSources
    api: ApiGateway
    pki: Pki
    api_site: TlsSite
    receiver: WebhookReceiver
    sandbox_url: str
    nuonuo_url: str
    operator_env: dict[str, str]
    hosts_file: Path
    session: Any

    def call(self, method: str, path: str, api_key: str, body: dict[str, Any] | None = None) -> Any:
        """A merchant (or operator) calling https://<DomainName>/..., TLS verified against the domain's name."""
        pool = urllib3.HTTPSConnectionPool("127.0.0.1", self.api_site.port, server_hostname=DOMAIN,
                                           assert_hostname=DOMAIN, ssl_context=self.pki.client_context())
        headers = {"Authorization": f"Bearer {api_key}", "Host": DOMAIN}
        if body is not None:
            headers |= {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
        response = pool.urlopen(method, path, body=json.dumps(body) if body is not None else None,
                                headers=headers, retries=False)
        return response.status, json.loads(response.data) if response.data else None

    def fetch(self, method: str, path: str, *, headers: dict[str, str] | None = None,
              body: str | None = None) -> Any:
        """A payer's browser at https://<DomainName>/... (the hosted checkout page): the raw answer."""
        pool = urllib3.HTTPSConnectionPool("127.0.0.1", self.api_site.port, server_hostname=DOMAIN,
                                           assert_hostname=DOMAIN, ssl_context=self.pki.client_context())
        return pool.urlopen(method, path, body=body, headers={"Host": DOMAIN, **(headers or {})}, retries=False,
                            redirect=False)

    def operator(self, *args: str) -> Any:
        """The operator's ``payhub`` CLI against the stage, as the deploy guide runs it."""
        done = subprocess.run(  # noqa: S603 - our interpreter and CLI
            [sys.executable, str(Path(__file__).parent / "rehearsal" / "outside.py"), str(self.hosts_file),
             str(self.pki.ca_file), "-m", "payhub_cli.main", *args],
            env=self.operator_env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)


def _synthesize(out: Path) -> Template:
    """``cdk synth`` as the CLI runs the app: CDK_OUTDIR and the stage in CDK_CONTEXT_JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYHUB_", "AWS_"))}
    env |= {"CDK_OUTDIR": str(out), "CDK_CONTEXT_JSON": json.dumps({"stage": "dev"})}
    subprocess.run([sys.executable, str(ROOT / "infra" / "app.py")], env=env, cwd=ROOT, check=True,  # noqa: S603
                   capture_output=True, timeout=600)
    assets = json.loads((out / "PayHub-dev.assets.json").read_text())["files"]
    paths = {dest["objectKey"]: str(out / asset["source"]["path"])
             for asset in assets.values() for dest in asset["destinations"].values()}
    return Template(json.loads((out / "PayHub-dev.template.json").read_text()), REGION,
                    {"DomainName": DOMAIN, "CertificateArn": CERTIFICATE_ARN}, paths)


def _unzip(archive: str, target: Path) -> Path:
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(target)
    return target


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with open(log, "w") as output:
        return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=output, text=True)  # noqa: S603


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    work = tmp_path_factory.mktemp("rehearsal")
    template = _synthesize(work / "cdk.out")
    template.name_functions_and_roles()
    moto_port = free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    moto = _start([sys.executable, "-c", MOTO_SERVER, str(moto_port)], {**base_env, "PYTHONPATH": str(ROOT)},
                  work / "moto.log")
    assert moto.stdout is not None and moto.stdout.readline().strip() == "ready", (work / "moto.log").read_text()
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    session._rehearsal_endpoint = endpoint  # type: ignore[attr-defined]
    clients = _Clients(session, endpoint)
    provision(template, clients)

    pki = Pki(work)
    receiver = WebhookReceiver()
    receiver.base_url = f"https://{MERCHANT_HOST}"
    merchant_site = TlsSite(pki, MERCHANT_HOST, lambda m, t, h, b: (
        receiver.handle(t, {k.lower(): v[-1] for k, v in h.items()}, b), {}, b""))
    processes: dict[str, FunctionProcess] = {}
    api = ApiGateway(template, processes, DOMAIN)
    api_site = TlsSite(pki, DOMAIN, api.respond)
    hosts = hosts_map([api_site, merchant_site])
    hosts_file = work / "hosts.json"
    hosts_file.write_text(json.dumps(hosts))

    functions = template.functions()
    code_dirs = {asset: _unzip(asset, work / f"task-{n}") for n, asset in enumerate({f.code for f in functions.values()})}
    # Lambda merges a function's layers into /opt: one directory per distinct list of layers, unzipped in order
    opt_dirs: dict[tuple[str, ...], Path] = {}
    for n, layers in enumerate(sorted({tuple(f.layers) for f in functions.values()})):
        for layer in layers:
            opt_dirs[layers] = _unzip(layer, work / f"opt-{n}")
    for logical_id, function in functions.items():
        layer = tuple(function.layers)
        log_group = template.physical[template.resources[logical_id]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]]
        environment = lambda_environment(function, REGION, endpoint, log_group)
        processes[logical_id] = FunctionProcess(function, environment, code_dirs[function.code], opt_dirs[layer],
                                                hosts, pki.ca_file, work, template.arns[logical_id])
    for process in processes.values():  # all cold-started at once, like a first deploy's first requests
        process.wait_ready()

    sandbox_port = free_port()
    sandbox = _start([sys.executable, str(Path(__file__).parent / "rehearsal" / "outside.py"), str(hosts_file),
                      str(pki.ca_file), "-m", "sandbox.wechatpay", "--port", str(sandbox_port),
                      "--retry-scale", "0.002", "--refund-settle-s", "0", "--log-level", "WARNING"],
                     base_env, work / "sandbox.log")
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    _wait_listening(sandbox_port)
    nuonuo_port = free_port()  # the invoice provider, pushing its callbacks to the custom domain
    nuonuo = _start([sys.executable, str(Path(__file__).parent / "rehearsal" / "outside.py"), str(hosts_file),
                     str(pki.ca_file), "-m", "sandbox.nuonuo", "--port", str(nuonuo_port), "--retry-scale", "0.002"],
                    base_env, work / "nuonuo.log")
    _wait_listening(nuonuo_port)
    operator_env = {**base_env, "AWS_ENDPOINT_URL": endpoint, "PAYHUB_STAGE": "dev",
                    "PAYHUB_PUBLIC_BASE_URL": f"https://{DOMAIN}", "PAYHUB_OPERATOR": "rehearsal",
                    "PAYHUB_RECON_BUCKET": functions["ReconWorker"].environment["PAYHUB_RECON_BUCKET"],
                    "PAYHUB_INVOICE_BUCKET": functions["InvoiceWorker"].environment["PAYHUB_INVOICE_BUCKET"]}
    sources = EventSources(template, processes, clients.client("sqs"), clients.client("dynamodbstreams"))
    yield Rehearsal(template, processes, sources, api, pki,
                    api_site, receiver, sandbox_url, f"http://127.0.0.1:{nuonuo_port}", operator_env, hosts_file,
                    clients)
    for process in processes.values():
        process.stop()
    for proc in (sandbox, nuonuo, moto):
        proc.terminate()
        proc.wait(timeout=10)
    api_site.stop()
    merchant_site.stop()


class _Clients:
    """boto3 clients of the rehearsal's own moto (never the session-wide one other tests may have started)."""

    def __init__(self, session: Any, endpoint: str) -> None:
        self._session, self._endpoint, self._clients = session, endpoint, {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self._endpoint)
        return self._clients[service]


def _wait_listening(port: int) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def _wait(condition: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
    return value


# --- the environment ---------------------------------------------------------------------------------------------


def test_every_function_gets_exactly_its_template_environment(rehearsal: Rehearsal) -> None:
    for logical_id, process in rehearsal.processes.items():
        template_env = process.function.environment
        assert template_env["PAYHUB_STAGE"] == "dev"
        assert template_env["PAYHUB_PUBLIC_BASE_URL"] == f"https://{DOMAIN}", logical_id
        assert set(process.environment) == set(template_env) | set(LAMBDA_RESERVED) | {"AWS_ENDPOINT_URL"}
        assert "init_error" not in process.wait_ready(), (logical_id, process.output.read_text()[-2000:])


def test_a_function_without_its_public_url_refuses_to_start(rehearsal: Rehearsal, tmp_path: Path) -> None:
    worker = rehearsal.processes["WebhookWorker"]
    environment = {k: v for k, v in worker.environment.items() if k != "PAYHUB_PUBLIC_BASE_URL"}
    broken = FunctionProcess(worker.function, environment, worker.task_root, worker.opt, {}, rehearsal.pki.ca_file,
                             tmp_path, "arn:aws:lambda:ap-east-1:123456789012:function:broken")
    try:
        init = broken.wait_ready()
    finally:
        broken.stop()
    assert "PAYHUB_PUBLIC_BASE_URL is required on the dev stage" in init["init_error"]


# --- one payment, every function -------------------------------------------------------------------------------


def test_a_payment_from_creation_to_reconciliation_through_every_function(rehearsal: Rehearsal) -> None:
    from infra.local.provision.wechatpay import register

    r = rehearsal
    # The deploy guide's first steps: the first channel account, a merchant, an operator key.
    config, secrets = register(r.sandbox_url, account_id="wechat-rehearsal")
    account_file = r.hosts_file.parent / "account.json"
    account_file.write_text(json.dumps({"account": json.loads(config.model_dump_json()), "secrets": secrets}))
    assert r.operator("channel", "put", str(account_file))["secrets_updated"] is True
    webhook_url = f"https://{MERCHANT_HOST}/hooks/{uuid.uuid4().hex[:8]}"
    merchant = r.operator("merchant", "create", "--name", "Rehearsal Tea", "--webhook-url", webhook_url)
    r.receiver.trust(webhook_url, merchant["webhook_secret"])
    operator_key = r.operator("operator-key", "create", "--name", "rehearsal")["operator_key"]

    # Create (payments function), then the payer pays at the channel, which calls back at the custom domain.
    status, payment = r.call("POST", "/v1/payments", merchant["api_key"], {
        "merchant_order_no": f"o{uuid.uuid4().hex[:20]}", "amount": 2500, "currency": "CNY",
        "description": "rehearsal", "method": "wechat.native"})
    assert status == 201, payment
    # Paid yesterday (Beijing): reconciliation takes only a day that has ended, and this one can be run now.
    paid_on = datetime.now(BEIJING).date() - timedelta(days=1)
    paid_at = datetime.combine(paid_on, day_time(12), tzinfo=BEIJING).isoformat()
    pay = urllib3.request("POST", f"{r.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"],
                                                                        "paid_at": paid_at})
    assert pay.status == 200, pay.data
    _wait(lambda: r.call("GET", f"/v1/payments/{payment['id']}", merchant["api_key"])[1]["status"] == "succeeded")
    _wait(lambda: r.processes["CallbacksFunction"].invocations >= 1)  # the channel's callback, not a sync
    assert r.processes["StatusSyncWorker"].invocations == 0

    # An e-invoice for the payment (invoices function, invoice worker, the provider's callback at the custom
    # domain), set up the way docs/invoices.md says: an app at the provider, then `payhub invoicing put`.
    app = json.loads(urllib3.request("POST", f"{r.nuonuo_url}/_sandbox/apps", json={"tax_no": "91350100M000100Y43"}).data)
    invoicing_file = r.hosts_file.parent / "invoicing.json"
    invoicing_file.write_text(json.dumps({"settings": {
        "provider": "nuonuo", "api_base_url": r.nuonuo_url, "app_key": app["app_key"], "seller_tax_no": app["tax_no"],
        "seller_name": "Rehearsal Tea", "seller_address": "Fuzhou", "seller_phone": "0591-1",
        "seller_bank_account": "ICBC 1", "drawer": "Lin"},
        "secrets": {"app_secret": app["app_secret"], "access_token": app["access_token"]}}))
    assert r.operator("invoicing", "put", merchant["merchant_id"], str(invoicing_file))["secrets_updated"] is True
    status, invoice = r.call("POST", "/v1/invoices", merchant["api_key"], {
        "merchant_invoice_no": "R-1", "kind": "ordinary", "payment_ids": [payment["id"]],
        "buyer": {"type": "person", "name": "Zhang San"},
        "lines": [{"description": "tea", "tax_code": "1030201010000000000", "tax_rate": "0.13", "amount": 2500}]})
    assert status == 201, invoice

    def issued() -> bool:
        r.sources.drain()
        return bool(r.call("GET", f"/v1/invoices/{invoice['id']}", merchant["api_key"])[1]["status"] == "issued")

    _wait(issued, timeout_s=60)
    _wait(lambda: r.processes["InvoicesFunction"].invocations >= 3)  # create, the provider's callback, a read

    # Refund (refunds function, refund worker, the channel's refund callback), webhooks, sweeps; the refunded
    # part of the invoice is reversed by a red invoice.
    status, refund = r.call("POST", f"/v1/payments/{payment['id']}/refunds", merchant["api_key"], {
        "amount": 500, "merchant_refund_no": f"r{uuid.uuid4().hex[:20]}"})
    assert status in (201, 202), refund
    r.sources.drain()
    _wait(lambda: r.call("GET", f"/v1/refunds/{refund['id']}", merchant["api_key"])[1]["status"] == "succeeded")
    r.sources.drain()

    def reversed_() -> bool:
        r.sources.drain()
        return bool(r.call("GET", f"/v1/invoices/{invoice['id']}", merchant["api_key"])[1]["amount_reversed"] == 500)

    _wait(reversed_, timeout_s=60)
    received = {event["type"] for event in r.receiver.received}
    assert {"payment.succeeded", "refund.succeeded", "invoice.issued", "invoice.reversed"} <= received, received

    # E-bills (bills function): the paid payment's bill, with its PDF rendered and kept; and the monthly
    # statements' daily rule (statements function), which publishes last month's (none for this new merchant).
    status, bill = r.call("GET", f"/v1/payments/{payment['id']}/bill", merchant["api_key"])
    assert status == 200 and bill["id"] == f"bill_{payment['id']}", bill
    [statements_rule] = [rule for rule, _, function, _ in r.sources.schedules if function == "Statements"]
    assert "published" in r.sources.fire(statements_rule)

    # The hosted checkout (checkout function): a session, its page over the custom domain, the payer choosing
    # WeChat Pay through the page's CSRF-checked form (a channel call), then the status the page polls.
    status, session = r.call("POST", "/v1/checkout_sessions", merchant["api_key"], {
        "merchant_order_no": f"cs{uuid.uuid4().hex[:20]}", "amount": 900, "currency": "CNY",
        "description": "rehearsal checkout", "allowed_methods": ["wechat.native"],
        "return_url": f"https://{MERCHANT_HOST}/done"})
    assert status == 201 and session["url"].startswith(f"https://{DOMAIN}/checkout/"), session
    page_path = session["url"].removeprefix(f"https://{DOMAIN}")
    page = r.fetch("GET", page_path)
    assert page.status == 200 and "Secure" in page.headers["Set-Cookie"], page.data[:500]
    cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    token = cookie.split("=", 1)[1]
    chosen = r.fetch("POST", f"{page_path}/pay", body=f"csrf={token}&method=wechat.native", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Origin": f"https://{DOMAIN}"})
    assert chosen.status == 303, chosen.data[:500]
    polled = r.fetch("GET", f"{page_path}/status")
    assert polled.status == 200 and json.loads(polled.data)["state"] == "in_progress", polled.data

    # A callback the channel never sends: the status sync sweep and worker find the payment (first query 15 s
    # after creation, as deployed).
    status, lost = r.call("POST", "/v1/payments", merchant["api_key"], {
        "merchant_order_no": f"o{uuid.uuid4().hex[:20]}", "amount": 1200, "currency": "CNY",
        "description": "rehearsal, callback lost", "method": "wechat.native"})
    assert status == 201, lost
    armed = urllib3.request("POST", f"{r.sandbox_url}/_sandbox/faults", json={"mode": "no_callback"})
    assert armed.status == 200, armed.data
    assert urllib3.request("POST", f"{r.sandbox_url}/_sandbox/pay", json={"out_trade_no": lost["attempt_id"],
                                                                          "paid_at": paid_at}).status == 200

    def synced() -> bool:
        r.sources.drain()
        return bool(r.call("GET", f"/v1/payments/{lost['id']}", merchant["api_key"])[1]["status"] == "succeeded")

    _wait(synced, timeout_s=90)
    assert r.processes["StatusSyncWorker"].invocations >= 1

    # Reconciliation: the channel's daily rule fans out yesterday; an operator queues the day of the payment.
    [wechat_rule] = [rule for rule, _, _, payload in r.sources.schedules if payload == {"channel": "wechatpay"}]
    assert r.sources.fire(wechat_rule)["enqueued"] == ["wechat-rehearsal"]
    r.sources.drain()
    queue = r.template.physical[next(q for q, f, _ in r.sources.triggers if f == "ReconWorker")]
    r.session.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(
        {"account_id": "wechat-rehearsal", "day": paid_on.isoformat()}))
    r.sources.drain()
    status, runs = r.call("GET", "/v1/recon/runs?account=wechat-rehearsal", operator_key)
    assert status == 200, runs
    run = next(run for run in runs["data"] if run["day"] == paid_on.isoformat())
    assert run["status"] == "completed" and run["totals"]["matched"] == 2, run  # two payments (the refund is today's)

    # The daily archive sweep, one target per scan segment: everything here is minutes old, so it scans and keeps.
    archive_rules = {rule for rule, _, function, _ in r.sources.schedules if function == "ArchiveSweep"}
    swept = [answer for rule in sorted(archive_rules) for answer in r.sources.fire_all(rule)]
    assert swept and sum(s["scanned"] for s in swept) >= 1 and all(s["archived"] == {} for s in swept), swept

    # Money out: the merchant's settlement terms (the operator CLI), the daily settlement schedule fanning out to
    # the payouts queue, its worker settling the day (no bank account configured for this reserve: the transfer
    # waits, alerting), a batch validated by the payouts function, the transfers sweep reading every reserve.
    r.operator("settlement", "terms", merchant["merchant_id"], "--delay-days", "0", "--fee-bps", "30",
               "--reserve", "rsv-rehearsal", "--payee-account", "6225880100001234", "--payee-name", "Rehearsal Tea")
    [fanout_rule] = [rule for rule, _, function, _ in r.sources.schedules if function == "SettlementFanout"]
    assert r.sources.fire(fanout_rule)["enqueued"] >= 1
    r.sources.drain()
    from chalicelib.service.settlement import settlement_id

    settled = r.operator("settlement", "show", settlement_id(merchant["merchant_id"], "CNY", paid_on))
    assert settled["status"] == "instructed" and settled["net"] > 0, settled
    status, report = r.call("POST", "/v1/payout_batches/validate", merchant["api_key"], {
        "merchant_batch_no": "R1", "items": [{"item_ref": "s1", "amount": 100, "payee_account_no": "6225880100009876",
                                              "payee_name": "Supplier"}]})
    assert status == 200 and report["valid"] is True, report
    [sweep_rule] = [rule for rule, _, function, _ in r.sources.schedules if function == "TransfersSweep"]
    assert isinstance(r.sources.fire(sweep_rule), dict)

    # The operator API is a function of its own.
    status, audit = r.call("GET", "/v1/operator/audit", operator_key)
    assert status == 200 and audit["data"], audit

    # The same day again as ReconShards runs it (infra/recon_stack.py): plan, partition each statement part and
    # export file, match each shard, combine: the state machine's steps, each in its own function. The export
    # is the state table's items as a DynamoDB export to S3 writes them (one data file).
    dynamodb, s3 = r.session.client("dynamodb"), r.session.client("s3")
    state_table = r.template.physical[next(lid for lid in r.template.of_type("AWS::DynamoDB::Table")
                                           if lid.startswith("StateTable"))]
    items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=state_table)
             for item in page["Items"]]
    bucket = r.operator_env["PAYHUB_RECON_BUCKET"]
    export_key = "exports/rehearsal/data/part-0.json.gz"
    s3.put_object(Bucket=bucket, Key=export_key, Body=gzip.compress(
        "".join(json.dumps({"Item": item}) + "\n" for item in items).encode()))
    state = r.processes["ReconShardPlan"].invoke({
        "account_id": "wechat-rehearsal", "day": paid_on.isoformat(), "execution": "rehearsal-1",
        "export_keys": [export_key], "shards": 2})
    partitioned = [r.processes["ReconShardPartition"].invoke(part) for part in state["parts"]]
    for shard in state["shards"]:
        r.processes["ReconShardMatch"].invoke(shard)
    sharded = r.processes["ReconShardCombine"].invoke({**state, "partitioned": partitioned})
    assert sharded["status"] == "completed" and sharded["matched"] == run["totals"]["matched"], (sharded, run)

    idle = [lid for lid, p in r.processes.items() if p.invocations == 0]
    assert not idle, f"functions the rehearsal never invoked: {idle}"


def test_every_aws_call_is_allowed_by_the_function_role(rehearsal: Rehearsal) -> None:
    r = rehearsal
    assert all(p.invocations for p in r.processes.values()), "run the payment rehearsal first"
    kms, sqs, sm = (r.session.client(s) for s in ("kms", "sqs", "secretsmanager"))
    key_arns = {a["AliasName"]: kms.describe_key(KeyId=a["TargetKeyId"])["KeyMetadata"]["Arn"]
                for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith("alias/payhub-")}
    key_arns |= {k["KeyId"]: k["KeyArn"] for k in kms.list_keys()["Keys"]}
    queue_keys = {}
    for url in sqs.list_queues()["QueueUrls"]:
        key = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["KmsMasterKeyId"])["Attributes"].get("KmsMasterKeyId")
        if key:
            queue_keys[url.rsplit("/", 1)[-1]] = key
    secret_keys = {s["ARN"]: key_arns.get(s.get("KmsKeyId", ""), s.get("KmsKeyId", ""))
                   for s in sm.list_secrets()["SecretList"]}
    stage_key = key_arns["alias/payhub-dev"]
    assert secret_keys and set(secret_keys.values()) == {stage_key}, "secrets must be under the stage key"
    buckets = {r.operator_env["PAYHUB_RECON_BUCKET"]: stage_key, r.operator_env["PAYHUB_INVOICE_BUCKET"]: stage_key}
    keys = iam.Keys(REGION, key_arns, queue_keys, secret_keys, buckets)

    on_resources = iam.resource_policies(r.template)
    assert len(on_resources) >= 3 + 8 + 1  # three keys, eight queues, the bucket
    denied, checked = [], 0
    for logical_id, process in r.processes.items():
        calls = process.calls() + r.sources.service_calls.get(logical_id, [])
        requests = sorted({req for call in calls for req in iam.requests_for(call, keys)},
                          key=lambda q: (q.action, q.resource))
        if not requests:
            continue
        role = process.function.role
        decisions = iam.simulate(r.template.arns[role], r.template.role_policies(role), requests, on_resources)
        checked += len(requests)
        denied += [f"{logical_id}: {req} -> {decision}" for req, decision in zip(requests, decisions, strict=True)
                   if decision != "Allowed"]
    print(f"\nIAM: {checked} distinct requests of {len(r.processes)} functions decided by iam-simulate")
    assert checked > 0
    assert not denied, "calls the deployed roles would refuse:\n" + "\n".join(denied)


def test_the_simulator_refuses_what_a_role_does_not_grant(rehearsal: Rehearsal) -> None:
    """The check can fail: the webhook worker's role may not write the ledger, nor read channel secrets."""
    r = rehearsal
    role = r.processes["WebhookWorker"].function.role
    ledger = r.template.arns[next(lid for lid in r.template.of_type("AWS::DynamoDB::Table") if lid.startswith("Ledger"))]
    secret = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:payhub/dev/channels/wechat-rehearsal-AbCdEf"
    card_key = r.template.arns[next(lid for lid in r.template.of_type("AWS::KMS::Key") if lid.startswith("CardVault"))]
    decisions = iam.simulate(r.template.arns[role], r.template.role_policies(role), [
        iam.Request("dynamodb:PutItem", ledger), iam.Request("secretsmanager:GetSecretValue", secret),
        iam.Request("kms:Decrypt", card_key)], iam.resource_policies(r.template))
    assert decisions == ["ImplicitlyDenied", "ImplicitlyDenied", "ImplicitlyDenied"]
