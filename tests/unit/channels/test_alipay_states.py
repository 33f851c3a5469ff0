"""Alipay state mapping (exhaustive, unknown -> pending) and yuan <-> fen at the channel edge."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.channels.alipay import states
from chalicelib.channels.base import PaymentOutcome, RefundOutcome
from chalicelib.domain.money import Money


def test_every_documented_trade_status_is_mapped() -> None:
    assert set(states.TRADE_STATUSES) == {"WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_FINISHED", "TRADE_CLOSED"}
    assert states.trade_outcome("WAIT_BUYER_PAY") is PaymentOutcome.PENDING
    assert states.trade_outcome("TRADE_SUCCESS") is PaymentOutcome.SUCCEEDED
    assert states.trade_outcome("TRADE_FINISHED") is PaymentOutcome.SUCCEEDED
    assert states.trade_outcome("TRADE_CLOSED") is PaymentOutcome.CLOSED
    assert states.trade_outcome("TRADE_CLOSED", was_paid=True) is PaymentOutcome.SUCCEEDED


@given(st.text(max_size=30).filter(lambda s: s not in states.TRADE_STATUSES), st.booleans())
def test_unknown_trade_status_is_pending_never_success(status: str, was_paid: bool) -> None:
    assert states.trade_outcome(status, was_paid=was_paid) is PaymentOutcome.PENDING


@given(st.text(max_size=30).filter(lambda s: s not in ("", states.REFUND_SUCCESS)))
def test_unknown_refund_status_is_processing(status: str) -> None:
    assert states.refund_outcome(status) is RefundOutcome.PROCESSING


@pytest.mark.parametrize(("fields", "paid"), [
    ({}, False), ({"gmt_close": "2024-05-20 12:00:00"}, False), ({"refund_fee": "0.00"}, False),
    ({"gmt_payment": "2024-05-20 12:00:00"}, True), ({"send_pay_date": "2024-05-20 12:00:00"}, True),
    ({"gmt_refund": "2024-05-20 12:00:00.1"}, True), ({"refund_fee": "0.01"}, True), ({"refund_fee": "bad"}, False),
])
def test_evidence_of_payment(fields: dict[str, str], paid: bool) -> None:
    assert states.trade_was_paid(fields) is paid


def test_query_answer_of_a_refunded_trade_is_paid_not_closed() -> None:
    answer = {"trade_status": "TRADE_CLOSED", "total_amount": "10.00", "trade_no": "2024", "send_pay_date": "2024-05-20 12:00:00"}
    status = states.payment_status(answer)
    assert (status.outcome, status.amount) == (PaymentOutcome.SUCCEEDED, Money(1000, "CNY"))
    assert status.channel_transaction_id == "2024"
    assert status.paid_at == datetime(2024, 5, 20, 4, 0, tzinfo=UTC)
    unpaid = states.payment_status({"trade_status": "TRADE_CLOSED", "total_amount": "10.00"})
    assert unpaid.outcome is PaymentOutcome.CLOSED and unpaid.paid_at is None


def test_refund_query_answers() -> None:
    done = states.refund_query_status({"out_request_no": "re_1", "refund_amount": "1.00", "refund_status": "REFUND_SUCCESS",
                                       "trade_no": "2024"})
    assert (done.outcome, done.amount, done.channel_refund_id) == (RefundOutcome.SUCCEEDED, Money(100, "CNY"), "2024")
    # Alipay's docs: data present and no refund_status also means the refund went through.
    assert states.refund_query_status({"out_request_no": "re_1", "refund_amount": "1.00"}).outcome is RefundOutcome.SUCCEEDED
    assert states.refund_query_status({"out_trade_no": "att_1"}).outcome is RefundOutcome.NOT_FOUND
    assert states.refund_query_status({"out_request_no": "re_1", "refund_amount": "1.00",
                                       "refund_status": "REFUND_PROCESSING"}).outcome is RefundOutcome.PROCESSING


@given(st.integers(min_value=0, max_value=10**15))
def test_yuan_round_trip(fen: int) -> None:
    text = states.money_to_yuan(Money(fen, "CNY"))
    assert text == f"{fen // 100}.{fen % 100:02d}"
    assert states.yuan_to_money(text) == Money(fen, "CNY")


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=9))
def test_one_decimal_and_whole_yuan_are_read_exactly(yuan: int, tenth: int) -> None:
    assert states.yuan_to_money(str(yuan)) == Money(yuan * 100, "CNY")
    assert states.yuan_to_money(f"{yuan}.{tenth}") == Money(yuan * 100 + tenth * 10, "CNY")


@pytest.mark.parametrize("text", ["1.001", "1e2", "0x10", "", " ", "1,00", "+1.00", "01.00", "NaN", "inf", "1.", ".5"])
def test_anything_but_a_plain_yuan_amount_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        states.yuan_to_money(text)


def test_non_strings_and_negatives_are_refused() -> None:
    for value in (1.0, 100, None, b"1.00"):
        with pytest.raises(ValueError):
            states.yuan_to_money(value)
    with pytest.raises(ValueError):
        states.yuan_to_money("-1.00")
    assert states.yuan_to_money("-1.00", allow_negative=True) == Money(-100, "CNY")
    with pytest.raises(ValueError, match="CNY"):
        states.money_to_yuan(Money(100, "USD"))


def test_beijing_time() -> None:
    assert states.beijing_time(datetime(2024, 5, 19, 16, 30, tzinfo=UTC)) == "2024-05-20 00:30:00"
    assert states.beijing_time(datetime(2024, 5, 19, 16, 30)) == "2024-05-20 00:30:00"  # naive is UTC
    assert states.parse_beijing_time("2024-05-20 00:30:00") == datetime(2024, 5, 19, 16, 30, tzinfo=UTC)
    assert states.parse_beijing_time("20240520") is None and states.parse_beijing_time(None) is None
