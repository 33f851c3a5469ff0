"""Batch payouts against moto over the wire, with an in-memory bank (the adapter's twin: it keeps transfers by
reference, answers a resend with the first outcome, and fails payees it is told to): validation with a report,
an idempotent batch number, funds reserved before sending and released on failure, maker-checker approval for
large payments, per-item states, retry of the failed items only, the result file, and the merchant API."""

from __future__ import annotations

import csv
import io
import secrets
import threading
from typing import Any

import pytest
import requests

from chalicelib.banks.base import BankAccountRef, Transfer, TransferState, TransferStatus
from chalicelib.domain import ledger
from chalicelib.domain.clock import beijing_today
from chalicelib.domain.errors import ChannelError, Conflict, Unprocessable
from chalicelib.service import audit, payouts, settlement
from chalicelib.storage import payout_repo
from tests.e2e.money_kit import Shop, yesterday

TERMS = {"delay_days": 0, "minimum_minor": 0, "fee_bps": 0, "reserve_id": "rsv-twin"}
ACCOUNT = BankAccountRef("rsv-twin", "twin", "755900000000001", "PayHub Reserve")
MAKER = {"via": "cli", "id": "ops-maker"}
CHECKER = audit.Actor("cli", "ops-checker", "ops-checker")


class TwinBank:
    name = "twin"

    def __init__(self) -> None:
        self.transfers: dict[str, TransferStatus] = {}
        self.sent: list[Transfer] = []
        self.refuse: set[str] = set()  # payee account numbers whose transfers fail
        self.garbled = 0  # the next answers fail their checks: the bank's outcome is unknown

    def submit_transfer(self, account: BankAccountRef, transfer: Transfer) -> TransferStatus:
        if self.garbled:
            self.garbled -= 1
            self.transfers.setdefault(transfer.reference, TransferStatus(
                transfer.reference, TransferState.SUCCEEDED, "B" + transfer.reference[-8:], None, beijing_today()))
            raise ChannelError("the answer's signature does not verify")  # neither refused nor retryable
        if transfer.reference in self.transfers:
            return self.transfers[transfer.reference]
        self.sent.append(transfer)
        if transfer.payee_account_no in self.refuse:
            status = TransferStatus(transfer.reference, TransferState.FAILED, "B" + transfer.reference[-8:],
                                    "payee account closed", beijing_today())
        else:
            status = TransferStatus(transfer.reference, TransferState.SUCCEEDED, "B" + transfer.reference[-8:],
                                    None, beijing_today())
        self.transfers[transfer.reference] = status
        return status

    def transfer_status(self, account: BankAccountRef, reference: str) -> TransferStatus:
        if self.garbled:
            self.garbled -= 1
            raise ChannelError("the answer's signature does not verify")
        return self.transfers[reference]


def items(count: int, amount: int = 1_000, **changes: Any) -> list[dict[str, Any]]:
    return [{"item_ref": f"sup-{n}", "amount": amount, "payee_account_no": f"6225{n:012d}",
             "payee_name": f"Supplier {n}", "purpose": "goods", **changes} for n in range(1, count + 1)]


def send(bank: TwinBank, batch: dict[str, Any]) -> dict[str, int]:
    return payouts.process(batch["id"], 1, int(batch["items"]), (bank, ACCOUNT))


@pytest.fixture(scope="module")
def twin_reserve(stack: Any) -> None:
    """The reserve's bank account as configured (what it may send, in which currencies); the twin stands in for
    the bank itself."""
    from chalicelib.banks.accounts import BankAccountConfig, put_bank_account
    from chalicelib.crypto.sm import sm2_generate_keypair

    ours, bank = sm2_generate_keypair(), sm2_generate_keypair()
    # Nothing listens at its address: a sweep reading every reserve finds this one unreachable, and goes on.
    put_bank_account(BankAccountConfig(reserve_id="rsv-twin", bank="cmb", api_base_url="http://127.0.0.1:9/cdc",
                                       uid="N000000001", account_no=ACCOUNT.account_no, account_name="PayHub Reserve",
                                       currencies=("CNY",), our_public_key=ours[1]),
                     {"our_private_key": ours[0], "sm4_key": "1234567890abcdef", "bank_public_key": bank[1]})


