"""The hub under test: moto server (real boto3 wire path), the WeChat Pay sandbox, the API served over HTTP
by Chalice's local server, a merchant webhook endpoint, and the SQS consumers driven the way Lambda would.

Everything listens on 127.0.0.1 ports chosen at random. Environment is fixed before the hub is imported,
because its settings are read once per process (as in a Lambda).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra.local.moto import free_port
from tests.chromium import browser  # noqa: F401 - fixture: the process's one Chromium, for every browser test

API_PORT = free_port()
os.environ["PAYHUB_STAGE"] = "local"
# The test webhook receiver listens on 127.0.0.1; the local stage reaches loopback only when told so.
os.environ["PAYHUB_WEBHOOK_ALLOW_LOOPBACK"] = "true"
os.environ["PAYHUB_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{API_PORT}"
os.environ["PAYHUB_SECRETS_TTL_S"] = "0"  # tests rotate keys and flip settings; always read fresh
logging.getLogger("werkzeug").setLevel(logging.WARNING)

# The hub's embedded metrics go to stdout (CloudWatch reads them there); in tests the API runs in this process,
# where stdout is what the CLI tests read, so they go to a debug logger unless a test collects them
# (``published_metrics``).
from chalicelib import observability  # noqa: E402

observability.set_metric_sink(lambda line: logging.getLogger("payhub.metrics").debug("%s", line))


@dataclass
class Stack:
    api_url: str
    sandbox: Any
    sandbox_url: str
    receiver: Any
    account_id: str


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    from infra.local.api_server import create_api_server
    from infra.local.bootstrap import create_stage_resources
    from infra.local.moto import start_moto
    from infra.local.provision.wechatpay import provision as provision_wechat_account
    from infra.local.webhook_receiver import WebhookReceiver
    from sandbox.wechatpay.server import WeChatPaySandbox

    moto, _ = start_moto()
    from chalicelib.storage.aws import reset_clients

    reset_clients()  # a unit test may have made a client before the endpoint existed
    create_stage_resources("local")
    sandbox = WeChatPaySandbox(retry_scale=0.002, refund_settle_s=0.0)
    sandbox_url = sandbox.start()
    account = provision_wechat_account(sandbox_url)
    receiver = WebhookReceiver()
    receiver.start()
    server = create_api_server("127.0.0.1", API_PORT)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Stack(f"http://127.0.0.1:{API_PORT}", sandbox, sandbox_url, receiver, account.account_id)
    server.shutdown()
    receiver.stop()
    sandbox.stop()
    moto.stop()


@pytest.fixture
def merchant(stack: Stack) -> Any:
    """A fresh merchant per test (so tests never see each other's objects), webhooks to the test endpoint."""
    from tests.helpers import make_merchant

    return make_merchant(stack)


@pytest.fixture
def drain() -> Any:
    """Run the SQS consumers and schedules until the queues are empty, as Lambda would."""
    from infra.local.workers import drain as run

    return run


@dataclass
class LocalAccount:
    channel: str
    sandbox: Any
    sandbox_url: str
    account_id: str


_SANDBOXES: dict[str, tuple[Any, str]] = {}


@pytest.fixture(scope="session")
def channel_account(stack: Stack) -> Iterator[Any]:
    """``channel_account("alipay", **options)``: that channel's sandbox (started once per session, with fast
    retries) and a freshly provisioned account on it, as ``make run`` does. Options go to the provisioner
    (``account_id`` defaults to the channel's demo account; provisioning the same id again rotates its keys)."""
    from infra.local.provision import LOCAL_CHANNELS

    def make(channel: str, **options: Any) -> LocalAccount:
        local = LOCAL_CHANNELS[channel]
        if channel == "wechatpay":
            box, url = stack.sandbox, stack.sandbox_url
        elif channel in _SANDBOXES:
            box, url = _SANDBOXES[channel]
        else:
            box = local.new_sandbox(retry_scale=0.002)
            url = box.start()
            _SANDBOXES[channel] = (box, url)
        config = local.provision(url, **options)
        return LocalAccount(channel, box, url, config.account_id)

    yield make
    for box, _ in _SANDBOXES.values():
        box.stop()
    _SANDBOXES.clear()


class PublishedMetrics(list[dict[str, Any]]):
    """Every embedded-metric-format document the hub wrote while the fixture was active, decoded."""

    def values(self, namespace: str, metric: str, **dimensions: str) -> list[float]:
        found = []
        for document in self:
            for directive in document["_aws"]["CloudWatchMetrics"]:
                names = {m["Name"] for m in directive["Metrics"]}
                if directive["Namespace"] != namespace or metric not in names:
                    continue
                if any(set(dims) == set(dimensions) and all(document[d] == dimensions[d] for d in dims)
                       for dims in directive["Dimensions"]):
                    found.append(document[metric])
        return found


@pytest.fixture
def published_metrics() -> Iterator[PublishedMetrics]:
    import json

    from chalicelib import observability

    published = PublishedMetrics()
    previous = observability.set_metric_sink(lambda line: published.append(json.loads(line)))
    try:
        yield published
    finally:
        observability.set_metric_sink(previous)
