"""Channel accounts are configuration: a new account goes live through ``payhub channel put`` alone, and a
rotated channel key keeps verifying what was signed under the old key for as long as both are held."""

from __future__ import annotations

import json

import requests

from chalicelib.storage import config_repo, state_repo
from infra.local.provision.wechatpay import register
from payhub_cli.main import main as payhub
from tests.helpers import make_merchant, wait_for


def _account_of(payment: dict) -> str:
    attempt = state_repo.get_attempt(payment["attempt_id"])
    assert attempt is not None
    return attempt.account_id


def _pay(stack, payment: dict, mchid: str) -> None:
    response = requests.post(f"{stack.sandbox_url}/_sandbox/pay",
                             json={"out_trade_no": payment["attempt_id"], "mchid": mchid}, timeout=10)
    assert response.status_code == 200, response.text


def _succeeded(client, payment: dict) -> dict:
    return wait_for(lambda: (p := client.get(f"/v1/payments/{payment['id']}"))["status"] == "succeeded" and p)


def test_a_new_account_takes_payments_by_configuration_alone(stack, tmp_path, capsys, drain):
    dedicated, other = make_merchant(stack), make_merchant(stack)
    before = dedicated.create_payment(method="wechat.native")
    assert _account_of(before) == stack.account_id  # the shared account, until the merchant has its own

    config, secrets = register(stack.sandbox_url, account_id="wechat-own-mchid", mchid="1900000333",
                               appid="wx3333333333333333", merchant_ids=(dedicated.merchant_id,))
    document = tmp_path / "account.json"
    document.write_text(json.dumps({"account": config.model_dump(mode="json"), "secrets": secrets}))
    assert payhub(["channel", "put", str(document)]) == 0
    capsys.readouterr()

    payment = dedicated.create_payment(method="wechat.native", amount=4321)
    assert _account_of(payment) == "wechat-own-mchid"
    order = requests.get(f"{stack.sandbox_url}/_sandbox/orders/{payment['attempt_id']}",
                         params={"mchid": "1900000333"}, timeout=10)
    assert order.status_code == 200  # the order was placed under the new merchant number
    _pay(stack, payment, "1900000333")
    assert _succeeded(dedicated, payment)["amount_captured"] == 4321
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))
    refund = dedicated.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 321, "merchant_refund_no": "r1"})
    assert refund.status_code == 201, refund.text
    drain()
    wait_for(lambda: dedicated.get(f"/v1/refunds/{refund.json()['id']}")["status"] == "succeeded", timeout_s=15)

    # Dedicated to one merchant: everyone else keeps the shared account.
    assert _account_of(other.create_payment(method="wechat.native")) == stack.account_id


def _late_pay(stack, payment: dict, mchid: str, delay_s: float) -> None:
    """WeChat signs this payment's callback now, with the key in force, and delivers it ``delay_s`` later."""
    fault = requests.post(f"{stack.sandbox_url}/_sandbox/faults", timeout=10, json={
        "mode": "late_callback", "delay_s": delay_s, "path_prefix": "/callbacks/wechatpay/wechat-rotating"})
    assert fault.status_code == 200, fault.text
    _pay(stack, payment, mchid)


def _deliveries(stack, payment: dict) -> list[dict]:
    answer = requests.get(f"{stack.sandbox_url}/_sandbox/deliveries",
                          params={"out_trade_no": payment["attempt_id"]}, timeout=10)
    return list(answer.json()["attempts"])


def test_a_rotated_platform_key_overlaps_with_the_old_one(stack, drain):
    client = make_merchant(stack)
    config, secrets = register(stack.sandbox_url, account_id="wechat-rotating", mchid="1900000444",
                               appid="wx4444444444444444", merchant_ids=(client.merchant_id,))
    config_repo.put_channel_account(config, secrets)
    old_keys = dict(secrets["platform_keys"])
    during_overlap = client.create_payment(method="wechat.native", amount=111)
    after_overlap = client.create_payment(method="wechat.native", amount=112)
    _late_pay(stack, during_overlap, "1900000444", 1.5)
    _late_pay(stack, after_overlap, "1900000444", 4.0)

    rotated = requests.post(f"{stack.sandbox_url}/_sandbox/platform/rotate", json={"mchid": "1900000444"}, timeout=10)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["public_key_id"] not in old_keys
    # The operator adds the new key and keeps the old one: both verify during the overlap.
    new_keys = {new["public_key_id"]: new["platform_public_key"], new["platform_serial"]: new["platform_public_key"]}
    config_repo.put_channel_account(config, {**secrets, "platform_keys": {**old_keys, **new_keys}})
    fresh = client.create_payment(method="wechat.native", amount=222)  # the channel answers under the new key
    _pay(stack, fresh, "1900000444")
    assert _succeeded(client, fresh)["amount_captured"] == 222
    assert _succeeded(client, during_overlap)["amount_captured"] == 111  # signed under the old key

    # The old key is dropped before the second late callback arrives: it is refused, and changes nothing.
    config_repo.put_channel_account(config, {**secrets, "platform_keys": new_keys})
    refused = wait_for(lambda: [d for d in _deliveries(stack, after_overlap) if d["status_code"]], timeout_s=10)
    assert refused[0]["status_code"] >= 400 and not refused[0]["delivered"]
    assert client.get(f"/v1/payments/{after_overlap['id']}")["status"] == "pending"