@pytest.fixture
def funded(stack: Any, drain: Any, twin_reserve: None) -> Shop:
    shop = Shop(stack, drain)
    settlement.set_terms(CHECKER, shop.merchant_id, TERMS)
    shop.paid(100_000, on=yesterday())
    return shop


def payout_balance(shop: Shop) -> int:
    return -shop.balance(ledger.merchant_payout_account(shop.merchant_id, "CNY"))


def test_a_batch_is_reserved_sent_and_its_failed_items_released_then_retried_alone(funded: Shop) -> None:
    bank = TwinBank()
    rows = items(5, amount=3_000)
    bank.refuse = {rows[1]["payee_account_no"], rows[3]["payee_account_no"]}
    batch = payouts.create_batch(funded.merchant_id, {"merchant_batch_no": "B1", "items": rows}, maker=MAKER)
    assert batch["state"] == "processing" and batch["total"] == 15_000
    assert funded.payable == 85_000 and payout_balance(funded) == 15_000  # reserved before anything was sent

    assert send(bank, batch) == {"succeeded": 3, "failed": 2}
    assert funded.payable == 91_000 and payout_balance(funded) == 0  # failed money back to the merchant
    reserve = ledger.reserve_account("rsv-twin", "CNY")
    assert -funded.balance(reserve) == 9_000  # paid out of the reserve
    state = payouts.get_batch(batch["id"])
    assert state["state"] == "completed" and state["items_by_state"] == {"succeeded": 3, "failed": 2}
    assert send(bank, batch) == {} and len(bank.sent) == 5  # a completed batch: nothing sent again

    bank.refuse = set()
    retried = payouts.retry_failed(funded.merchant_id, batch["id"])
    assert retried["state"] == "processing" and funded.payable == 85_000
    assert send(bank, batch) == {"succeeded": 5}
    assert [t.payee_account_no for t in bank.sent[5:]] == [rows[1]["payee_account_no"], rows[3]["payee_account_no"]]
    assert len({t.reference for t in bank.sent}) == 7  # each attempt its own reference
    assert payouts.get_batch(batch["id"])["state"] == "completed" and -funded.balance(reserve) == 15_000
    with pytest.raises(Conflict):
        payouts.retry_failed(funded.merchant_id, batch["id"])

    result = list(csv.DictReader(io.StringIO(payouts.result_csv(batch["id"], funded.merchant_id).lstrip("\ufeff"))))
    assert [(r["item_ref"], r["state"], r["attempt"]) for r in result] == [
        ("sup-1", "succeeded", "1"), ("sup-2", "succeeded", "2"), ("sup-3", "succeeded", "1"),
        ("sup-4", "succeeded", "2"), ("sup-5", "succeeded", "1")]
    assert all(r["bank_reference"] for r in result)


def test_an_invalid_batch_is_reported_whole_and_writes_nothing(funded: Shop) -> None:
    rows = items(4)
    rows[2]["amount"] = -5
    rows[3]["payee_bank_code"] = "1234"
    report = payouts.check({"merchant_batch_no": "B2", "items": rows})
    assert not report.ok and {(p.line, p.field) for p in report.problems} >= {(3, "amount"), (4, "payee_bank_code")}
    with pytest.raises(payouts.BatchInvalid) as refused:
        payouts.create_batch(funded.merchant_id, {"merchant_batch_no": "B2", "items": rows}, maker=MAKER)
    assert refused.value.param == "items[3].amount" and refused.value.http_status == 422
    assert payout_repo.get_number(funded.merchant_id, "B2") is None and funded.payable == 100_000


