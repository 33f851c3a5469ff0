"""The hub's CMB adapter against the CMB direct-connect sandbox over real HTTP on 127.0.0.1: transfers out and
their outcomes, sub-accounts, a day's statement, and answers or requests that must not be believed."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3

from chalicelib.banks.accounts import BankAccount, BankSecrets
from chalicelib.banks.base import BankAccountRef, Transfer, TransferState, TransferStatus
from chalicelib.banks.cmb import envelope
from chalicelib.banks.cmb.adapter import CMBAdapter
from chalicelib.channels.transport import UrllibTransport
from chalicelib.config.secret import Secret
from chalicelib.crypto.sm import sm2_generate_keypair
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.money import Money
from infra.local.provision.cmbbank import register
from sandbox.cmbbank.server import CMBBankSandbox

BEIJING = timezone(timedelta(hours=8))
PAYEE = "6222020200112233"


@pytest.fixture(scope="module")
def bank() -> Iterator[CMBBankSandbox]:
    sandbox = CMBBankSandbox(page_size=2)  # small pages: every statement below takes several
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def slow_bank() -> Iterator[CMBBankSandbox]:
    sandbox = CMBBankSandbox(settle_s=0.4)
    sandbox.start()
    yield sandbox
    sandbox.stop()


class Onboarded:
    def __init__(self, sandbox: CMBBankSandbox, opening_balance: str = "1000.00") -> None:
        self.sandbox = sandbox
        uid = "U" + secrets.token_hex(4).upper()
        config, keys = register(sandbox.base_url, reserve_id="rsv-test", uid=uid,
                                account_no="7559" + f"{secrets.randbelow(10**11):011d}", account_name="测试备付金",
                                opening_balance=opening_balance)
        self.account = BankAccount(config, BankSecrets(*(Secret(keys[n]) for n in
                                                         ("our_private_key", "sm4_key", "bank_public_key"))))
        self.keys = keys
        self.ref: BankAccountRef = config.ref()
        self.adapter = CMBAdapter(UrllibTransport(), accounts=lambda reserve_id: self.account)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = urllib3.request(method, self.sandbox.base_url + path, json=body, timeout=10.0)
        assert response.status == 200, response.data
        return dict(response.json())


def _transfer(reference: str, fen: int = 12345, payee: str = PAYEE) -> Transfer:
    return Transfer(reference=reference, amount=Money(fen, "CNY"), payee_account_no=payee, payee_name="收款某某有限公司",
                    payee_bank_name="中国工商银行上海分行", payee_bank_code="102290000011", purpose="货款结算")


def _today() -> Any:
    return datetime.now(UTC).astimezone(BEIJING).date()


def _until(read: Callable[[], TransferStatus], state: TransferState, timeout_s: float = 5.0) -> TransferStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = read()
        if status.state is state or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_a_transfer_succeeds_and_the_money_leaves(bank: CMBBankSandbox) -> None:
    us = Onboarded(bank)
    status = us.adapter.submit_transfer(us.ref, _transfer("PO1A"))
    assert status.state is TransferState.SUCCEEDED and status.reference == "PO1A"
    assert status.bank_reference and status.value_day == _today() and status.failure_reason is None
    received = us.control("GET", "/_sandbox/received")
    ours = [t for t in received["transfers"] if t["account_no"] == us.ref.account_no]
    assert [(t["yurref"], t["payee_account_no"], t["amount"]) for t in ours] == [("PO1A", PAYEE, "123.45")]
    assert {a["account_no"]: a["balance"] for a in received["accounts"]}[us.ref.account_no] == "876.55"


def test_a_resend_answers_the_first_outcome_and_moves_money_once(bank: CMBBankSandbox) -> None:
    us = Onboarded(bank)
    first = us.adapter.submit_transfer(us.ref, _transfer("PO2A"))
    again = us.adapter.submit_transfer(us.ref, _transfer("PO2A"))
    assert again == first
    statement = us.adapter.statement(us.ref, _today())
    assert [e.transfer_reference for e in statement.entries if e.direction == "debit"] == ["PO2A"]
    with pytest.raises(ChannelError) as other_fields:
        us.adapter.submit_transfer(us.ref, _transfer("PO2A", fen=99))
    assert other_fields.value.channel_code == "ERR_DUPREF" and not other_fields.value.refused


def test_a_failure_comes_back_with_the_banks_reason(bank: CMBBankSandbox) -> None:
    us = Onboarded(bank)
    us.control("POST", "/_sandbox/payee-faults", {"payee_account_no": "6222020200999999", "outcome": "fail",
                                                  "reason": "收款账户已销户"})
    failed = us.adapter.submit_transfer(us.ref, _transfer("PO3A", payee="6222020200999999"))
    assert (failed.state, failed.failure_reason) == (TransferState.FAILED, "收款账户已销户")
    short = us.adapter.submit_transfer(us.ref, _transfer("PO3B", fen=100_000_01))
    assert (short.state, short.failure_reason) == (TransferState.FAILED, "账户余额不足")
    assert us.adapter.statement(us.ref, _today()).entries == ()  # nothing moved


def test_a_return_comes_back_later_with_the_banks_reason_and_the_money(bank: CMBBankSandbox) -> None:
    us = Onboarded(bank)
    us.control("POST", "/_sandbox/payee-faults", {"payee_account_no": "6222020200888888", "outcome": "return",
                                                  "reason": "户名不符退票", "return_after_s": 0.3})
    sent = us.adapter.submit_transfer(us.ref, _transfer("PO4A", payee="6222020200888888"))
    assert sent.state is TransferState.SUCCEEDED
    returned = _until(lambda: us.adapter.transfer_status(us.ref, "PO4A"), TransferState.RETURNED)
    assert (returned.state, returned.failure_reason) == (TransferState.RETURNED, "户名不符退票")
    statement = us.adapter.statement(us.ref, _today())
    assert [(e.direction, e.amount.minor, e.transfer_reference) for e in statement.entries] == [
        ("debit", 12345, "PO4A"), ("credit", 12345, "PO4A")]
    assert statement.opening_balance == statement.closing_balance == Money(100000, "CNY")


def test_a_status_query_follows_the_payment_until_it_ends(slow_bank: CMBBankSandbox) -> None:
    us = Onboarded(slow_bank)
    accepted = us.adapter.submit_transfer(us.ref, _transfer("PO5A"))
    assert accepted.state is TransferState.PROCESSING and accepted.value_day is None
    done = _until(lambda: us.adapter.transfer_status(us.ref, "PO5A"), TransferState.SUCCEEDED)
    assert done.state is TransferState.SUCCEEDED and done.bank_reference == accepted.bank_reference
    with pytest.raises(ChannelError) as unknown:
        us.adapter.transfer_status(us.ref, "NEVERSENT")
    assert unknown.value.channel_code == "NOT_FOUND" and unknown.value.refused


def test_a_days_statement_names_the_sub_account_credited_and_carries_our_reference(bank: CMBBankSandbox) -> None:
    us = Onboarded(bank)
    virtual = us.adapter.open_virtual_account(us.ref, "ORD20261207A", "订单ORD20261207A")
    assert virtual.startswith(us.ref.account_no) and len(virtual) == len(us.ref.account_no) + 10
    assert us.adapter.open_virtual_account(us.ref, "ORD20261207A", "订单ORD20261207A") == virtual  # resend
    other = us.adapter.open_virtual_account(us.ref, "ORD20261207B", "订单ORD20261207B")
    assert other != virtual
    us.control("POST", "/_sandbox/credits", {"to": virtual, "payer_account_no": "6225880011223344",
                                             "payer_name": "北京付款贸易有限公司", "amount": "500.00",
                                             "postscript": "ORD20261207A 货款"})
    us.control("POST", "/_sandbox/credits", {"to": us.ref.account_no, "payer_account_no": "6225880099998888",
                                             "payer_name": "无名付款人", "amount": "0.01", "postscript": "unknown"})
    us.adapter.submit_transfer(us.ref, _transfer("PO6A", fen=20000))
    us.control("POST", "/_sandbox/credits", {"to": other, "payer_account_no": "6225880011223344",
                                             "payer_name": "北京付款贸易有限公司", "amount": "1.50", "postscript": "B"})

    statement = us.adapter.statement(us.ref, _today())  # four entries over two-row pages
    assert statement.account_no == us.ref.account_no and statement.day == _today()
    assert [(e.direction, e.amount.minor, e.virtual_account_no, e.transfer_reference) for e in statement.entries] == [
        ("credit", 50000, virtual, None), ("credit", 1, None, None), ("debit", 20000, None, "PO6A"),
        ("credit", 150, other, None)]
    sub_credit = statement.entries[0]
    assert (sub_credit.counterparty_account_no, sub_credit.counterparty_name, sub_credit.postscript) == (
        "6225880011223344", "北京付款贸易有限公司", "ORD20261207A 货款")
    assert sub_credit.booked_at.utcoffset() == timedelta(hours=8) and sub_credit.account_no == us.ref.account_no
    assert statement.entries[2].counterparty_account_no == PAYEE
    assert len({e.bank_reference for e in statement.entries}) == 4
    assert statement.opening_balance == Money(100000, "CNY")
    assert statement.closing_balance == Money(100000 + 50000 + 1 - 20000 + 150, "CNY")
    yesterday = us.adapter.statement(us.ref, _today() - timedelta(days=1))
    assert yesterday.entries == () and yesterday.closing_balance == Money(100000, "CNY")


@pytest.mark.parametrize(("mode", "code"), [("wrong_key", "RESPONSE_SIGNATURE_INVALID"),
                                            ("tampered", "RESPONSE_SIGNATURE_INVALID"),
                                            ("unsigned", "RESPONSE_SIGNATURE_INVALID"),
                                            ("replay", "RESPONSE_NOT_OURS")])
def test_a_forged_tampered_unsigned_or_replayed_answer_is_refused_and_logged(
        bank: CMBBankSandbox, mode: str, code: str, caplog: pytest.LogCaptureFixture) -> None:
    us = Onboarded(bank)
    us.adapter.open_virtual_account(us.ref, "ORD7", "订单7")  # a genuine answer for "replay" to resend
    us.control("POST", "/_sandbox/answer-faults", {"mode": mode})
    with caplog.at_level(logging.WARNING, logger="chalicelib.banks.cmb.client"), pytest.raises(ChannelError) as refused:
        us.adapter.submit_transfer(us.ref, _transfer("PO7A"))
    assert refused.value.channel_code == code and not refused.value.refused and not refused.value.retryable
    assert any(r.__dict__.get("event") == "bank_answer_refused" for r in caplog.records)
    assert us.keys["sm4_key"] not in caplog.text and us.keys["our_private_key"] not in caplog.text
    assert us.adapter.transfer_status(us.ref, "PO7A").state is TransferState.SUCCEEDED  # the next answer is genuine


def _signed(us: Onboarded, funcode: str, body: dict[str, Any], key_pair: tuple[str, str] | None = None) -> dict[str, Any]:
    config = us.account.config
    now = datetime.now(UTC).astimezone(BEIJING)
    document = {"request": {"head": {"funcode": funcode, "userid": config.uid, "reqid": envelope.new_reqid(now)},
                            "body": body}}
    private_key, public_key = key_pair or (us.keys["our_private_key"], config.our_public_key)
    return envelope.sign(document, config.uid, private_key, public_key, envelope.sigtim(now))


def _form(us: Onboarded, funcode: str, signed: dict[str, Any]) -> bytes:
    config = us.account.config
    return urlencode({"UID": config.uid, "FUNCODE": funcode, "ALG": "SM",
                      "DATA": envelope.seal(signed, config.uid, us.keys["sm4_key"])}).encode()


def _post(us: Onboarded, form: bytes) -> dict[str, Any]:
    response = urllib3.request("POST", us.account.config.api_base_url, body=form,
                               headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10.0)
    answer = envelope.unseal(response.data.decode(), us.account.config.uid, us.keys["sm4_key"])
    assert envelope.verify(answer, us.account.config.uid, us.keys["bank_public_key"])
    return dict(answer["response"]["head"])


def test_the_bank_refuses_a_replayed_reqid_a_forged_signature_and_a_tampered_body(bank: CMBBankSandbox) -> None:
    us = Onboarded(bank)
    query = {"bb1payqrx1": [{"busCod": "N02030", "yurRef": "PO8A"}]}
    form = _form(us, "BB1PAYQR", _signed(us, "BB1PAYQR", query))
    assert _post(us, form)["resultcode"] == "SUC0000"
    assert _post(us, form)["resultcode"] == "ERR_REQID"  # the very same request again
    forged = _signed(us, "BB1PAYQR", query, key_pair=sm2_generate_keypair())
    assert _post(us, _form(us, "BB1PAYQR", forged))["resultcode"] == "ERR_SIGN"
    tampered = _signed(us, "BB1PAYQR", query)
    tampered["request"]["body"]["bb1payqrx1"][0]["yurRef"] = "PO8B"  # changed after signing, sealed properly
    assert _post(us, _form(us, "BB1PAYQR", tampered))["resultcode"] == "ERR_SIGN"
    other_user = _signed(us, "BB1PAYQR", query)
    other_user["request"]["head"]["funcode"] = "BB1PAYOP"  # signed for another funcode than the form names
    assert _post(us, _form(us, "BB1PAYQR", other_user))["resultcode"] == "ERR_SIGN"


def test_the_services_plain_text_refusal_is_not_believed(bank: CMBBankSandbox) -> None:
    us = Onboarded(bank)
    stranger = BankAccount(us.account.config.__class__.from_document({**us.account.config.to_document(),
                                                                       "uid": "NOSUCHUSER"}), us.account.secrets)
    adapter = CMBAdapter(UrllibTransport(), accounts=lambda reserve_id: stranger)
    with pytest.raises(ChannelError) as refused:
        adapter.transfer_status(us.ref, "PO9A")
    assert refused.value.channel_code == "CDC_REFUSED" and not refused.value.refused
