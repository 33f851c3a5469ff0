"""The reserve account's bank statement reconciled against the ledger, against the CMB bank sandbox: a channel's
settlement arriving in the reserve is booked from the statement, a settlement paid out is found under its
reference, and what does not agree (a payment the bank never made, a transfer the ledger does not know, money
no one has applied) becomes an item, with the day's movement compared on both sides."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib.banks.accounts import bank_for
from chalicelib.banks.base import BankEntry, BankStatement
from chalicelib.domain.clock import beijing_today
from chalicelib.domain.errors import DayNotOver
from chalicelib.recon import reserve
from chalicelib.service import audit, settlement
from chalicelib.storage import config_repo
from infra.local.provision.cmbbank import provision
from sandbox.cmbbank.server import CMBBankSandbox
from tests.e2e.money_kit import Shop, yesterday
from tests.helpers import morning_after

OPERATOR = audit.Actor("cli", "ops-reserve", "ops-reserve")
WECHAT_PAYING_ACCOUNT = "9550880000000001"  # the channel's own account, as our statement shows its settlements


@pytest.fixture
def reserve_day(stack: Any, drain: Any) -> Iterator[tuple[CMBBankSandbox, str, Shop]]:
    box = CMBBankSandbox(settle_s=0.0)
    box.start()
    reserve_id = f"rsv-cmb-{secrets.token_hex(3)}"
    provision(box.base_url, reserve_id=reserve_id, uid=f"N{secrets.randbelow(10**9):09d}",
              account_no=f"7559{secrets.randbelow(10**11):011d}", opening_balance="200000.00")
    found = config_repo.channel_account(stack.account_id)
    assert found is not None
    config_repo.put_channel_account(found.config.model_copy(update={"settings": {
        **found.config.settings, "reserve_id": reserve_id, "settlement_account_no": WECHAT_PAYING_ACCOUNT}}), None)
    shop = Shop(stack, drain)
    settlement.set_terms(OPERATOR, shop.merchant_id, {
        "delay_days": 0, "minimum_minor": 0, "fee_bps": 0, "reserve_id": reserve_id,
        "payee_account_no": "6225880199990001", "payee_name": "茶叶店"})
    shop.paid(30_000, on=yesterday())
    yield box, reserve_id, shop
    config_repo.put_channel_account(found.config, None)
    box.stop()


def test_a_day_of_the_reserve_reconciles_and_each_disagreement_is_an_item(reserve_day: Any) -> None:
    box, reserve_id, shop = reserve_day
    today = beijing_today()
    # The channel settles into the reserve (a credit from its own account), the merchant is settled and paid out.
    credited = requests.post(f"{box.base_url}/_sandbox/credits", timeout=10, json={
        "to": bank_for(reserve_id)[1].account_no, "payer_account_no": WECHAT_PAYING_ACCOUNT,
        "payer_name": "财付通支付科技有限公司", "amount": "298.20", "postscript": "微信支付结算"})
    assert credited.status_code == 200, credited.text
    record = settlement.settle_day(shop.merchant_id, "CNY", yesterday())
    assert settlement.send(record["settlement_id"], bank_for(reserve_id)) == "paid"
    taken: list[BankEntry] = []

    def take(reserve: str, line: BankEntry) -> str:  # stands in for the transfers-in service: books nothing
        taken.append(line)
        return "unknown"

    with pytest.raises(DayNotOver):
        reserve.reconcile(reserve_id, today, apply_credit=take)
    from chalicelib.service import transfers_in

    swept = transfers_in.sweep_statement(reserve_id, today)  # the intraday sweep leaves the channel's credit alone
    assert swept == {"channel_settlement": 1}
    run = reserve.reconcile(reserve_id, today, apply_credit=take, now=morning_after(today))
    assert run["items"] == [] and taken == [], run["items"]
    assert run["totals"]["channel_settlements"] == 1 and run["totals"]["debits"] == 1
    assert run["totals"]["bank_movement"] == 29_820 - 30_000 == run["totals"]["ledger_movement"]
    again = reserve.reconcile(reserve_id, today, apply_credit=take, now=morning_after(today))
    assert again["items"] == [] and again["totals"]["ledger_movement"] == run["totals"]["ledger_movement"]  # once

    # A payer business's transfer nobody applies, and a statement missing our payment: both are items.
    requests.post(f"{box.base_url}/_sandbox/credits", timeout=10, json={
        "to": bank_for(reserve_id)[1].account_no, "payer_account_no": "1100220033004400",
        "payer_name": "某某贸易有限公司", "amount": "50.00", "postscript": "货款"}).raise_for_status()
    adapter, account = bank_for(reserve_id)
    statement = adapter.statement(account, today)
    doctored = BankStatement(statement.account_no, statement.day, statement.opening_balance,
                             statement.closing_balance, tuple(e for e in statement.entries if e.direction == "credit"))
    odd = reserve.reconcile(reserve_id, today, statement=doctored, apply_credit=take, now=morning_after(today))
    kinds = sorted(item["kind"] for item in odd["items"])
    assert kinds == ["missing_debit", "reserve_mismatch"], odd["items"]
    assert [line.amount.minor for line in taken] == [5_000]
    mismatch = next(item for item in odd["items"] if item["kind"] == "reserve_mismatch")
    assert mismatch["amount_minor"] == 5_000  # applied by no one: the ledger's reserve lacks exactly it
    assert reserve.get_run(reserve_id, today)["unresolved"] == 2


def test_a_payer_businesss_credit_is_handed_to_transfers_in_once_and_the_day_agrees(reserve_day: Any) -> None:
    from chalicelib.service import transfers_in

    box, reserve_id, _ = reserve_day
    today = beijing_today()
    credit = requests.post(f"{box.base_url}/_sandbox/credits", timeout=10, json={
        "to": bank_for(reserve_id)[1].account_no, "payer_account_no": "1100220033004411",
        "payer_name": "闽江茶业有限公司", "amount": "88.00", "postscript": "no code"})
    credit.raise_for_status()
    first = reserve.reconcile(reserve_id, today, now=morning_after(today))
    assert first["items"] == [] and first["totals"]["transfers_in"] == 1, first["items"]
    receipt = transfers_in.get_receipt(transfers_in.receipt_id(reserve_id, credit.json()["refnbr"]))
    assert receipt["state"] != "applied" and receipt["unapplied"] == 8_800  # unknown: waits for a person
    again = reserve.reconcile(reserve_id, today, now=morning_after(today))  # the credit is not booked twice
    assert again["items"] == [] and again["totals"]["ledger_movement"] == first["totals"]["ledger_movement"]


def test_a_channel_that_converted_other_currencies_is_left_to_its_payout_report(stack: Any, reserve_day: Any) -> None:
    box, reserve_id, _ = reserve_day
    today = beijing_today()
    found = config_repo.channel_account(stack.account_id)
    assert found is not None
    usd = found.config.model_copy(update={"account_id": f"usd-{secrets.token_hex(3)}", "currencies": ("USD",),
                                          "enabled": False, "settings": {
                                              **found.config.settings, "reserve_id": reserve_id,
                                              "settlement_account_no": "9550880000000099"}})
    config_repo.put_channel_account(usd, None)
    requests.post(f"{box.base_url}/_sandbox/credits", timeout=10, json={
        "to": bank_for(reserve_id)[1].account_no, "payer_account_no": "9550880000000099",
        "payer_name": "Stripe Payments Singapore", "amount": "712.34", "postscript": "payout"}).raise_for_status()
    run = reserve.reconcile(reserve_id, today, now=morning_after(today))
    [item] = [i for i in run["items"] if i["kind"] == "channel_conversion"]
    assert item["amount_minor"] == 71_234 and "book-conversion" in item["detail"]
    # nothing was booked against a clearing account the channel does not hold: the reserve's day differs by it
    assert [i["kind"] for i in run["items"]] == ["channel_conversion", "reserve_mismatch"]