def test_the_batch_number_is_idempotent_and_other_content_under_it_is_refused(funded: Shop) -> None:
    body = {"merchant_batch_no": "B3", "items": items(3)}
    first = payouts.create_batch(funded.merchant_id, body, maker=MAKER)
    assert payouts.create_batch(funded.merchant_id, body, maker=MAKER)["id"] == first["id"]
    assert funded.payable == 97_000  # reserved once
    with pytest.raises(Conflict) as reused:
        payouts.create_batch(funded.merchant_id, {**body, "items": items(3, amount=999)}, maker=MAKER)
    assert reused.value.param == "merchant_batch_no"


def test_a_paused_merchant_pays_nothing_out(funded: Shop) -> None:
    settlement.set_terms(CHECKER, funded.merchant_id, {**TERMS, "paused": True})
    with pytest.raises(Unprocessable) as refused:
        payouts.create_batch(funded.merchant_id, {"merchant_batch_no": "P1", "items": items(1)}, maker=MAKER)
    assert refused.value.param == "merchant_id" and funded.payable == 100_000


def test_a_currency_the_reserves_bank_cannot_send_is_refused(funded: Shop) -> None:
    with pytest.raises(Unprocessable) as refused:
        payouts.create_batch(funded.merchant_id, {"merchant_batch_no": "U1", "currency": "USD", "items": items(1)},
                             maker=MAKER)
    assert refused.value.param == "currency" and "sends CNY" in refused.value.message


def test_more_than_the_merchant_is_owed_is_refused_before_anything_is_written(funded: Shop) -> None:
    with pytest.raises(payouts.InsufficientFunds):
        payouts.create_batch(funded.merchant_id, {"merchant_batch_no": "B4", "items": items(2, amount=60_000)},
                             maker=MAKER)
    assert payout_repo.get_number(funded.merchant_id, "B4") is None and funded.payable == 100_000


def test_large_payments_wait_for_a_checker_who_is_not_the_maker(funded: Shop) -> None:
    payouts.set_policy(CHECKER, funded.merchant_id, {"single_threshold_minor": 50_000, "batch_threshold_minor": 90_000,
                                                     "daily_limit_minor": 95_000})
    bank = TwinBank()
    batch = payouts.create_batch(funded.merchant_id, {"merchant_batch_no": "B5", "items": items(1, amount=50_000)},
                                 maker=MAKER)
    assert batch["state"] == "awaiting_approval" and "single-payment threshold" in batch["approval"]["reasons"][0]
    assert funded.payable == 100_000  # nothing reserved while it waits
    with pytest.raises(Conflict, match="maker-checker"):
        payouts.decide(audit.Actor("cli", "ops-maker", "ops-maker"), batch["id"], approve=True, reason="mine")
    approved = payouts.decide(CHECKER, batch["id"], approve=True, reason="invoice 7781 checked")
    assert approved["state"] == "processing" and approved["approval"]["checker"]["id"] == "ops-checker"
    assert funded.payable == 50_000 and send(bank, approved) == {"succeeded": 1}
    with pytest.raises(Conflict):
        payouts.decide(CHECKER, batch["id"], approve=False, reason="too late")

    small = payouts.create_batch(funded.merchant_id, {"merchant_batch_no": "B6", "items": items(1, amount=46_000)},
                                 maker=MAKER)
    assert small["state"] == "awaiting_approval" and "daily limit" in small["approval"]["reasons"][0]  # 50k + 46k
    rejected = payouts.decide(CHECKER, small["id"], approve=False, reason="not expected")
    assert rejected["state"] == "rejected" and funded.payable == 50_000
    records, _ = audit.list_records(action="payouts.", target=batch["id"])
    assert [r["action"] for r in records] == ["payouts.approve"]


