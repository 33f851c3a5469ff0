"""A WeChat Pay payment's whole life over HTTP: create → pay at the sandbox → signed callback → webhook →
refund → refund callback → webhook, with the ledger balanced at the end."""

from __future__ import annotations

import requests

from chalicelib.domain.ledger import clearing_account, merchant_payable_account
from chalicelib.storage import ledger_repo
from tests.helpers import wait_for


def pay(stack, attempt_id: str, **extra) -> None:
    response = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": attempt_id, **extra}, timeout=10)
    assert response.status_code == 200, response.text


def test_native_payment_from_creation_to_refund(stack, merchant, drain):
    payment = merchant.create_payment(method="wechat.native", amount=8888)
    assert payment["status"] == "pending"
    assert payment["action"]["type"] == "qr_code"
    assert payment["action"]["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")

    pay(stack, payment["attempt_id"])
    paid = wait_for(lambda: (p := merchant.get(f"/v1/payments/{payment['id']}"))["status"] == "succeeded" and p)
    assert paid["amount_captured"] == 8888

    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))

    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 888, "merchant_refund_no": "r1", "reason": "partial"})
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    drain()
    assert wait_for(lambda: "refund.succeeded" in stack.receiver.types_for(refund_id))
    after = merchant.get(f"/v1/payments/{payment['id']}")
    assert (after["amount_refunded"], after["amount_refund_pending"]) == (888, 0)

    payable = merchant_payable_account(merchant.merchant_id, "CNY")
    assert ledger_repo.balance(payable) == -(8888 - 888)
    assert ledger_repo.balance(clearing_account(stack.account_id, "CNY")) >= 8888 - 888
