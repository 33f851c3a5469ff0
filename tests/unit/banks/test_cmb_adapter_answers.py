"""What the CMB adapter makes of answers a well-behaved bank never sends: a scripted bank (a ``Transport`` that
signs and seals with the bank sandbox's own crypto) answers each funcode with what a test gives it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import parse_qs

import pytest

from chalicelib.banks.accounts import BankAccount, BankAccountConfig, BankSecrets
from chalicelib.banks.base import Transfer
from chalicelib.banks.cmb.adapter import CMBAdapter
from chalicelib.channels.base import HttpRequest, HttpResponse
from chalicelib.config.secret import Secret
from chalicelib.crypto.sm import sm2_generate_keypair
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.money import Money
from sandbox.cmbbank import crypto as bank_crypto

UID, SM4 = "N002466694", "0123456789abcdef"
OUR_PRIVATE, OUR_PUBLIC = sm2_generate_keypair()
BANK_KEY = bank_crypto.Sm2Key.generate()
DAY = date(2026, 12, 7)
CONFIG = BankAccountConfig(reserve_id="rsv-cmb-1", bank="cmb", api_base_url="https://cdc.bank.test/cdcserver/api/v2",
                           uid=UID, account_no="755915704510626", account_name="备付金", currencies=("CNY",),
                           our_public_key=OUR_PUBLIC, branch_no="75", bus_mod="S4000")
ACCOUNT = BankAccount(CONFIG, BankSecrets(Secret(OUR_PRIVATE), Secret(SM4), Secret(BANK_KEY.public_hex)))

Script = Callable[[str, dict[str, Any]], "dict[str, Any] | tuple[str, str] | HttpResponse"]


class ScriptedBank:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def send(self, request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        document = bank_crypto.unseal(form["DATA"], UID, SM4)
        assert bank_crypto.verify_document(document, UID, OUR_PUBLIC)
        head, body = document["request"]["head"], document["request"]["body"]
        self.calls.append((form["FUNCODE"], body))
        scripted = self.script(form["FUNCODE"], body)
        if isinstance(scripted, HttpResponse):
            return scripted
        code, answer_body = ("SUC0000", scripted) if isinstance(scripted, dict) else (scripted[0], {})
        answer = {"response": {"head": {**head, "resultcode": code, "resultmsg": scripted[1] if code != "SUC0000"
                                        else "ok"}, "body": answer_body}}
        signed = bank_crypto.sign_document(answer, UID, BANK_KEY, "20261207120000")
        return HttpResponse(200, {}, bank_crypto.seal(signed, UID, SM4).encode())


def adapter(script: Script) -> tuple[CMBAdapter, ScriptedBank]:
    bank = ScriptedBank(script)
    return CMBAdapter(bank, accounts=lambda reserve_id: ACCOUNT), bank


def row(seq: int, amount: str, balance: str, cdr: str = "C", day: str = "20261207", refnbr: str = "") -> dict[str, str]:
    return {"etydat": day, "etytim": "101500", "vltdat": day, "amtcdr": cdr, "trsamt": amount, "trsblv": balance,
            "refnbr": refnbr or f"K{seq}", "rpyacc": "1", "rpynam": "p", "nusage": "x", "yurref": ""}


def statement_script(pages: list[dict[str, Any]], closing: str = "100.00") -> Script:
    def answer(funcode: str, body: dict[str, Any]) -> dict[str, Any]:
        if funcode == "DCTRSINF":
            return pages.pop(0)
        if funcode == "NTDMTHLS":
            return {"ntdmthlsz": [], "ntdmthlsy": [{"ctnkey": ""}]}
        return {"ntqabinfz": [{"accnbr": CONFIG.account_no, "trsdat": "20261207", "balamt": closing}]}

    return answer


def page(rows: list[dict[str, str]], more: bool, last: int) -> dict[str, Any]:
    return {"ntrbptrsz1": [{"cotflg": "Y" if more else "N", "trsseq": str(last)}], "ntqactrsz2": rows}


def test_pages_are_followed_from_the_last_sequence_plus_one() -> None:
    cmb, bank = adapter(statement_script([page([row(1, "10.00", "90.00")], True, 1),
                                          page([row(2, "10.00", "100.00")], False, 2)], closing="100.00"))
    statement = cmb.statement(CONFIG.ref(), DAY)
    assert [b["trsseq"] for f, b in bank.calls if f == "DCTRSINF"] == ["0", "2"]
    assert statement.opening_balance == Money(8000, "CNY") and len(statement.entries) == 2


@pytest.mark.parametrize(("pages", "closing", "code"), [
    ([page([row(1, "10.00", "90.00")], True, 1)] * 2, "90.00", "BAD_PAGING"),  # a breakpoint that does not move
    ([page([row(1, "10.00", "95.00")], False, 1)], "90.00", "STATEMENT_INCONSISTENT"),  # running balance disagrees
    ([page([row(1, "10.00", "90.00", day="20261206")], False, 1)], "90.00", "STATEMENT_INCONSISTENT"),  # other day
    ([page([row(1, "10.00", "90.00"), row(2, "10.00", "100.00", refnbr="K1")], False, 2)], "100.00",
     "STATEMENT_INCONSISTENT"),  # one entry twice
    ([page([row(1, "ten", "90.00")], False, 1)], "90.00", "RESPONSE_MALFORMED"),
    ([{"ntqactrsz2": []}], "90.00", "RESPONSE_MALFORMED"),
])
def test_a_statement_that_does_not_add_up_is_refused(pages: list[dict[str, Any]], closing: str, code: str) -> None:
    cmb, _ = adapter(statement_script(pages, closing))
    with pytest.raises(ChannelError) as refused:
        cmb.statement(CONFIG.ref(), DAY)
    assert refused.value.channel_code == code


@pytest.mark.parametrize(("answer", "code", "refused", "retryable"), [
    (("ERR_PARAM", "trsAmt 格式错误"), "ERR_PARAM", True, False),
    (("ERR_SYSBUSY", "系统繁忙"), "ERR_SYSBUSY", False, True),
    (("ERR_SIGN", "验签失败"), "ERR_SIGN", False, False),
    (("SOMETHING_NEW", "?"), "SOMETHING_NEW", False, False),
    (HttpResponse(503, {}, b"busy"), "HTTP_503", False, True),
    (HttpResponse(200, {}, "CDCServer: x ErrMsg: 不在白名单".encode()), "CDC_REFUSED", False, False),
    (HttpResponse(200, {}, b"bm90IHNlYWxlZA=="), "RESPONSE_UNREADABLE", False, False),
    ({"bb1payopz1": []}, "RESPONSE_MALFORMED", False, False),
    ({"bb1payopz1": [{"errCod": "ERR_DUPREF", "errTxt": "业务参考号重复"}]}, "ERR_DUPREF", False, False),
    ({"bb1payopz1": [{"errCod": "CSAC041", "errTxt": "收方户名不符"}]}, "CSAC041", True, False),
])
def test_what_a_pay_answer_means(answer: Any, code: str, refused: bool, retryable: bool) -> None:
    cmb, _ = adapter(lambda funcode, body: answer)
    with pytest.raises(ChannelError) as error:
        cmb.submit_transfer(CONFIG.ref(), Transfer(reference="PO1", amount=Money(100, "CNY"),
                                                   payee_account_no="755900000000001", payee_name="x"))
    assert (error.value.channel_code, error.value.refused, error.value.retryable) == (code, refused, retryable)


def test_an_answer_signed_for_another_reqid_is_a_replay() -> None:
    cmb, bank = adapter(lambda funcode, body: {"bb1payqrz1": []})

    def stale(request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        head = bank_crypto.unseal(form["DATA"], UID, SM4)["request"]["head"]
        answer = {"response": {"head": {**head, "reqid": "20261207000000000000001", "resultcode": "SUC0000"},
                               "body": {"bb1payqrz1": []}}}
        return HttpResponse(200, {}, bank_crypto.seal(bank_crypto.sign_document(answer, UID, BANK_KEY, "1"), UID,
                                                      SM4).encode())

    bank.send = stale  # type: ignore[method-assign]
    with pytest.raises(ChannelError) as refused:
        cmb.transfer_status(CONFIG.ref(), "PO1")
    assert refused.value.channel_code == "RESPONSE_NOT_OURS"


def test_a_reference_cmb_cannot_carry_is_refused_before_anything_is_sent() -> None:
    cmb, bank = adapter(lambda funcode, body: {})
    with pytest.raises(ChannelError) as refused:
        cmb.submit_transfer(CONFIG.ref(), Transfer(reference="PO-1", amount=Money(100, "CNY"),
                                                   payee_account_no="1", payee_name="x"))
    assert refused.value.refused and "reference" in str(refused.value) and bank.calls == []
    with pytest.raises(ChannelError, match="CNY"):
        cmb.submit_transfer(CONFIG.ref(), Transfer(reference="PO1", amount=Money(100, "USD"),
                                                   payee_account_no="1", payee_name="x"))
    other = CMBAdapter(bank, accounts=lambda reserve_id: None)
    with pytest.raises(ChannelError, match="not configured"):
        other.transfer_status(CONFIG.ref(), "PO1")
