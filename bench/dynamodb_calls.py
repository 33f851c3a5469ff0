"""AWS calls per operation: how many DynamoDB, SQS and Secrets Manager requests each hub operation makes.

The whole local stack runs in this process, as in tests/conftest.py: moto server (real boto3 wire path), the
WeChat Pay sandbox, the API served by Chalice's local server on a free port, and a merchant webhook receiver.
Every boto3 client the hub creates gets a ``before-call`` hook that counts calls, but only on a thread that
is currently running a measured operation:

* HTTP operations are attributed per request: Chalice's ``LocalGateway.handle_request`` is wrapped so the
  server thread handling a matching request (method + path prefix) is tagged with the operation;
* worker operations run the Lambda handler in this thread with an SQS event, tagged around the handler
  call only (receiving and deleting the message is the event source mapping's job, not the function's).

Workers, sweeps and polling never run while an operation is measured, so nothing else is counted.
Each operation runs twice in a row: "cold" right after emptying every in-process cache (config/secrets TTL
cache, queue URLs, boto3 clients), as in a fresh Lambda container, then "warm" on a second payment, with
the caches the first run filled (two payments go through the whole flow side by side).

    python bench/dynamodb_calls.py [--no-sites]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, table  # noqa: E402

from infra.local.moto import free_port  # noqa: E402

API_PORT = free_port()
os.environ["PAYHUB_STAGE"] = "local"
os.environ["PAYHUB_WEBHOOK_ALLOW_LOOPBACK"] = "true"  # the bench's webhook receiver listens on 127.0.0.1
os.environ["PAYHUB_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{API_PORT}"
os.environ["LOG_LEVEL"] = "WARNING"  # the hub's JSON logs would drown the tables
# PAYHUB_SECRETS_TTL_S stays at its deployed default (60 s): warm runs must see the caches a Lambda keeps.

import boto3  # noqa: E402
import requests  # noqa: E402

# Always shown; any other DynamoDB API that was called gets a column too.
DYNAMODB_COLUMNS = ("GetItem", "Query", "PutItem", "UpdateItem", "TransactWriteItems")
SERVICE_NAMES = {"dynamodb": "DynamoDB", "sqs": "SQS", "secrets-manager": "SecretsManager", "kms": "KMS"}
PROJECT_DIRS = (os.path.join(ROOT, "chalicelib"), os.path.join(ROOT, "functions"))


@dataclass
class Measured:
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (service, operation) -> calls
    sends: int = 0  # HTTP requests, > calls when botocore retried
    sites: Counter[str] = field(default_factory=Counter)  # "Service.Op <- call chain" -> calls
    requests: list[str] = field(default_factory=list)  # HTTP requests attributed to this operation


class CallCounter:
    """Counts AWS calls made on threads tagged with an operation label."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.results: dict[str, Measured] = defaultdict(Measured)
        self.http_routes: list[tuple[str, str, str]] = []  # (method, path prefix, label) for the open window
        self.http_done = threading.Condition()
        self.http_finished: Counter[str] = Counter()

    @contextlib.contextmanager
    def tagged(self, label: str) -> Iterator[None]:
        previous = getattr(self._local, "label", None)
        self._local.label = label
        try:
            yield
        finally:
            self._local.label = previous

    def before_call(self, event_name: str, **kwargs: Any) -> None:
        label = getattr(self._local, "label", None)
        if label is None:
            return
        _before_call, service, operation = event_name.split(".", 2)
        with self._lock:
            measured = self.results[label]
            measured.calls[(service, operation)] += 1
            measured.sites[f"{SERVICE_NAMES.get(service, service)}.{operation} <- {_call_chain()}"] += 1

    def before_send(self, **kwargs: Any) -> None:
        label = getattr(self._local, "label", None)
        if label is not None:
            with self._lock:
                self.results[label].sends += 1

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call.*.*", self.before_call)
        client.meta.events.register("before-send.*.*", self.before_send)

    def label_for_request(self, method: str, path: str) -> str | None:
        for route_method, prefix, label in self.http_routes:
            if method == route_method and path.split("?", 1)[0].startswith(prefix):
                return label
        return None

    def request_finished(self, label: str, method: str, path: str) -> None:
        with self.http_done:
            self.results[label].requests.append(f"{method} {path}")
            self.http_finished[label] += 1
            self.http_done.notify_all()

    def wait_for_requests(self, label: str, count: int, timeout_s: float = 15.0) -> None:
        with self.http_done:
            if not self.http_done.wait_for(lambda: self.http_finished[label] >= count, timeout=timeout_s):
                raise TimeoutError(f"{label}: expected {count} request(s), saw {self.http_finished[label]}")


