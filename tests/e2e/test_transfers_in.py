"""Payer businesses paying by bank transfer, end to end against the CMB bank sandbox over its signed and encrypted
bank-direct protocol: the merchant API opens an order (a virtual sub-account and a remittance code), the payer's
business transfers at the bank (the sandbox's control API), the transfers sweep reads the reserve's statement
through the bank adapter and moves the payment; operators decide what waits for a person over the operator API;
returns and refunds leave the reserve through the bank, and the ledger says exactly what the bank says."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib.banks.accounts import bank_for
from chalicelib.domain import ledger
from chalicelib.domain.clock import beijing_today
from chalicelib.service import audit, payouts, transfers_in
from chalicelib.service.operators import create_operator_key
from chalicelib.storage import ledger_repo
from infra.local.provision.banktransfer import provision as provision_transfers
from infra.local.provision.cmbbank import provision as provision_bank
from sandbox.cmbbank.server import CMBBankSandbox
from tests.helpers import make_merchant, wait_for

OPERATOR = audit.Actor("cli", "ops-transfers-test", "ops-transfers-test")
PAYER = {"payer_account_no": "6225880212345678", "payer_name": "福州某某贸易有限公司"}


@pytest.fixture(scope="module")
def bank(stack: Any) -> Iterator[tuple[CMBBankSandbox, str, str]]:
    box = CMBBankSandbox(settle_s=0.0, page_size=20)
    box.start()
    reserve_id = f"rsv-xfer-{secrets.token_hex(3)}"
    provision_bank(box.base_url, reserve_id=reserve_id, uid=f"N{secrets.randbelow(10**9):09d}",
                   account_no=f"7559{secrets.randbelow(10**11):011d}", opening_balance="1000000.00")
    account = provision_transfers(reserve_id=reserve_id, account_id=f"xfer-{reserve_id[-6:]}")
    yield box, reserve_id, account.account_id
    box.stop()


class Business:
    """A merchant selling to businesses, its payments by bank transfer, and what the reserve's ledger says."""

    def __init__(self, stack: Any, drain: Any, bank: tuple[CMBBankSandbox, str, str]) -> None:
        self.stack, self.drain = stack, drain
        self.box, self.reserve_id, self.account_id = bank
        self.client = make_merchant(stack)
        self.operator_key = create_operator_key("transfers checker").api_key
        self.reserve_before = self.balance(ledger.reserve_account(self.reserve_id, "CNY"))
        self.receipts_before = self.balance(ledger.bank_receipts_account(self.reserve_id, "CNY"))

    def order(self, amount: int) -> dict[str, Any]:
        created = self.client.create_payment(amount=amount, method="bank.transfer", description="钢材 20 吨")
        assert created["status"] == "pending" and created["action"]["type"] == "bank_transfer", created
        return created

    def transfer(self, to: str, amount_fen: int, postscript: str = "", payer: dict[str, str] | None = None) -> str:
        answer = requests.post(f"{self.box.base_url}/_sandbox/credits", timeout=10, json={
            "to": to, "amount": f"{amount_fen // 100}.{amount_fen % 100:02d}", "postscript": postscript,
            **(payer or PAYER)})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["refnbr"])

    def sweep(self) -> dict[str, int]:
        """What this reading of the statement did; the credits of earlier tests (one bank) come back duplicate."""
        counts = transfers_in.sweep_statement(self.reserve_id, beijing_today())
        self.drain()
        return {outcome: count for outcome, count in counts.items() if outcome != "duplicate"}

    def payment(self, payment_id: str) -> dict[str, Any]:
        return self.client.get(f"/v1/payments/{payment_id}")

    def balance(self, account: str) -> int:
        return ledger_repo.balance(account)

    @property
    def payable(self) -> int:
        return -self.balance(ledger.merchant_payable_account(self.client.merchant_id, "CNY"))

    @property
    def reserve_in(self) -> int:
        return self.balance(ledger.reserve_account(self.reserve_id, "CNY")) - self.reserve_before

    @property
    def receipts(self) -> int:
        return -(self.balance(ledger.bank_receipts_account(self.reserve_id, "CNY")) - self.receipts_before)

    @property
    def clearing(self) -> int:
        return self.balance(ledger.clearing_account(self.account_id, "CNY"))

    def operator(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        url = f"{self.stack.api_url}/v1/operator/transfers/receipts{path}"
        headers = {"Authorization": f"Bearer {self.operator_key}"}
        if body is None:
            return requests.get(url, headers=headers, timeout=10)
        return requests.post(url, json=body, headers=headers, timeout=30)

    def waiting(self) -> dict[str, dict[str, Any]]:
        answer = self.operator("")
        assert answer.status_code == 200, answer.text
        return {r["bank_reference"]: r for r in answer.json()["data"] if r["reserve_id"] == self.reserve_id}


def _statement(shop: Business) -> Any:
    adapter, account = bank_for(shop.reserve_id)
    return adapter.statement(account, beijing_today())


@pytest.fixture
def shop(stack: Any, drain: Any, bank: tuple[CMBBankSandbox, str, str]) -> Business:
    return Business(stack, drain, bank)


def test_an_exact_transfer_to_the_sub_account_pays_the_order_and_the_merchant_is_told(shop: Business) -> None:
    created = shop.order(1_250_000)
    action = created["action"]
    assert action["account_no"].startswith(bank_for(shop.reserve_id)[1].account_no)  # main account + sub-account
    assert action["amount"] == 1_250_000 and action["currency"] == "CNY" and action["remittance_code"].startswith("PH")
    assert action["bank_name"] == "招商银行深圳分行" and action["account_name"] and action["expires_at"]

    shop.transfer(action["account_no"], 1_250_000, "货款")
    assert shop.sweep() == {"exact": 1}
    assert shop.payment(created["id"])["status"] == "succeeded"
    wait_for(lambda: "payment.succeeded" in shop.stack.receiver.types_for(created["id"]))
    assert shop.payable == 1_250_000 and shop.reserve_in == 1_250_000
    assert shop.receipts == 0 and shop.clearing == 0  # applied: nothing waits, the channel holds nothing

    statement_credits = sum(1 for e in _statement(shop).entries if e.direction == "credit" and not e.transfer_reference)
    assert transfers_in.sweep_statement(shop.reserve_id, beijing_today()) == {"duplicate": statement_credits}
    assert shop.sweep() == {}  # the same statement read again changes nothing
    assert shop.payable == 1_250_000 and shop.reserve_in == 1_250_000


def test_a_business_pays_in_two_parts(shop: Business) -> None:
    created = shop.order(300_000)
    to = created["action"]["account_no"]
    shop.transfer(to, 100_000, "首付")
    assert shop.sweep() == {"partial": 1}
    pending = shop.payment(created["id"])
    assert pending["status"] == "pending" and pending["action"]["amount_received"] == 100_000
    assert shop.payable == 0 and shop.receipts == 100_000 and shop.reserve_in == 100_000

    shop.transfer(to, 200_000, "尾款")
    assert shop.sweep() == {"exact": 1}
    paid = shop.payment(created["id"])
    assert paid["status"] == "succeeded" and paid["action"]["amount_received"] == 300_000
    assert shop.payable == 300_000 and shop.receipts == 0 and shop.reserve_in == 300_000


def test_an_overpayment_is_listed_and_an_operator_returns_the_excess_through_the_bank(shop: Business) -> None:
    created = shop.order(200_000)
    refnbr = shop.transfer(created["action"]["account_no"], 250_000, "货款")
    assert shop.sweep() == {"over": 1}
    assert shop.payment(created["id"])["status"] == "succeeded"
    assert shop.payable == 200_000 and shop.receipts == 50_000 and shop.reserve_in == 250_000
    listed = shop.waiting()[refnbr]
    assert (listed["kind"], listed["reason"], listed["unapplied"]) == ("over", "excess", 50_000)

    refused = shop.operator(f"/{listed['id']}/return", {})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "reason"
    returned = shop.operator(f"/{listed['id']}/return", {"reason": "付款方多付，原路退回"})
    assert returned.status_code == 200, returned.text
    assert returned.json()["state"] == "returned"
    assert refnbr not in shop.waiting()
    assert shop.payable == 200_000 and shop.receipts == 0 and shop.reserve_in == 200_000

    # The bank sent exactly the excess back to the payer, under the return's reference.
    adapter, account = bank_for(shop.reserve_id)
    debits = {e.transfer_reference: e for e in adapter.statement(account, beijing_today()).entries
              if e.direction == "debit"}
    sent = debits[returned.json()["return_reference"]]
    assert sent.amount.minor == 50_000 and sent.counterparty_account_no == PAYER["payer_account_no"]
    actions = [r["action"] for r in audit.list_records(limit=50, target=listed["id"])[0]]
    assert actions == ["transfers.return"]
    again = shop.operator(f"/{listed['id']}/return", {"reason": "again"})
    assert again.status_code == 409

    # A transfer to an order already paid: all of it is an excess; the paid payment's answer does not change.
    second = shop.transfer(created["action"]["account_no"], 10_000, "重复付款")
    assert shop.sweep() == {"over": 1}
    assert (shop.waiting()[second]["unapplied"], shop.receipts, shop.payable) == (10_000, 10_000, 200_000)
    assert shop.payment(created["id"])["action"]["amount_received"] == 250_000


def test_a_transfer_to_the_main_account_quoting_the_remittance_code_pays_the_order(shop: Business) -> None:
    created = shop.order(88_800)
    code = created["action"]["remittance_code"]
    main = bank_for(shop.reserve_id)[1].account_no
    quoted = f"合同 2026-17 货款 {code[:5].lower()} {code[5:]}"  # split and lower-cased as a teller might
    shop.transfer(main, 88_800, quoted)
    assert shop.sweep() == {"exact": 1}
    assert shop.payment(created["id"])["status"] == "succeeded" and shop.payable == 88_800


def test_an_unknown_credit_is_assigned_to_an_order_by_an_operator(shop: Business) -> None:
    created = shop.order(66_000)
    main = bank_for(shop.reserve_id)[1].account_no
    refnbr = shop.transfer(main, 66_000, "货款 请查收")  # no code, no sub-account
    assert shop.sweep() == {"unknown": 1}
    listed = shop.waiting()[refnbr]
    assert (listed["kind"], listed["reason"], listed["unapplied"]) == ("unknown", "unknown", 66_000)
    assert shop.receipts == 66_000 and shop.payable == 0

    missing = shop.operator(f"/{listed['id']}/assign", {"reason": "付款方来电确认"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "payment_id"
    assigned = shop.operator(f"/{listed['id']}/assign", {"payment_id": created["id"], "reason": "付款方来电确认"})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["state"] == "applied" and assigned.json()["attempt_id"] == created["attempt_id"]
    assert shop.payment(created["id"])["status"] == "succeeded"
    assert shop.payable == 66_000 and shop.receipts == 0 and refnbr not in shop.waiting()
    assert [r["action"] for r in audit.list_records(limit=50, target=listed["id"])[0]] == ["transfers.assign"]


def test_a_large_credit_waits_for_an_operators_approval(shop: Business) -> None:
    payouts.set_policy(OPERATOR, shop.client.merchant_id, {"single_threshold_minor": 500_000,
                                                           "batch_threshold_minor": 10**9, "daily_limit_minor": 10**9})
    created = shop.order(800_000)
    refnbr = shop.transfer(created["action"]["account_no"], 800_000, "设备款")
    assert shop.sweep() == {"awaiting_approval": 1}
    assert shop.payment(created["id"])["status"] == "pending"
    assert shop.payable == 0 and shop.receipts == 800_000
    listed = shop.waiting()[refnbr]
    assert listed["state"] == "awaiting_approval" and listed["reason"] == "large"

    approved = shop.operator(f"/{listed['id']}/approve", {"reason": "合同金额核对无误"})
    assert approved.status_code == 200, approved.text
    assert shop.payment(created["id"])["status"] == "succeeded"
    assert shop.payable == 800_000 and shop.receipts == 0
    assert shop.operator(f"/{listed['id']}/approve", {"reason": "again"}).status_code == 409


def test_two_sweeps_racing_count_each_credit_once(shop: Business) -> None:
    orders = [shop.order(10_000 * n) for n in (1, 2, 3)]
    for order in orders:  # each paid in two halves, all on one statement
        shop.transfer(order["action"]["account_no"], 5_000 * orders.index(order) + 5_000)
        shop.transfer(order["action"]["account_no"], 5_000 * orders.index(order) + 5_000)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(transfers_in.sweep_statement(shop.reserve_id, beijing_today()))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    shop.drain()
    new: dict[str, int] = {}
    for counts in results:
        for outcome, count in counts.items():
            new[outcome] = new.get(outcome, 0) + count
    assert new.get("partial", 0) == 3 and new.get("exact", 0) == 3  # each credit counted by exactly one sweep
    for order in orders:
        assert shop.payment(order["id"])["status"] == "succeeded"
    assert shop.payable == 60_000 and shop.receipts == 0 and shop.reserve_in == 60_000


def test_a_refund_goes_back_to_the_payers_account_through_the_bank(shop: Business) -> None:
    created = shop.order(120_000)
    shop.transfer(created["action"]["account_no"], 120_000)
    shop.sweep()
    assert shop.payment(created["id"])["status"] == "succeeded"
    answer = shop.client.call("POST", f"/v1/payments/{created['id']}/refunds",
                              {"amount": 20_000, "merchant_refund_no": "rf-1", "reason": "少发 1 吨"})
    assert answer.status_code in (200, 201, 202), answer.text
    refund = answer.json()
    shop.drain()
    wait_for(lambda: shop.client.get(f"/v1/refunds/{refund['id']}")["status"] == "succeeded")
    assert shop.payable == 100_000 and shop.reserve_in == 100_000 and shop.clearing == 0
    adapter, account = bank_for(shop.reserve_id)
    debits = {e.transfer_reference: e for e in adapter.statement(account, beijing_today()).entries
              if e.direction == "debit"}
    sent = debits[transfers_in.refund_reference(refund["id"])]
    assert sent.amount.minor == 20_000 and sent.counterparty_account_no == PAYER["payer_account_no"]
    assert shop.sweep() == {}  # our own debit is not a credit to match


def test_credits_for_one_order_racing_are_each_counted_exactly_once(shop: Business) -> None:
    """Ten transfers of one order applied by ten processes at once: the order's version guard makes each count on
    top of the others (none lost, none twice), and exactly one of them completes the order."""
    created = shop.order(100_000)
    refs = {shop.transfer(created["action"]["account_no"], 10_000, f"第{n}笔") for n in range(10)}
    entries = [e for e in _statement(shop).entries if e.bank_reference in refs]
    assert len(entries) == 10
    outcomes: list[str] = []
    barrier = threading.Barrier(len(entries))

    def run(entry: Any) -> None:
        barrier.wait()
        try:
            outcomes.append(transfers_in.apply_credit(shop.reserve_id, entry))
        except Exception as exc:  # noqa: BLE001 - shown by the assertion below
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=run, args=(entry,)) for entry in entries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shop.drain()
    assert sorted(outcomes) == ["exact"] + ["partial"] * 9
    order = transfers_in.get_order(created["attempt_id"])
    assert order is not None and order["received"] == 100_000 and len(order["receipts"]) == 10
    assert shop.payment(created["id"])["status"] == "succeeded"
    assert shop.payable == 100_000 and shop.receipts == 0 and shop.reserve_in == 100_000
    again = [transfers_in.apply_credit(shop.reserve_id, entry) for entry in entries]
    assert again == ["duplicate"] * 10 and shop.payable == 100_000


def test_on_the_cli_an_operator_keeps_an_excess_and_returns_an_unknown_credit(shop: Business, capsys: Any,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from payhub_cli.main import main as payhub

    monkeypatch.setenv("PAYHUB_OPERATOR", "carol")
    created = shop.order(40_000)
    over = shop.transfer(created["action"]["account_no"], 41_000, "货款")
    stranger = shop.transfer(bank_for(shop.reserve_id)[1].account_no, 7_700, "?", payer={
        "payer_account_no": "6214830000000009", "payer_name": "厦门某某物流有限公司"})
    assert shop.sweep() == {"over": 1, "unknown": 1}
    assert payhub(["transfers", "waiting"]) == 0
    waiting = {r["bank_reference"]: r for r in json.loads(capsys.readouterr().out)["data"]}
    assert waiting[over]["unapplied"] == 1_000 and waiting[stranger]["unapplied"] == 7_700

    assert payhub(["transfers", "keep", waiting[stranger]["id"], "--reason", "x"]) == 1  # only an excess is kept
    assert "not an excess" in capsys.readouterr().err
    assert payhub(["transfers", "keep", waiting[over]["id"], "--reason", "付款方同意抵下期货款"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "kept"
    assert payhub(["transfers", "return", waiting[stranger]["id"], "--reason", "无法识别，退回"]) == 0
    returned = json.loads(capsys.readouterr().out)
    assert returned["state"] == "returned" and returned["decided_by"]["id"] == "carol"
    assert shop.payable == 41_000 and shop.receipts == 0 and shop.reserve_in == 41_000
    debits = {e.transfer_reference: e for e in _statement(shop).entries if e.direction == "debit"}
    assert debits[returned["return_reference"]].counterparty_account_no == "6214830000000009"


def test_a_closed_order_gives_its_parts_to_a_person_and_a_late_credit_waits_too(shop: Business) -> None:
    from chalicelib.service.status_sync import close_attempt

    created = shop.order(90_000)
    to = created["action"]["account_no"]
    part = shop.transfer(to, 30_000, "首付")
    assert shop.sweep() == {"partial": 1}
    close_attempt(created["attempt_id"], source="test:expired")
    assert shop.payment(created["id"])["status"] not in ("pending", "succeeded")
    late = shop.transfer(to, 60_000, "尾款")
    assert shop.sweep() == {"late": 1}
    waiting = shop.waiting()
    assert (waiting[part]["reason"], waiting[part]["unapplied"]) == ("order_closed", 30_000)
    assert (waiting[late]["reason"], waiting[late]["unapplied"]) == ("late", 60_000)
    assert shop.payable == 0 and shop.receipts == 90_000

    for refnbr in (part, late):
        answer = shop.operator(f"/{waiting[refnbr]['id']}/return", {"reason": "订单已关闭，退回"})
        assert answer.status_code == 200 and answer.json()["state"] == "returned", answer.text
    assert shop.receipts == 0 and shop.reserve_in == 0 and shop.payable == 0


def test_a_sweep_stopped_before_the_capture_is_completed_by_status_sync_and_a_paid_order_is_not_closed(
        shop: Business, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.service.status_sync import close_attempt

    created = shop.order(10_000)
    shop.transfer(created["action"]["account_no"], 10_000)
    with monkeypatch.context() as stopped:  # the process dies right after the credit's transaction
        stopped.setattr(transfers_in, "_pay", lambda *args: None)
        assert transfers_in.sweep_statement(shop.reserve_id, beijing_today()).get("exact") == 1
    assert shop.payment(created["id"])["status"] == "pending"
    assert shop.clearing == -10_000 and shop.payable == 0  # applied, not captured yet
    close_attempt(created["attempt_id"], source="test:expired")  # ORDERPAID: the success is recorded instead
    assert shop.payment(created["id"])["status"] == "succeeded"
    assert shop.payable == 10_000 and shop.clearing == 0 and shop.reserve_in == 10_000


def test_the_scheduled_sweep_reads_every_reserve_and_answers_what_it_did(shop: Business) -> None:
    from functions.sweeps import transfers_sweep

    created = shop.order(33_300)
    shop.transfer(created["action"]["account_no"], 33_300)
    done = transfers_sweep({"source": "test"}, None)
    shop.drain()
    assert done.get("exact") == 1 and shop.payment(created["id"])["status"] == "succeeded"
    assert transfers_sweep({"source": "test"}, None).get("exact") is None  # read again: nothing new
    assert shop.payable == 33_300
