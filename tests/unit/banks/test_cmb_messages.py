"""CMB funcode bodies and answers (chalicelib/banks/cmb/messages.py, states.py): the field names, the status table,
and parsing that answers a malformed field with a ``MessageError`` naming it, never another exception."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.banks.base import Transfer, TransferState
from chalicelib.banks.cmb import messages
from chalicelib.banks.cmb.messages import MessageError
from chalicelib.banks.cmb.states import REQUEST_STATES, transfer_state
from chalicelib.domain.money import Money


def test_pay_body_names_cmbs_fields() -> None:
    transfer = Transfer(reference="PO20261207A1", amount=Money(123456, "CNY"), payee_account_no="6222000011112222",
                        payee_name="深圳某某科技有限公司", payee_bank_name="中国工商银行深圳分行", payee_bank_code="102584000002",
                        purpose="结算款")
    body = messages.pay_body("755915704510626", "S4000", transfer)
    assert body["bb1paybmx1"] == [{"busCod": "N02030", "busMod": "S4000"}]
    assert body["bb1payopx1"] == [{
        "dbtAcc": "755915704510626", "crtAcc": "6222000011112222", "crtNam": "深圳某某科技有限公司", "ccyNbr": "10",
        "trsAmt": "1234.56", "yurRef": "PO20261207A1", "nusAge": "结算款", "bnkFlg": "N", "stlChn": "Q",
        "crtBnk": "中国工商银行深圳分行", "brdNbr": "102584000002"}]
    inside = messages.pay_body("755915704510626", "S4000", Transfer(
        reference="R1", amount=Money(1, "CNY"), payee_account_no="755900000000001", payee_name="招行客户"))
    assert inside["bb1payopx1"][0]["bnkFlg"] == "Y" and inside["bb1payopx1"][0]["trsAmt"] == "0.01"


@pytest.mark.parametrize("reference", ["", "has-dash", "x" * 31, "空格"])
def test_a_reference_cmb_cannot_carry_is_refused_before_sending(reference: str) -> None:
    with pytest.raises(ValueError, match="reference"):
        messages.pay_query_body(reference)


def test_only_positive_cny_moves() -> None:
    with pytest.raises(ValueError, match="CNY"):
        messages.cny_amount(Money(100, "USD"))
    with pytest.raises(ValueError, match="positive"):
        messages.cny_amount(Money(0, "CNY"))


@pytest.mark.parametrize(("req_sts", "rtn_flg", "state"), [
    ("FIN", "S", TransferState.SUCCEEDED), ("FIN", "F", TransferState.FAILED), ("FIN", "B", TransferState.RETURNED),
    ("FIN", "R", TransferState.FAILED), ("FIN", "D", TransferState.FAILED), ("FIN", "C", TransferState.FAILED),
    ("FIN", "U", TransferState.PROCESSING), ("FIN", "", TransferState.PROCESSING), ("BNK", "S", TransferState.PROCESSING),
])
def test_status_table(req_sts: str, rtn_flg: str, state: TransferState) -> None:
    assert transfer_state(req_sts, rtn_flg) is state


@given(st.text(max_size=4), st.text(max_size=2))
def test_every_unknown_code_is_processing_never_final(req_sts: str, rtn_flg: str) -> None:
    state = transfer_state(req_sts, rtn_flg)
    if req_sts != "FIN" or rtn_flg not in {"S", "F", "B", "R", "D", "C"}:
        assert state is TransferState.PROCESSING
    for known in REQUEST_STATES:
        if known != "FIN":
            assert transfer_state(known, rtn_flg) is TransferState.PROCESSING


def test_a_query_row_becomes_a_status_with_the_banks_reason() -> None:
    body = {"bb1payqrz1": [{"yurRef": "PO1", "reqNbr": "0000000042", "reqSts": "FIN", "rtnFlg": "B",
                            "rtnNar": "收款人账号不存在", "oprDat": "20261207"}]}
    status = messages.status_from_query(body, "PO1")
    assert status is not None
    assert (status.state, status.failure_reason, status.bank_reference, status.value_day) == (
        TransferState.RETURNED, "收款人账号不存在", "0000000042", date(2026, 12, 7))
    assert messages.status_from_query({"bb1payqrz1": []}, "PO1") is None
    assert messages.status_from_query(body, "PO2") is None


def _detail_row(**overrides: str) -> dict[str, Any]:
    row = {"etydat": "20261207", "etytim": "101502", "vltdat": "20261207", "amtcdr": "C", "trsamt": "88.88",
           "trsblv": "1000088.88", "refnbr": "K26120700000001", "rpyacc": "6225880000000001", "rpynam": "付款公司",
           "nusage": "ORDER123", "yurref": ""}
    row.update(overrides)
    return row


def test_a_credit_to_a_sub_account_names_it_and_our_debit_carries_our_reference() -> None:
    credit = messages.entry_from_detail(_detail_row(), "755915704510626",
                                        {"K26120700000001": "7559157045106260000000001"})
    assert credit.direction == "credit" and credit.amount == Money(8888, "CNY")
    assert credit.virtual_account_no == "7559157045106260000000001" and credit.postscript == "ORDER123"
    assert credit.booked_at.isoformat() == "2026-12-07T10:15:02+08:00"
    debit = messages.entry_from_detail(_detail_row(amtcdr="D", trsamt="-10.00", yurref="PO1", refnbr="K2"),
                                       "755915704510626", {})
    assert debit.direction == "debit" and debit.amount == Money(1000, "CNY")
    assert debit.transfer_reference == "PO1" and debit.virtual_account_no is None


@pytest.mark.parametrize(("field", "value"), [("amtcdr", "X"), ("trsamt", "1,000.00"), ("trsamt", "1.001"),
                                              ("etydat", "2026-12-07"), ("etytim", "256000"), ("refnbr", ""),
                                              ("trsamt", "0.00")])
def test_a_malformed_detail_field_is_named(field: str, value: str) -> None:
    with pytest.raises(MessageError, match=field):
        messages.entry_from_detail(_detail_row(**{field: value}), "755915704510626", {})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["etydat", "etytim", "vltdat", "amtcdr", "trsamt", "trsblv", "refnbr",
                                        "rpyacc", "rpynam", "nusage", "naryur", "yurref"]),
                       st.one_of(st.text(max_size=12), st.integers(), st.none(), st.lists(st.integers(), max_size=2))))
def test_detail_parsing_answers_an_entry_or_a_message_error(row: dict[str, Any]) -> None:
    try:
        entry = messages.entry_from_detail(row, "755915704510626", {})
    except MessageError:
        return
    assert entry.amount.minor > 0 and entry.direction in ("credit", "debit")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**15), st.booleans())
def test_amounts_round_trip_through_cmbs_text(fen: int, negative: bool) -> None:
    text = messages.cny_amount(Money(fen, "CNY"))
    assert messages.parse_amount(("-" if negative else "") + text, "trsamt").minor == (-fen if negative else fen)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.text(max_size=6),
                 st.dictionaries(st.sampled_from(["ntrbptrsz1", "ntqactrsz2", "bb1payqrz1", "ntdmthlsz", "ntdmthlsy",
                                                  "ntqabinfz", "ntdmabadz1", "bb1payopz1"]),
                                 st.one_of(st.none(), st.text(max_size=3), st.lists(
                                     st.dictionaries(st.sampled_from(["cotflg", "trsseq", "yurRef", "reqSts", "trxdir",
                                                                      "dmanbr", "trxnbr", "ctnkey", "trsdat", "balamt",
                                                                      "errcod", "errCod"]),
                                                     st.one_of(st.text(max_size=4), st.integers())), max_size=3)))))
def test_every_answer_parser_answers_or_raises_a_message_error(body: Any) -> None:
    for parse in (lambda: messages.detail_page(body, "1"), lambda: messages.status_from_query(body, "PO1"),
                  lambda: messages.sub_history_page(body, "1"), lambda: messages.closing_balance(body, date(2026, 1, 1)),
                  lambda: messages.sub_account_answer(body), lambda: messages.pay_answer(body, "PO1")):
        try:
            parse()
        except MessageError:
            pass
