"""The operator CLI, the national-crypto (SM2/SM4) variant end to end, and secrets kept out of logs."""

from __future__ import annotations

import json
import logging

import requests

from chalicelib.storage import config_repo
from infra.local.provision.wechatpay import provision as provision_wechat_account
from payhub_cli.main import main as payhub
from tests.helpers import MerchantClient, make_merchant, wait_for


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = payhub(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_merchant_create_prints_credentials_once_and_they_work(stack, capsys):
    code, out, _ = run_cli(capsys, "merchant", "create", "--name", "Tea House", "--late-success", "accept")
    assert code == 0
    created = json.loads(out)
    assert created["api_key"].startswith("sk_local_") and created["webhook_secret"].startswith("whsec_")
    client = MerchantClient(stack.api_url, created["merchant_id"], created["api_key"], created["webhook_secret"])
    assert client.call("GET", "/v1/events").status_code == 200
    code, out, _ = run_cli(capsys, "merchant", "list")
    listed = {m["merchant_id"]: m for m in json.loads(out)}
    assert listed[created["merchant_id"]]["late_success_policy"] == "accept"
    assert created["api_key"] not in out


def test_channel_put_and_list(stack, capsys, tmp_path):
    document = {"account": {"account_id": "wechat-second", "channel": "wechatpay", "enabled": False,
                            "methods": ["wechat.native"], "api_base_url": stack.sandbox_url,
                            "settings": {"mchid": "1900000999", "appid": "wx0000000000000001",
                                         "merchant_serial_no": "ABC"}},
                "secrets": {"apiv3_key": "x" * 32, "merchant_private_key": "placeholder", "platform_keys": {}}}
    path = tmp_path / "account.json"
    path.write_text(json.dumps(document))
    code, out, _ = run_cli(capsys, "channel", "put", str(path))
    assert code == 0 and json.loads(out)["secrets_updated"] is True
    code, out, _ = run_cli(capsys, "channel", "list")
    accounts = {a["account_id"]: a for a in json.loads(out)}
    assert accounts["wechat-second"]["enabled"] is False
    assert "x" * 32 not in out


def test_cli_errors_are_one_line_and_non_zero(stack, capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"account": {"account_id": "Bad Id!", "channel": "wechatpay"}}))
    for args in (["channel", "put", str(bad)], ["channel", "put", str(tmp_path / "missing.json")],
                 ["sandbox", "pay", "pay_doesnotexist"]):
        code, out, err = run_cli(capsys, *args)
        assert code != 0, args
        assert out == "" and err.startswith("payhub: ") and err.count("\n") == 1, (args, err)


def test_sandbox_pay_completes_a_payment(stack, merchant, capsys, drain):
    payment = merchant.create_payment(amount=1888)
    code, out, _ = run_cli(capsys, "sandbox", "pay", payment["id"])
    assert code == 0 and json.loads(out)["attempt_id"] == payment["attempt_id"]
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")


def test_sm2_account_takes_a_payment_end_to_end(stack, merchant, drain):
    """WECHATPAY2-SM2-WITH-SM3 requests, SM2-signed responses and callbacks, AEAD_SM4_GCM resources."""
    account = provision_wechat_account(stack.sandbox_url, account_id="wechat-sm2", sign_type="SM2",
                                       mchid="1900000222", appid="wx2222222222222222", priority=1)
    try:
        payment = merchant.create_payment(amount=321, method="wechat.jsapi", payer={"openid": "o-sm2"})
        order = requests.get(f"{stack.sandbox_url}/_sandbox/orders/{payment['attempt_id']}",
                             params={"mchid": "1900000222"}, timeout=10)
        assert order.status_code == 200
        requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"],
                                                                 "mchid": "1900000222"}, timeout=10)
        wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
        refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                               {"amount": 321, "merchant_refund_no": "sm2"}).json()
        drain()
        wait_for(lambda: merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "succeeded", timeout_s=15)
    finally:
        config_repo.put_channel_account(account.model_copy(update={"enabled": False}), None)


def test_no_secret_reaches_a_log(stack, caplog, drain):
    caplog.set_level(logging.DEBUG)
    merchant = make_merchant(stack)
    payment = merchant.create_payment(amount=77)
    requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]}, timeout=10)
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 77, "merchant_refund_no": "s"})
    drain()
    secrets = config_repo.get_secret(f"payhub/local/channels/{stack.account_id}")
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert merchant.api_key not in logged
    assert merchant.webhook_secret not in logged
    assert merchant.webhook_secret.removeprefix("whsec_") not in logged
    assert secrets["apiv3_key"] not in logged
    assert "PRIVATE KEY" not in logged
    assert "Authorization" not in logged and "WECHATPAY2-SHA256-RSA2048 mchid" not in logged