def test_two_batches_racing_for_the_same_money_do_not_both_take_it(funded: Shop) -> None:
    outcomes: list[Any] = []
    barrier = threading.Barrier(2)

    def create(number: str) -> None:
        barrier.wait()
        try:
            outcomes.append(payouts.create_batch(funded.merchant_id, {"merchant_batch_no": number,
                                                                      "items": items(1, amount=70_000)}, maker=MAKER))
        except (Conflict, payouts.InsufficientFunds) as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in ("R1", "R2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(o, dict) for o in outcomes) == 1, outcomes
    assert funded.payable == 30_000 and payout_balance(funded) == 70_000


def test_the_merchant_api_creates_reads_and_lists_a_batch(funded: Shop) -> None:
    api = funded.client
    answer = api.call("POST", "/v1/payout_batches/validate", {"merchant_batch_no": "A1", "items": items(2, amount=0)})
    assert answer.status_code == 200 and answer.json()["valid"] is False
    created = api.call("POST", "/v1/payout_batches", {"merchant_batch_no": "A1", "items": items(300, amount=10)})
    assert created.status_code == 201, created.text
    batch = created.json()
    assert batch["object"] == "payout_batch" and batch["items"] == 300 and batch["state"] == "processing"
    send(TwinBank(), batch)
    page = api.get(f"/v1/payout_batches/{batch['id']}/items?limit=100")
    assert len(page["data"]) == 100 and page["has_more"] and page["next_after"] == 100
    rest = api.get(f"/v1/payout_batches/{batch['id']}/items?after=100&limit=1000")
    assert len(rest["data"]) == 200 and not rest["has_more"]
    result = requests.get(f"{funded.stack.api_url}/v1/payout_batches/{batch['id']}/result", timeout=10,
                          headers={"Authorization": f"Bearer {api.api_key}"})
    assert result.status_code == 200 and result.headers["Content-Type"].startswith("text/csv")
    assert result.text.count("\r\n") == 301
    bad = api.call("POST", "/v1/payout_batches", {"merchant_batch_no": "A2", "items": items(2, amount="ten")})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "items[1].amount"
    odd = api.call("POST", "/v1/payout_batches", {"merchant_batch_no": "A3", "items": items(1, amount="²")})
    assert odd.status_code == 422 and odd.json()["error"]["param"] == "items[1].amount"  # not a 500
    assert api.call("GET", f"/v1/payout_batches/{batch['id']}/items?after=²").status_code == 400
    assert api.call("GET", f"/v1/payout_batches/pob_{secrets.token_hex(6)}").status_code == 404
    # The same as a file: the CSV a merchant exports, sent as it is.
    csv_text = "item_ref,amount,payee_account_no,payee_name\r\nf1,700,6225000000000101,Fujian Paper Co.\r\n"
    filed = api.call("POST", "/v1/payout_batches", {"merchant_batch_no": "A4", "file": csv_text})
    assert filed.status_code == 201 and filed.json()["total"] == 700, filed.text
    both = api.call("POST", "/v1/payout_batches", {"merchant_batch_no": "A5", "file": csv_text, "items": items(1)})
    assert both.status_code == 400 and both.json()["error"]["param"] == "items"
    headless = api.call("POST", "/v1/payout_batches/validate", {"merchant_batch_no": "A6", "file": "f1,700\r\n"})
    assert headless.status_code == 400 and headless.json()["error"]["param"] == "file"


def test_the_operator_cli_submits_a_file_and_a_second_operator_approves_it(funded: Shop, tmp_path: Any, capsys: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from payhub_cli.main import main as payhub

    payouts.set_policy(CHECKER, funded.merchant_id, {"single_threshold_minor": 20_000, "batch_threshold_minor": 10**9,
                                                     "daily_limit_minor": 10**9})
    path = tmp_path / "suppliers.csv"
    path.write_text("\ufeffitem_ref,amount,payee_account_no,payee_name,payee_bank_name,payee_bank_code,purpose\r\n"
                    "t1,25000,6225000000000001,Minjiang Tea,,,spring order\r\n"
                    "t2,1200,6217000000000002,Wuyi Packaging,Bank of China Fuzhou,104391000011,boxes\r\n",
                    encoding="utf-8")
    monkeypatch.setenv("PAYHUB_OPERATOR", "alice")
    assert payhub(["payouts", "submit", "--merchant", funded.merchant_id, "--file", str(path), "--batch-no", "F1",
                   "--check"]) == 0
    assert json.loads(capsys.readouterr().out) == {"items": 2, "total": 26_200, "valid": True, "problems": []}
    assert payhub(["payouts", "submit", "--merchant", funded.merchant_id, "--file", str(path), "--batch-no", "F1"]) == 0
    batch = json.loads(capsys.readouterr().out)
    assert batch["state"] == "awaiting_approval" and batch["maker"]["id"] == "alice"
    assert payhub(["payouts", "approve", batch["id"], "--reason", "mine"]) == 1
    assert "maker-checker" in capsys.readouterr().err
    monkeypatch.setenv("PAYHUB_OPERATOR", "bob")
    assert payhub(["payouts", "approve", batch["id"], "--reason", "checked against PO 31"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "processing"
    send(TwinBank(), payouts.get_batch(batch["id"]))
    assert payhub(["payouts", "result", batch["id"]]) == 0
    lines = capsys.readouterr().out.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("line,item_ref,amount") and [line.split(",")[5] for line in lines[1:]] == ["succeeded"] * 2


def test_an_answer_that_cannot_be_trusted_never_releases_money_the_bank_may_have_paid(funded: Shop) -> None:
    bank = TwinBank()
    bank.garbled = 2  # the bank paid, but its answer to the transfer and to the first query fail their checks
    batch = payouts.create_batch(funded.merchant_id, {"merchant_batch_no": "G1", "items": items(1, amount=4_000)},
                                 maker=MAKER)
    assert send(bank, batch) == {"processing": 1}
    assert send(bank, batch) == {"processing": 1}
    assert funded.payable == 96_000 and payout_balance(funded) == 4_000  # still reserved, not released
    assert send(bank, batch) == {"succeeded": 1} and len(bank.sent) == 0  # asked again: paid, once
    assert payout_balance(funded) == 0 and funded.payable == 96_000


def test_the_same_batch_sent_twice_at_once_is_one_batch_with_its_items_whole(funded: Shop) -> None:
    body = {"merchant_batch_no": "TWICE", "items": items(60, amount=500)}
    outcomes: list[Any] = []
    barrier = threading.Barrier(3)

    def create() -> None:
        barrier.wait()
        try:
            outcomes.append(payouts.create_batch(funded.merchant_id, body, maker=MAKER)["id"])
        except Conflict as exc:  # "being created": the client sends it again
            outcomes.append(exc)

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = {o for o in outcomes if isinstance(o, str)}
    assert len(ids) == 1, outcomes
    [batch_id] = ids
    assert payouts.create_batch(funded.merchant_id, body, maker=MAKER)["id"] == batch_id
    assert funded.payable == 100_000 - 30_000 and payout_balance(funded) == 30_000  # reserved once
    assert payouts.get_batch(batch_id)["items_by_state"] == {"pending": 60}


def test_two_batches_read_together_cannot_both_slip_under_the_daily_limit(funded: Shop) -> None:
    payouts.set_policy(CHECKER, funded.merchant_id, {"single_threshold_minor": 10**9, "batch_threshold_minor": 10**9,
                                                     "daily_limit_minor": 30_000})
    outcomes: list[Any] = []
    barrier = threading.Barrier(2)

    def create(number: str) -> None:
        barrier.wait()
        try:
            outcomes.append(payouts.create_batch(funded.merchant_id, {"merchant_batch_no": number,
                                                                      "items": items(1, amount=20_000)}, maker=MAKER))
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in ("L1", "L2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = [o for o in outcomes if isinstance(o, dict) and o["state"] == "processing"]
    assert len(sent) <= 1 and payout_balance(funded) <= 30_000, outcomes  # never 40,000 past a 30,000 limit
    later = payouts.create_batch(funded.merchant_id, {"merchant_batch_no": "L3", "items": items(1, amount=20_000)},
                                 maker=MAKER)
    assert later["state"] == "awaiting_approval" or not sent