def _call_chain(depth: int = 3) -> str:
    """The innermost project frames that led to the call, e.g. ``outcomes.apply_attempt_status:48``.

    Plumbing frames (the boto3 client wrapper, the TTL cache and its loader lambdas) are skipped so the
    chain names the code that decided to make the call.
    """
    frames = [f for f in traceback.extract_stack()
              if f.filename.startswith(PROJECT_DIRS) and f.name not in ("<lambda>", "load")
              and not f.filename.endswith(os.path.join("config", "cache.py"))]
    chain = [f"{os.path.splitext(os.path.basename(f.filename))[0]}.{f.name}:{f.lineno}" for f in frames[-depth:]]
    return " <- ".join(reversed(chain)) or "?"


COUNTER = CallCounter()


def install_hooks() -> None:
    """Hook every boto3 client created from now on (the hub creates its clients lazily, once per process)."""
    original = boto3.session.Session.client

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        created = original(self, *args, **kwargs)
        COUNTER.attach(created)
        return created

    boto3.session.Session.client = client  # type: ignore[method-assign]

    from chalice.local import ChaliceRequestHandler, LocalGateway

    handle_request = LocalGateway.handle_request

    def tagged_handle_request(self: LocalGateway, method: str, path: str, headers: Any, body: Any) -> Any:
        label = COUNTER.label_for_request(method, path)
        if label is None:
            return handle_request(self, method, path, headers, body)
        try:
            with COUNTER.tagged(label):
                return handle_request(self, method, path, headers, body)
        finally:
            COUNTER.request_finished(label, method, path)

    LocalGateway.handle_request = tagged_handle_request  # type: ignore[method-assign]
    ChaliceRequestHandler.log_message = lambda *_: None  # type: ignore[method-assign,assignment]


def reset_caches() -> None:
    """What a fresh Lambda container starts without."""
    from chalicelib.storage import aws, config_repo, outbox

    config_repo.invalidate_cache()
    outbox._QUEUE_URLS.clear()
    aws.reset_clients()


# --- the stack ------------------------------------------------------------------------------------------


@dataclass
class Stack:
    api_url: str
    sandbox_url: str
    api_key: str
    stop: Callable[[], None]


def start_stack() -> Stack:
    from chalice.cli.factory import CLIFactory
    from chalice.local import create_local_server

    from infra.local.bootstrap import create_stage_resources
    from infra.local.moto import start_moto
    from infra.local.provision.wechatpay import provision as provision_wechat_account
    from infra.local.webhook_receiver import WebhookReceiver
    from sandbox.wechatpay.server import WeChatPaySandbox

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    moto, _ = start_moto()
    create_stage_resources("local")
    sandbox = WeChatPaySandbox(retry_scale=0.002, refund_settle_s=REFUND_SETTLE_S)
    sandbox_url = sandbox.start()
    provision_wechat_account(sandbox_url)
    receiver = WebhookReceiver()
    receiver.start()
    factory = CLIFactory(project_dir=ROOT, environ=os.environ)
    server = create_local_server(factory.load_chalice_app(), factory.create_config_obj(chalice_stage_name="local"),
                                 "127.0.0.1", API_PORT)
    threading.Thread(target=server.server.serve_forever, daemon=True).start()  # quietly: no "Serving on"
    logging.getLogger().setLevel(logging.WARNING)

    from chalicelib.service.merchants import create_merchant

    url = receiver.endpoint(uuid.uuid4().hex[:12])
    created = create_merchant("Bench Merchant", webhook_url=url)
    receiver.trust(url, created.webhook_secret)

    def stop() -> None:
        server.shutdown()
        receiver.stop()
        sandbox.stop()
        moto.stop()

    return Stack(f"http://127.0.0.1:{API_PORT}", sandbox_url, created.api_key, stop)


def api(stack: Stack, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    if method == "POST":
        headers["Idempotency-Key"] = uuid.uuid4().hex
    response = requests.request(method, f"{stack.api_url}{path}", headers=headers, timeout=30,
                                data=json.dumps(body).encode() if body is not None else None)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    return dict(response.json())


@contextlib.contextmanager
def http_window(*routes: tuple[str, str, str]) -> Iterator[None]:
    COUNTER.http_routes = list(routes)
    try:
        yield
    finally:
        COUNTER.http_routes = []


# --- SQS, driven the way Lambda's event source mapping would -------------------------------------------


def receive(queue_key: str, max_messages: int = 10) -> tuple[str, str, list[dict[str, Any]]]:
    from chalicelib.config.settings import settings
    from chalicelib.storage.aws import client

    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=settings().names.queue(queue_key))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=1,
                                   AttributeNames=["All"]).get("Messages", [])
    return url, arn, messages


