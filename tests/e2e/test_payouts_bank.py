"""Batch payouts end to end against the CMB bank sandbox, over the signed and encrypted bank-direct protocol: the
merchant API creates a batch, the payouts queue's worker sends each item to the bank, one payee's bank refuses,
the merchant retries the failed item alone, an operator approves a large batch first, and the bank's own
statement shows exactly the money the ledger says left the reserve."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib.banks.accounts import bank_for
from chalicelib.domain import ledger
from chalicelib.domain.clock import beijing_today
from chalicelib.service import audit, payouts, settlement
from chalicelib.service.operators import create_operator_key
from infra.local.provision.cmbbank import provision
from sandbox.cmbbank.server import CMBBankSandbox
from tests.e2e.money_kit import Shop, yesterday

OPERATOR = audit.Actor("cli", "ops-bank-test", "ops-bank-test")


@pytest.fixture(scope="module")
def bank(stack: Any) -> Iterator[tuple[CMBBankSandbox, str]]:
    box = CMBBankSandbox(settle_s=0.0, page_size=20)
    box.start()
    reserve_id = f"rsv-cmb-{secrets.token_hex(3)}"
    provision(box.base_url, reserve_id=reserve_id, uid=f"N{secrets.randbelow(10**9):09d}",
              account_no=f"7559{secrets.randbelow(10**11):011d}", opening_balance="5000000.00")
    yield box, reserve_id
    box.stop()


@pytest.fixture
def shop(stack: Any, drain: Any, bank: tuple[CMBBankSandbox, str]) -> Shop:
    shop = Shop(stack, drain)
    settlement.set_terms(OPERATOR, shop.merchant_id, {"delay_days": 0, "minimum_minor": 0, "fee_bps": 0,
                                                      "reserve_id": bank[1]})
    shop.paid(300_000, on=yesterday())
    return shop


def rows(count: int, amount: int) -> list[dict[str, Any]]:
    return [{"item_ref": f"sup-{n}", "amount": amount, "payee_account_no": f"6214{secrets.randbelow(10**12):012d}",
             "payee_name": f"供应商{n}", "payee_bank_name": "中国工商银行福州分行", "payee_bank_code": "102391000017",
             "purpose": "货款"} for n in range(1, count + 1)]


def test_a_batch_goes_to_the_bank_a_refused_item_is_retried_alone_and_the_banks_statement_agrees(
        shop: Shop, bank: tuple[CMBBankSandbox, str]) -> None:
    box, reserve_id = bank
    items = rows(4, 12_500)
    refused = requests.post(f"{box.base_url}/_sandbox/payee-faults", timeout=10, json={
        "payee_account_no": items[2]["payee_account_no"], "outcome": "fail", "reason": "收款账户已销户"})
    assert refused.status_code == 200, refused.text
    created = shop.client.call("POST", "/v1/payout_batches", {"merchant_batch_no": "BANK-1", "items": items})
    assert created.status_code == 201, created.text
    batch = created.json()
    shop.drain()
    after = payouts.get_batch(batch["id"])
    assert after["state"] == "completed" and after["items_by_state"] == {"succeeded": 3, "failed": 1}
    failed = shop.client.get(f"/v1/payout_batches/{batch['id']}/items?state=failed")["data"]
    assert [(i["item_ref"], i["failure_reason"]) for i in failed] == [("sup-3", "收款账户已销户")]
    assert shop.payable == 300_000 - 37_500  # the refused item's money is the merchant's again

    retried = shop.client.call("POST", f"/v1/payout_batches/{batch['id']}/retry")
    assert retried.status_code == 200, retried.text
    shop.drain()
    assert payouts.get_batch(batch["id"])["items_by_state"] == {"succeeded": 4}
    assert shop.payable == 250_000

    # The bank's statement of today: our four successful transfers, each under the reference the ledger used.
    adapter, account = bank_for(reserve_id)
    statement = adapter.statement(account, beijing_today())
    ours = {e.transfer_reference: e.amount.minor for e in statement.entries if e.direction == "debit"}
    paid = {i["reference"]: i["amount"] for i in payouts.list_items(batch["id"], None)["data"]}
    assert {ref: ours[ref] for ref in paid} == paid
    reserve_out = -shop.balance(ledger.reserve_account(reserve_id, "CNY"))
    assert reserve_out >= 50_000 and sum(paid.values()) == 50_000


def test_a_large_batch_waits_for_an_operator_on_the_operator_api(shop: Shop, bank: tuple[CMBBankSandbox, str]) -> None:
    payouts.set_policy(OPERATOR, shop.merchant_id, {"single_threshold_minor": 100_000, "batch_threshold_minor": 10**9,
                                                    "daily_limit_minor": 10**9})
    batch = shop.client.call("POST", "/v1/payout_batches", {"merchant_batch_no": "BANK-2",
                                                            "items": rows(1, 150_000)}).json()
    assert batch["state"] == "awaiting_approval"
    shop.drain()
    assert payouts.get_batch(batch["id"])["items_by_state"] == {"pending": 1}  # nothing sent while it waits
    key = create_operator_key("payout checker").api_key
    url = f"{shop.stack.api_url}/v1/operator/payout_batches/{batch['id']}/approve"
    missing = requests.post(url, json={}, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "reason"
    approved = requests.post(url, json={"reason": "contract 2026-88 checked"}, timeout=10,
                             headers={"Authorization": f"Bearer {key}"})
    assert approved.status_code == 200, approved.text
    shop.drain()
    assert payouts.get_batch(batch["id"])["items_by_state"] == {"succeeded": 1}
    assert shop.payable == 150_000


def test_the_daily_schedule_settles_each_merchant_and_the_bank_pays_it_from_the_reserve(
        stack: Any, drain: Any, bank: tuple[CMBBankSandbox, str]) -> None:
    from functions.settlement_fanout import fan_out

    box, reserve_id = bank
    paid_shop, refused_shop = Shop(stack, drain), Shop(stack, drain)
    for shop, account_no in ((paid_shop, "6225880100000001"), (refused_shop, "6225880100000002")):
        settlement.set_terms(OPERATOR, shop.merchant_id, {
            "delay_days": 0, "minimum_minor": 100, "fee_bps": 50, "reserve_id": reserve_id,
            "payee_account_no": account_no, "payee_name": f"商户{account_no[-1]}", "payee_bank_name": "招商银行深圳分行",
            "payee_bank_code": "308584000013"})
        shop.paid(40_000, on=yesterday())
    assert requests.post(f"{box.base_url}/_sandbox/payee-faults", timeout=10, json={
        "payee_account_no": "6225880100000002", "outcome": "fail", "reason": "户名不符"}).status_code == 200
    reserve = ledger.reserve_account(reserve_id, "CNY")
    reserve_before = paid_shop.balance(reserve)

    assert fan_out({}, None)["enqueued"] >= 2
    drain()

    paid = settlement.get_settlement(settlement.settlement_id(paid_shop.merchant_id, "CNY", yesterday()))
    assert (paid["status"], paid["gross"], paid["fee"], paid["net"]) == ("paid", 40_000, 200, 39_800)
    assert paid_shop.payable == 0 and paid_shop.settling == 0
    assert paid_shop.balance(reserve) - reserve_before == -39_800  # out of the reserve, and nothing else
    refused = settlement.get_settlement(settlement.settlement_id(refused_shop.merchant_id, "CNY", yesterday()))
    assert refused["status"] == "returned" and refused_shop.payable == 40_000 and refused_shop.settling == 0
    adapter, account = bank_for(reserve_id)
    debits = {e.transfer_reference: e.amount.minor for e in adapter.statement(account, beijing_today()).entries
              if e.direction == "debit"}
    assert debits[settlement.transfer_reference(paid["settlement_id"])] == 39_800
    assert settlement.transfer_reference(refused["settlement_id"]) not in debits


def test_a_payout_that_comes_back_after_it_was_paid_is_booked_from_the_reserves_statement(
        shop: Shop, bank: tuple[CMBBankSandbox, str]) -> None:
    from chalicelib.recon import reserve
    from tests.helpers import morning_after

    box, reserve_id = bank
    batch = shop.client.call("POST", "/v1/payout_batches", {"merchant_batch_no": "BANK-R",
                                                            "items": rows(1, 20_000)}).json()
    shop.drain()
    [item] = payouts.list_items(batch["id"], None)["data"]
    assert item["state"] == "succeeded" and shop.payable == 280_000
    returned = requests.post(f"{box.base_url}/_sandbox/transfers/{item['reference']}/return", timeout=10, json={
        "account_no": bank_for(reserve_id)[1].account_no, "reason": "收款账户冻结"})
    assert returned.status_code == 200, returned.text
    today = beijing_today()
    run = reserve.reconcile(reserve_id, today, now=morning_after(today))
    assert [i for i in run["items"] if i["kind"] in ("returned_transfer", "reserve_mismatch")] == []
    [after] = payouts.list_items(batch["id"], None)["data"]
    assert after["state"] == "returned" and shop.payable == 300_000  # the merchant's again
    again = reserve.reconcile(reserve_id, today, now=morning_after(today))
    assert again["totals"]["ledger_movement"] == run["totals"]["ledger_movement"] and shop.payable == 300_000
