"""Requests per second against the local HTTP servers, with and without TCP_NODELAY, in the same run.

Python's HTTP servers write a response's headers and body in two sends; with Nagle's algorithm on, the body
waits for the client's delayed ACK (~40 ms on Linux). Every server the project runs locally now sets
TCP_NODELAY on the connections it accepts (sandbox/common/nodelay.py). This script starts, in this process,
each server twice, as shipped (the anchor) and as the project runs it, and times the same request on both:

* **API**: ``GET /v1/payments/{id}`` of a real payment of the demo merchant, on Chalice's local server
  (``infra/local/api_server.py``), behind it moto, the WeChat Pay sandbox and the hub's code;
* **sandbox**: ``GET /_sandbox/platform`` on the WeChat Pay sandbox (``sandbox/common/httpserver.py``);
* **moto**: DynamoDB ``GetItem`` through boto3, against moto's werkzeug server (``infra/local/moto.py``) and
  against werkzeug's plain threaded server serving the same moto backends.

Two clients: a new connection per request, as the tests' ``MerchantClient`` (``requests.request``) does, and a
kept-alive session, as the hub's channel clients and boto3 do. Each cell runs for ``--seconds`` (or at most
``--max-requests``); the two variants alternate, so a noisy moment on a shared machine hits both.

    python bench/local_http.py [--seconds 2] [--max-requests 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import fmt, median, table  # noqa: E402


def rate(call: Callable[[], Any], seconds: float, max_requests: int) -> float:
    call()  # connect (and warm) outside the timing
    count = 0
    started = time.perf_counter()
    while count < max_requests and time.perf_counter() - started < seconds:
        call()
        count += 1
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--max-requests", type=int, default=3000, help="requests per measurement at most")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the median is printed")
    args = parser.parse_args()
    started = time.perf_counter()

    os.environ["PAYHUB_STAGE"] = "local"
    os.environ["PAYHUB_WEBHOOK_ALLOW_LOOPBACK"] = "true"
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    from infra.local.moto import free_port

    api_port, plain_api_port = free_port(), free_port()
    os.environ["PAYHUB_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{api_port}"

    from http.server import ThreadingHTTPServer

    import boto3
    import requests
    from chalice.local import LocalDevServer
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import ThreadedWSGIServer

    from chalicelib.config.names import StageNames
    from infra.local.api_server import create_api_server
    from infra.local.bootstrap import create_stage_resources
    from infra.local.demo import create_demo_merchant
    from infra.local.moto import start_moto
    from infra.local.provision.wechatpay import provision
    from sandbox.wechatpay.server import WeChatPaySandbox

    moto, endpoint = start_moto()
    create_stage_resources("local")

    # moto as shipped: werkzeug's own threaded server on the same (process-global) moto backends.
    plain_moto = ThreadedWSGIServer("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app),
                                    MotoRequestHandler)
    threading.Thread(target=plain_moto.serve_forever, daemon=True).start()
    plain_endpoint = f"http://127.0.0.1:{plain_moto.server_address[1]}"

    sandbox = WeChatPaySandbox()
    sandbox_url = sandbox.start()
    plain_sandbox = WeChatPaySandbox()
    plain_sandbox._http.server_class = ThreadingHTTPServer  # the anchor: the stdlib server as shipped
    plain_sandbox_url = plain_sandbox.start()
    provision(sandbox_url)

    api = create_api_server("127.0.0.1", api_port)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the hub's logging setup, run by the app, lets it talk
    # The anchor: Chalice's LocalDevServer as ``create_local_server`` builds it, on the app already loaded.
    plain_api = LocalDevServer(api.app_object, create_api_server_config(), "127.0.0.1", plain_api_port)
    for server in (api.server, plain_api.server):
        threading.Thread(target=server.serve_forever, daemon=True).start()

    demo = create_demo_merchant(None)
    headers = {"Authorization": f"Bearer {demo.api_key}", "Content-Type": "application/json"}
    created = requests.post(f"http://127.0.0.1:{api_port}/v1/payments", headers={**headers, "Idempotency-Key": "bench"},
                            json={"merchant_order_no": "bench-1", "amount": 1000, "currency": "CNY",
                                  "description": "bench", "method": "wechat.native"}, timeout=30)
    created.raise_for_status()
    payment_path = f"/v1/payments/{created.json()['id']}"

    state_table = StageNames("local").state_table
    key = {"pk": {"S": "BENCH#local_http"}, "sk": {"S": "ITEM"}}
    boto3.client("dynamodb", endpoint_url=endpoint, **_credentials()).put_item(
        TableName=state_table, Item={**key, "payload": {"S": "x" * 200}})

    def http_get(url: str, session: requests.Session | None, extra: dict[str, str] | None = None) -> Callable[[], Any]:
        def call() -> None:
            response = (session or requests).get(url, headers=extra or {}, timeout=30)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {response.status_code}")
        return call

    def get_item(url: str) -> Callable[[], Any]:
        dynamodb = boto3.client("dynamodb", endpoint_url=url, **_credentials())

        def call() -> None:
            dynamodb.get_item(TableName=state_table, Key=key)
        return call

    targets: list[tuple[str, str, Callable[[bool], Callable[[], Any]]]] = [
        ("API GET /v1/payments/{id}", "new connection",
         lambda fixed: http_get(f"http://127.0.0.1:{api_port if fixed else plain_api_port}{payment_path}", None, headers)),
        ("API GET /v1/payments/{id}", "keep-alive",
         lambda fixed: http_get(f"http://127.0.0.1:{api_port if fixed else plain_api_port}{payment_path}",
                                requests.Session(), headers)),
        ("sandbox GET /_sandbox/platform", "new connection",
         lambda fixed: http_get(f"{sandbox_url if fixed else plain_sandbox_url}/_sandbox/platform", None)),
        ("sandbox GET /_sandbox/platform", "keep-alive",
         lambda fixed: http_get(f"{sandbox_url if fixed else plain_sandbox_url}/_sandbox/platform", requests.Session())),
        ("moto DynamoDB GetItem (boto3)", "keep-alive", lambda fixed: get_item(endpoint if fixed else plain_endpoint)),
    ]
    # Quiet while measuring: the hub logs each request at INFO and http.server prints an access line to stderr.
    logging.disable(logging.INFO)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    rows = []
    with contextlib.redirect_stderr(devnull):
        for name, client_kind, make in targets:
            plain_rates, fixed_rates = [], []
            for _ in range(args.rounds):
                plain_rates.append(rate(make(False), args.seconds, args.max_requests))
                fixed_rates.append(rate(make(True), args.seconds, args.max_requests))
            plain, fixed = median(plain_rates), median(fixed_rates)
            rows.append([name, client_kind, fmt(plain), fmt(fixed), f"{fixed / plain:.1f}x",
                         fmt(1000 / plain, 2), fmt(1000 / fixed, 2)])
    devnull.close()

    print("## Local HTTP servers: requests/s as shipped vs with TCP_NODELAY (same run, alternating)\n")
    print(table(["request", "client", "as shipped req/s", "TCP_NODELAY req/s", "speed-up", "ms/req before",
                 "ms/req after"], rows, align_left=2))
    print(f"\nmedian of {args.rounds} alternating rounds of {args.seconds:g} s (at most {args.max_requests:,} "
          "requests) each; one client thread.")
    for server in (api.server, plain_api.server):
        server.shutdown()
    plain_moto.shutdown()
    sandbox.stop()
    plain_sandbox.stop()
    moto.stop()
    print(f"\nlocal_http.py took {time.perf_counter() - started:.1f} s")
    return 0


def create_api_server_config() -> Any:
    from chalice.cli.factory import CLIFactory

    from infra.local.api_server import ROOT

    return CLIFactory(project_dir=str(ROOT), environ=os.environ).create_config_obj(chalice_stage_name="local")


def _credentials() -> dict[str, str]:
    from infra.local.moto import FAKE_CREDENTIALS

    return {"aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            "region_name": FAKE_CREDENTIALS["AWS_REGION"]}


if __name__ == "__main__":
    raise SystemExit(main())
