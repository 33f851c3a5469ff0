"""A new protocol is a plugin: the toy channel (tests/plugins/toy_channel, its own pyproject) is pip-installed
into a directory of its own, as a Lambda layer would hold it, and registers itself through its entry point in
the ``payhub.channels`` group. Nothing under chalicelib/ names it; the hub routes to it, creates, takes its
signed callback, and refunds through it."""

from __future__ import annotations

import importlib
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.channels import registry
from chalicelib.config.settings import settings
from chalicelib.storage import config_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from payhub_cli.main import main as payhub
from tests.helpers import make_merchant, wait_for

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugins" / "toy_channel"


@pytest.fixture
def toy_layer(tmp_path):
    """``pip install`` the plugin into a directory (a layer's python/) and put that directory on the path."""
    layer = tmp_path / "layer" / "python"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(layer), str(PLUGIN)], check=True, capture_output=True, timeout=300)
    sys.path.insert(0, str(layer))
    importlib.invalidate_caches()
    registry.forget_plugins()
    try:
        yield layer
    finally:
        sys.path.remove(str(layer))
        for name in [n for n in sys.modules if n == "toy_channel" or n.startswith("toy_channel.")]:
            del sys.modules[name]
        registry.forget_plugins()


def test_a_protocol_plugin_installed_from_outside_the_core_takes_payments(stack, toy_layer, tmp_path, capsys,
                                                                           drain):
    merchant = make_merchant(stack)
    assert "toy" in registry.channels() and registry.channel_for_method("toy.wallet") == "toy"
    core = [p for p in (ROOT / "chalicelib").rglob("*.py") if re.search(r"\btoy", p.read_text())]
    assert core == []  # the core names no such channel

    from toy_channel.sandbox import ToySandbox  # from the installed layer, not from the source tree

    assert str(toy_layer) in sys.modules["toy_channel"].__file__
    key = secrets.token_hex(16)
    sandbox = ToySandbox("TOY-MCH-1", key)
    sandbox.start()
    account_id = f"toy-{secrets.token_hex(3)}"
    document = tmp_path / "account.json"
    document.write_text(json.dumps({"account": {
        "account_id": account_id, "channel": "toy", "methods": ["toy.wallet"], "currencies": ["CNY"],
        "api_base_url": sandbox.url, "merchant_ids": [merchant.merchant_id], "settings": {"merchant_id": "TOY-MCH-1"}},
        "secrets": {"signing_key": key}}))
    try:
        assert payhub(["channel", "put", str(document)]) == 0, capsys.readouterr().err
        payment = merchant.create_payment(method="toy.wallet", amount=4200)
        assert payment["action"] == {"type": "qr_code", "code_url": f"toy://pay/{payment['attempt_id']}"}
        assert sandbox.orders[payment["attempt_id"]]["amount"] == 4200

        assert sandbox.pay(payment["attempt_id"]) == 200  # the signed callback, verified by the plugin
        paid = wait_for(lambda: (p := merchant.get(f"/v1/payments/{payment['id']}"))["status"] == "succeeded" and p)
        assert paid["amount_captured"] == 4200

        refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                               {"amount": 1200, "merchant_refund_no": "toy-r1"})
        assert refund.status_code == 201, refund.text
        drain()
        wait_for(lambda: merchant.get(f"/v1/refunds/{refund.json()['id']}")["status"] == "succeeded", timeout_s=15)
        assert [r["amount"] for r in sandbox.refunds.values()] == [1200]

        import requests

        forged = requests.post(f"{stack.api_url}/callbacks/toy/{account_id}", timeout=10,
                               data=json.dumps({"order_id": payment["attempt_id"]}),
                               headers={"content-type": "application/json", "x-toy-signature": "0" * 64})
        assert forged.status_code >= 400  # a callback the plugin cannot verify changes nothing
    finally:
        sandbox.stop()
        _forget(account_id)


def test_without_the_plugin_its_method_and_channel_are_unknown(stack):
    registry.forget_plugins()
    merchant = make_merchant(stack)
    refused = merchant.call("POST", "/v1/payments", {"merchant_order_no": "toy1", "amount": 100, "currency": "CNY",
                                                     "description": "x", "method": "toy.wallet"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "method"
    assert not registry.is_channel("toy")


def _forget(account_id: str) -> None:
    """The toy channel leaves with its layer: nothing of it may stay due for status sync in later tests."""
    dynamodb = client("dynamodb")
    found = dynamodb.scan(TableName=state_repo.state_table(), FilterExpression="account_id = :a AND sk = :s",
                          ExpressionAttributeValues={":a": {"S": account_id}, ":s": {"S": "ATTEMPT"}})
    for item in found["Items"]:
        dynamodb.update_item(TableName=state_repo.state_table(),
                             Key=to_item(records.attempt_key(item["attempt_id"]["S"])),
                             UpdateExpression="REMOVE sync_shard, sync_due_at")
    dynamodb.delete_item(TableName=settings().names.config_table,
                         Key=to_item({"pk": "CHANNEL_ACCOUNTS", "sk": account_id}))
    config_repo.invalidate_cache()