def run_consumer(label: str, queue_key: str, handler_path: str, accept: Callable[[dict[str, Any]], bool]) -> None:
    """Hand one message that ``accept``s to the queue's Lambda handler, counting only the handler's calls."""
    from chalicelib.config.settings import settings
    from chalicelib.storage.aws import client

    sqs = client("sqs")
    url, arn, messages = receive(queue_key)
    chosen = next((m for m in messages if accept(json.loads(m["Body"]))), None)
    for other in messages:
        if other is not chosen:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=other["ReceiptHandle"], VisibilityTimeout=0)
    if chosen is None:
        raise RuntimeError(f"{label}: no matching message on {queue_key} (saw {len(messages)})")
    event = {"Records": [{
        "messageId": chosen["MessageId"], "receiptHandle": chosen["ReceiptHandle"], "body": chosen["Body"],
        "attributes": chosen.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": chosen["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": settings().region,
    }]}
    module, name = handler_path.rsplit(".", 1)
    handler = getattr(importlib.import_module(module), name)
    with COUNTER.tagged(label):
        result = handler(event, None) or {}
    if result.get("batchItemFailures"):
        raise RuntimeError(f"{label}: the handler failed the message: {result}")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=chosen["ReceiptHandle"])


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


# --- the operations ---------------------------------------------------------------------------------------

OPERATIONS = (
    "create payment (POST /v1/payments)",
    "payment callback (POST /callbacks/...)",
    "create refund (POST .../refunds)",
    "refund worker (1 message)",
    "refund callback (POST /callbacks/...)",
    "webhook delivery (1 message)",
    "outbox relay (1 stream batch)",
)
RELAYED: dict[str, int] = {}  # run -> outbox events the relay sent in its batch


@dataclass
class Flow:
    """One payment taken through every operation; two flows run side by side (cold, then warm)."""

    run: str
    payment: dict[str, Any] = field(default_factory=dict)
    refund: dict[str, Any] = field(default_factory=dict)

    def label(self, operation: int) -> str:
        return f"{OPERATIONS[operation]} [{self.run}]"


def create_payment(stack: Stack, flow: Flow) -> None:
    with http_window(("POST", "/v1/payments", flow.label(0))):
        flow.payment = api(stack, "POST", "/v1/payments", {
            "merchant_order_no": f"bench{uuid.uuid4().hex[:16]}", "amount": 8888, "currency": "CNY",
            "description": "bench order", "method": "wechat.native"})


def payment_callback(stack: Stack, flow: Flow) -> None:
    from chalicelib.storage import state_repo

    with http_window(("POST", "/callbacks/", flow.label(1))):
        paid = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": flow.payment["attempt_id"]},
                             timeout=10)
        paid.raise_for_status()
        COUNTER.wait_for_requests(flow.label(1), 1)  # the sandbox delivers the signed callback asynchronously
    wait_until(lambda: (p := state_repo.get_payment(flow.payment["id"])) and p.status.value == "succeeded",
               "the payment to succeed")


def create_refund(stack: Stack, flow: Flow) -> None:
    path = f"/v1/payments/{flow.payment['id']}/refunds"
    with http_window(("POST", path, flow.label(2))):
        flow.refund = api(stack, "POST", path, {"amount": 888, "merchant_refund_no": f"r-{flow.run}", "reason": "bench"})


def refund_worker(stack: Stack, flow: Flow) -> None:
    # The sandbox answers PROCESSING and calls back refund_settle_s later: measured as its own operation.
    run_consumer(flow.label(3), "refunds", "functions.refund_worker.handler",
                 lambda body: body.get("object_id") == flow.refund["id"])


def refund_callback(stack: Stack, flow: Flow) -> None:
    from chalicelib.domain.states import RefundState
    from chalicelib.storage import state_repo

    with http_window(("POST", "/callbacks/", flow.label(4))):
        COUNTER.wait_for_requests(flow.label(4), 1, timeout_s=REFUND_SETTLE_S + 10)
    wait_until(lambda: (r := state_repo.get_refund(flow.refund["id"])) and r.status is RefundState.SUCCEEDED,
               "the refund to succeed")


def webhook_delivery(stack: Stack, flow: Flow) -> None:
    from chalicelib.domain.ids import event_id

    wanted = event_id(flow.payment["id"], "payment.succeeded")
    run_consumer(flow.label(5), "webhooks", "functions.webhook_worker.handler",
                 lambda body: body.get("event_id") == wanted)


def relay_outbox(stack: Stack, flow: Flow) -> None:
    """The stream relay's Lambda handler over what the stream holds (the poll itself is Lambda's, not counted)."""
    import functions.outbox_relay as relay_function
    from chalicelib.storage import outbox
    from infra.local import workers

    real_handler, real_relay = relay_function.handler, outbox.relay

    def counted(event: dict[str, Any], context: Any) -> Any:
        with COUNTER.tagged(flow.label(6)):
            return real_handler(event, context)

    def relay(records: list[dict[str, Any]]) -> str | None:
        RELAYED[flow.run] = RELAYED.get(flow.run, 0) + sum(
            1 for r in records if r.get("eventName") == "INSERT" and "outbox_shard" in r["dynamodb"].get("NewImage", {}))
        return real_relay(records)

    relay_function.handler, outbox.relay = counted, relay  # type: ignore[assignment]
    try:
        while workers.poll_streams():
            pass
    finally:
        relay_function.handler, outbox.relay = real_handler, real_relay  # type: ignore[assignment]


