"""Every channel's statement plugs into T+1 reconciliation through its adapter alone: a day of payments and
a refund, paid at the channel's sandbox, reconciles clean against the statement in that channel's own format;
a changed amount on the statement is then a difference left to a person, and a statement that does not parse
fails the run and changes nothing."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone

import pytest
import requests

from chalicelib.recon.run import run_day
from chalicelib.storage import config_repo
from payhub_cli.main import main as payhub
from tests.helpers import morning_after, wait_for

BEIJING = timezone(timedelta(hours=8))
NO_POOL = timedelta(0)  # nothing waits in the cross-day pool, whatever the time of day the suite runs

CHANNELS = {
    # channel: (payment body, a channel merchant id of its own, so the statement holds only this test's money;
    # Alipay bills are per app, so the account gets its own app id too)
    "alipay": ({"method": "alipay.qr"}, lambda: "2088" + "".join(secrets.choice("0123456789") for _ in range(12))),
    "unionpay": ({"method": "unionpay.quickpass"}, lambda: "7772" + "".join(secrets.choice("0123456789") for _ in range(11))),
    "ecny": ({"method": "ecny.wallet"}, lambda: "EC" + "".join(secrets.choice("0123456789") for _ in range(13))),
    "stripe": ({"method": "stripe.card", "currency": "USD", "payment_method": "pm_card_threeDSecure2Required",
                "return_url": "https://shop.example/back"}, lambda: "acct_" + secrets.token_hex(8)),
    "paypal": ({"method": "paypal.wallet", "currency": "USD", "return_url": "https://shop.example/back"},
               lambda: "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(13))),
}


STATES_NET = {"alipay", "ecny", "stripe"}  # their statements state the day's net settlement


def _items(run_id: str) -> list[dict]:
    from chalicelib.recon import repo

    return list(repo.items(run_id).values())


def _status(merchant, payment: dict) -> str:
    return str(merchant.get(f"/v1/payments/{payment['id']}")["status"])


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_a_day_on_the_channel_reconciles_then_a_changed_row_is_a_difference(stack, channel_account, merchant,
                                                                             capsys, drain, channel):
    body, merchant_id = CHANNELS[channel]
    own = {"appid": "2021" + "".join(secrets.choice("0123456789") for _ in range(12))} if channel == "alipay" else {}
    local = channel_account(channel, account_id=f"{channel}-recon", merchant_id=merchant_id(),
                            merchant_ids=(merchant.merchant_id,), **own)
    payments = []
    for amount in (1200, 3400):
        payment = merchant.create_payment(amount=amount, **body)
        assert payhub(["sandbox", "pay", payment["id"]]) == 0, capsys.readouterr().err
        drain()
        wait_for(lambda p=payment: _status(merchant, p) == "succeeded", timeout_s=15)
        payments.append(payment)
    refund = merchant.call("POST", f"/v1/payments/{payments[1]['id']}/refunds",
                           {"amount": 400, "merchant_refund_no": "r1"})
    assert refund.status_code == 201, refund.text
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund.json()['id']}")["status"] == "succeeded", timeout_s=20)
    capsys.readouterr()

    day = datetime.now(BEIJING).date()
    clean = run_day(local.account_id, day, now=morning_after(day), near_midnight=NO_POOL)
    assert clean.ok, clean.failure_reason
    assert clean.unresolved == 0, json.dumps(clean.run.get("items_by_kind"))

    sandbox = local.sandbox_url
    try:
        changed = requests.post(f"{sandbox}/_sandbox/statement-faults", timeout=10, json={
            "day": day.isoformat(), "kind": "amount", "out_trade_no": payments[0]["attempt_id"], "delta": 100})
        assert changed.status_code == 200, changed.text
        differing = run_day(local.account_id, day, now=morning_after(day), near_midnight=NO_POOL)
        assert differing.ok, differing.failure_reason
        # The row's amount differs, and so the statement's settled total no longer equals the ledger's; a channel
        # that states its net settlement states it from the changed rows, so that differs from the ledger too.
        expected = {"amount": 1, "ledger_mismatch": 1} | ({"settlement_mismatch": 1} if channel in STATES_NET else {})
        assert differing.run["items_by_kind"] == expected, differing.run["items_by_kind"]
        assert differing.unresolved == len(expected)
        assert _status(merchant, payments[0]) == "succeeded"  # an amount difference is never changed automatically

        if channel == "ecny":  # the bank keeps 3.21 back without a row saying so: only its stated net shows it
            requests.delete(f"{sandbox}/_sandbox/statement-faults", timeout=10)
            short = requests.post(f"{sandbox}/_sandbox/statement-faults", timeout=10,
                                  json={"day": day.isoformat(), "kind": "withhold", "amount": 321})
            assert short.status_code == 200, short.text
            withheld = run_day(local.account_id, day, now=morning_after(day), near_midnight=NO_POOL)
            open_items = [i for i in _items(withheld.run_id) if i["status"] == "needs_review"]
            assert [i["kind"] for i in open_items] == ["settlement_mismatch"] and withheld.unresolved == 1, open_items
            [item] = open_items
            assert item["amount_minor"] == 321 and item["status"] == "needs_review"
            assert item["reasons"][0]["field"] == "net_settlement"

        requests.delete(f"{sandbox}/_sandbox/statement-faults", timeout=10)
        corrupt = requests.post(f"{sandbox}/_sandbox/statement-faults", timeout=10,
                                json={"day": day.isoformat(), "kind": "corrupt"})
        assert corrupt.status_code == 200, corrupt.text
        broken = run_day(local.account_id, day, now=morning_after(day), near_midnight=NO_POOL)
        assert not broken.ok and "malformed statement" in (broken.failure_reason or "")
    finally:
        requests.delete(f"{sandbox}/_sandbox/statement-faults", timeout=10)
        config = config_repo.channel_account(local.account_id)
        assert config is not None
        config_repo.put_channel_account(config.config.model_copy(update={"enabled": False}), None)
