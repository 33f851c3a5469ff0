"""paypal-server-sdk (PayPal's official Python server SDK) as the client of the PayPal sandbox.

The SDK installs a top-level ``tests`` package, a regular package that would win over this project's ``tests``
(a namespace package) wherever it sits on ``sys.path``. So it is never installed into ``.venv``: ``make venv``
puts it in ``.venv/paypal-sdk`` and ``paypal_sdk_driver.py`` runs it in a subprocess that sees only that directory
and the standard library. The guard test below fails if the SDK, or any other regular ``tests`` package, ever
reaches the project's own environment.

What the SDK covers: OAuth client credentials, create order (with ``PayPal-Request-Id`` idempotency), get order,
capture, get capture, refund, get refund, and its error type for an unknown order. It has no call to close an
order (PayPal has none: an uncaptured order expires) and no webhook verification; webhooks are checked here with
PayPal's documented postback, ``POST /v1/notifications/verify-webhook-signature``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.paypal.server import PayPalSandbox
from tests.conformance.receiver import Callback, Receiver

REPO = Path(__file__).resolve().parents[2]
SDK_DIR = REPO / ".venv" / "paypal-sdk"
DRIVER = Path(__file__).with_name("paypal_sdk_driver.py")


def test_the_projects_tests_package_is_not_shadowed() -> None:
    import tests

    assert {str(Path(p).resolve()) for p in tests.__path__} == {str(REPO / "tests")}
    assert importlib.util.find_spec("paypalserversdk") is None, "paypal-server-sdk must stay out of .venv"
    for entry in sys.path:
        assert not (Path(entry or ".") / "tests" / "__init__.py").exists(), f"a regular tests package in {entry}"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[PayPalSandbox]:
    box = PayPalSandbox(retry_scale=0.01)
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    box = Receiver((200, b""))
    yield box
    box.stop()


def run_driver(job: dict[str, Any]) -> dict[str, Any]:
    assert (SDK_DIR / "paypalserversdk").is_dir(), f"{SDK_DIR} is missing: run `make venv`"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-S", str(DRIVER)], input=json.dumps(job), capture_output=True, text=True,
                          env={"PYTHONPATH": str(SDK_DIR), "PATH": os.environ.get("PATH", "")}, timeout=120,
                          cwd=str(SDK_DIR), check=False)
    assert done.returncode == 0, f"driver failed after {time.monotonic() - started:.1f} s:\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def token(base_url: str, client_id: str, secret: str) -> str:
    answer = requests.post(f"{base_url}/v1/oauth2/token", data="grant_type=client_credentials", auth=(client_id, secret),
                           headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def postback_verifies(base_url: str, bearer: str, webhook_id: str, callback: Callback) -> str:
    headers = {k.lower(): v for k, v in callback.headers.items()}
    answer = requests.post(f"{base_url}/v1/notifications/verify-webhook-signature", json={
        "auth_algo": headers["paypal-auth-algo"], "cert_url": headers["paypal-cert-url"],
        "transmission_id": headers["paypal-transmission-id"], "transmission_sig": headers["paypal-transmission-sig"],
        "transmission_time": headers["paypal-transmission-time"], "webhook_id": webhook_id,
        "webhook_event": json.loads(callback.body)}, headers={"Authorization": f"Bearer {bearer}"}, timeout=5)
    answer.raise_for_status()
    return str(answer.json()["verification_status"])


def test_order_capture_refund_through_the_sdk_with_webhooks_verified(sandbox: PayPalSandbox,
                                                                      receiver: Receiver) -> None:
    merchant = requests.post(f"{sandbox.base_url}/_sandbox/merchants", json={}, timeout=5).json()
    bearer = token(sandbox.base_url, merchant["client_id"], merchant["client_secret"])
    path = f"/paypal/{merchant['client_id']}"
    hook = requests.post(f"{sandbox.base_url}/v1/notifications/webhooks", json={
        "url": receiver.url + path, "event_types": [{"name": "*"}]}, headers={"Authorization": f"Bearer {bearer}"},
        timeout=5)
    assert hook.status_code == 201, hook.text
    custom_id = "att_pp_" + secrets.token_hex(6)

    out = run_driver({"base_url": sandbox.base_url, "client_id": merchant["client_id"],
                      "client_secret": merchant["client_secret"], "custom_id": custom_id})

    assert out["create"]["status_code"] == 201 and out["create"]["status"] == "CREATED"
    assert {"approve", "capture", "self"} <= set(out["create"]["links"])
    assert out["create_again_id"] == out["create"]["id"]  # same PayPal-Request-Id: the same order
    assert (out["get_before"], out["approved"], out["get_after_approval"]) == ("CREATED", "APPROVED", "APPROVED")
    assert out["capture"]["status_code"] == 201 and out["capture"]["order_status"] == "COMPLETED"
    assert (out["capture"]["status"], out["capture"]["value"], out["capture"]["custom_id"]) == (
        "COMPLETED", "25.00", custom_id)
    assert out["get_capture"] == "COMPLETED"
    assert out["refund"]["status_code"] == 201 and out["refund"]["value"] == "10.00"
    assert out["get_refund"] == "COMPLETED"
    assert out["unknown_order"] == {"status_code": 404, "name": "RESOURCE_NOT_FOUND"}

    for event_type in ("CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.REFUNDED"):
        [callback] = receiver.wait_for(lambda c, t=event_type: c.path == path and json.loads(c.body)["event_type"] == t)
        assert postback_verifies(sandbox.base_url, bearer, hook.json()["id"], callback) == "SUCCESS", event_type
        tampered = Callback(callback.path, callback.headers, callback.body.replace(b"25.00", b"25.01").replace(
            b"10.00", b"10.01"))
        assert tampered.body != callback.body
        assert postback_verifies(sandbox.base_url, bearer, hook.json()["id"], tampered) == "FAILURE", event_type
