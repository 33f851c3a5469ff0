"""A new method of a protocol the hub already speaks goes live by configuration alone: a method document and an
account that lists it, both put with the CLI; no code, no deploy. Paid and refunded through the Alipay sandbox."""

from __future__ import annotations

import json

from chalicelib.storage import config_repo, state_repo
from payhub_cli.main import main as payhub
from tests.helpers import make_merchant, wait_for


def test_a_method_added_by_configuration_takes_payments(stack, channel_account, tmp_path, capsys, drain):
    merchant = make_merchant(stack)
    alipay = channel_account("alipay", account_id="alipay-by-config", merchant_ids=(merchant.merchant_id,))
    refused = merchant.call("POST", "/v1/payments", _order("alipay.pc_form"))
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "method"  # not a method yet

    definition = tmp_path / "method.json"
    definition.write_text(json.dumps({"method": "alipay.pc_form", "protocol_method": "alipay.page",
                                      "settings": {"page_action": "form_post"},
                                      "title": {"en": "Alipay on a computer", "zh": "支付宝电脑支付"}}))
    assert payhub(["method", "put", str(definition)]) == 0
    config = config_repo.channel_account_document(alipay.account_id)
    assert config is not None
    account = tmp_path / "account.json"
    account.write_text(json.dumps({"account": {**config, "methods": [*config["methods"], "alipay.pc_form"]}}))
    assert payhub(["channel", "put", str(account)]) == 0  # secrets omitted: kept
    capsys.readouterr()
    assert payhub(["method", "list"]) == 0
    listed = {m["method"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["alipay.pc_form"] == {"method": "alipay.pc_form", "protocol_method": "alipay.page",
                                        "channel": "alipay", "source": "configuration", "enabled": True}

    created = merchant.call("POST", "/v1/payments", _order("alipay.pc_form"))
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["method"] == "alipay.pc_form"
    assert payment["action"]["type"] == "form_post"  # the method's settings shape the order placed
    attempt = state_repo.get_attempt(payment["attempt_id"])
    assert attempt is not None and attempt.method == "alipay.page" and attempt.account_id == alipay.account_id
    plain = merchant.call("POST", "/v1/payments", _order("alipay.page")).json()
    assert plain["action"]["type"] == "redirect_url"  # the account's own setting for the protocol method

    assert payhub(["sandbox", "pay", payment["id"], "--wait", "5"]) == 0
    drain()
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded", timeout_s=15)
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 500, "merchant_refund_no": "r1"})
    assert refund.status_code == 201, refund.text
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund.json()['id']}")["status"] == "succeeded", timeout_s=15)


def test_a_method_definition_must_name_a_protocol_method(stack, tmp_path, capsys):
    definition = tmp_path / "method.json"
    definition.write_text(json.dumps({"method": "alipay.nothing", "protocol_method": "alipay.teleport"}))
    assert payhub(["method", "put", str(definition)]) == 1
    assert "unknown protocol method 'alipay.teleport'" in capsys.readouterr().err
    definition.write_text(json.dumps({"method": "Alipay Thing", "protocol_method": "alipay.page"}))
    assert payhub(["method", "put", str(definition)]) == 1
    assert "method: String should match pattern" in capsys.readouterr().err


def _order(method: str) -> dict:
    import uuid

    return {"merchant_order_no": f"m{uuid.uuid4().hex[:20]}", "amount": 1288, "currency": "CNY",
            "description": "configured method", "method": method, "return_url": "https://shop.example/back"}