REFUND_SETTLE_S = 1.5  # longer than a cold refund worker takes, so its callback never races the worker


def measure_all(stack: Stack) -> None:
    """Each operation: empty the caches, run it on the cold flow, then at once on the warm flow.

    A refund callback cannot be told from another by its path, so the two refunds are settled one at a time:
    each worker run is followed by its own callback before the next refund is sent.
    """
    cold, warm = Flow("cold"), Flow("warm")
    for step in (create_payment, payment_callback, create_refund):
        reset_caches()
        step(stack, cold)
        step(stack, warm)
    reset_caches()
    relay_outbox(stack, cold)  # both payments' events and both refunds' commands, in one or two stream batches
    reset_caches()
    refund_worker(stack, cold)
    reset_caches()  # the callbacks function is another container: it starts cold too
    refund_callback(stack, cold)
    relay_outbox(stack, warm)  # warm: what the cold refund's worker and callback committed
    refund_worker(stack, warm)
    refund_callback(stack, warm)
    reset_caches()
    webhook_delivery(stack, cold)
    webhook_delivery(stack, warm)


def drain_everything() -> None:
    """Before measuring: let every consumer and schedule run (uncounted), so queues start empty."""
    from infra.local.workers import drain

    drain()


# --- report ---------------------------------------------------------------------------------------------


def report(show_sites: bool) -> None:
    rows = []
    retried = []
    seen = {name for m in COUNTER.results.values() for (svc, name) in m.calls if svc == "dynamodb"}
    columns = (*DYNAMODB_COLUMNS, *sorted(seen - set(DYNAMODB_COLUMNS)))
    for op in OPERATIONS:
        for run in ("cold", "warm"):
            measured = COUNTER.results[f"{op} [{run}]"]
            calls = measured.calls
            ddb = [calls[("dynamodb", name)] for name in columns]
            sqs = {name: n for (svc, name), n in calls.items() if svc == "sqs"}
            secrets = sum(n for (svc, _), n in calls.items() if svc == "secrets-manager")
            others = {f"{svc}.{name}": n for (svc, name), n in calls.items()
                      if svc not in ("dynamodb", "sqs", "secrets-manager")}
            rows.append([
                op if run == "cold" else "", run, *(str(n or "·") for n in ddb), str(sum(ddb)),
                ", ".join(f"{name} {n}" for name, n in sorted(sqs.items())) or "·", str(secrets or "·"),
                ", ".join(f"{k} {v}" for k, v in sorted(others.items())) or "·",
            ])
            if measured.sends != sum(calls.values()):
                retried.append(f"{op} [{run}]: {sum(calls.values())} calls, {measured.sends} HTTP sends")
    print("## AWS calls per operation (in-process stack: moto server, WeChat Pay sandbox, chalice local)\n")
    print(table(["operation", "run", *columns, "DDB total", "SQS", "Secrets", "other"], rows, align_left=2))
    print("\ncold: first run after emptying in-process caches (config/secrets TTL cache, queue URLs, boto3 clients);"
          "\nwarm: the same operation again at once, on a second payment. '·' = none."
          "\nCounts are API calls (botocore before-call) made by the hub only: HTTP requests are attributed by route,"
          "\nworkers by their handler call.")
    print(f"The outbox relay's batches held {RELAYED.get('cold', 0)} (cold) and {RELAYED.get('warm', 0)} (warm) "
          "outbox events; nothing is published on a request path (docs/outbox.md).")
    if retried:
        print("retries seen (calls != HTTP sends): " + "; ".join(retried))
    if show_sites:
        print("\nCall sites: innermost project frames of every call in the warm run, then what the cold run added")
        for op in OPERATIONS:
            warm_sites = COUNTER.results[f"{op} [warm]"].sites
            cold_extra = COUNTER.results[f"{op} [cold]"].sites - warm_sites
            print(f"\n{op}")
            for site, n in sorted(warm_sites.items()):
                print(f"  {n} x {site}")
            for site, n in sorted(cold_extra.items()):
                print(f"  cold only: {n} x {site}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sites", action="store_true", help="do not list the call sites of the warm runs")
    args = parser.parse_args(argv)
    begun = time.perf_counter()
    install_hooks()
    stack = start_stack()
    try:
        drain_everything()
        measure_all(stack)
    finally:
        stack.stop()
    report(not args.no_sites)
    print(f"\n(dynamodb_calls.py took {time.perf_counter() - begun:.1f} s, stack start included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
