"""``payhub sandbox pay PAYMENT_ID`` plays the payer on every channel, each channel's own steps included:
the SMS code and the 3-D Secure challenge of a UnionPay credit card, Stripe's 3-D Secure under manual
confirmation, PayPal's approval followed by the hub's capture, the browser form of the UnionPay gateway."""

from __future__ import annotations

import json

import pytest

from payhub_cli.main import main as payhub
from tests.helpers import wait_for

CHALLENGE_CARD = {"number": "6258000000000022", "exp_month": 12, "exp_year": 2029, "phone": "13900139000"}

CASES = [
    ("wechatpay", {"method": "wechat.native"}, []),
    ("alipay", {"method": "alipay.qr"}, []),
    ("alipay", {"method": "alipay.page", "return_url": "https://shop.example/back"}, []),
    ("unionpay", {"method": "unionpay.gateway", "return_url": "https://shop.example/back"}, []),
    ("unionpay", {"method": "unionpay.quickpass"}, []),
    ("unionpay", {"method": "unionpay.card", "card": CHALLENGE_CARD}, ["--cvv", "123"]),
    ("ecny", {"method": "ecny.wallet"}, []),
    ("stripe", {"method": "stripe.card", "currency": "USD", "payment_method": "pm_card_threeDSecure2Required",
                "return_url": "https://shop.example/back"}, []),
    ("paypal", {"method": "paypal.wallet", "currency": "USD", "return_url": "https://shop.example/back"}, []),
]


@pytest.mark.parametrize(("channel", "body", "flags"), CASES, ids=[c[1]["method"] for c in CASES])
def test_sandbox_pay_completes_a_payment_on_every_channel(stack, channel_account, merchant, capsys, drain,
                                                          channel, body, flags):
    if channel != "wechatpay":
        channel_account(channel, account_id=f"{channel}-cli", merchant_ids=(merchant.merchant_id,))
    payment = merchant.create_payment(amount=2600, **body)
    code = payhub(["sandbox", "pay", payment["id"], *flags])
    out, err = capsys.readouterr()
    assert code == 0, err
    answer = json.loads(out)
    assert answer["channel"] == channel and answer["attempt_id"] == payment["attempt_id"]
    if body["method"] == "unionpay.card":
        assert answer["steps"][0] == "sms_code_confirmed"
    drain()  # PayPal: the approval's capture runs on the status-sync worker
    paid = wait_for(lambda: (p := merchant.get(f"/v1/payments/{payment['id']}"))["status"] == "succeeded" and p,
                    timeout_s=15)
    assert paid["amount_captured"] == 2600
