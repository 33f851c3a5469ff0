"""e-CNY wire amounts (yuan strings, two decimals) and the exhaustive status mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.channels.base import PaymentOutcome, RefundOutcome
from chalicelib.channels.ecny.amounts import money_to_yuan, yuan_to_money
from chalicelib.channels.ecny.states import (
    ORDER_STATUSES,
    REFUND_STATUSES,
    payment_outcome,
    payment_status,
    refund_outcome,
)
from chalicelib.domain.money import Money

MAX_FEN = 10**15 - 1  # 13 integer digits of yuan


@given(st.integers(min_value=0, max_value=MAX_FEN))
def test_fen_to_yuan_and_back_is_exact(fen: int) -> None:
    text = money_to_yuan(Money(fen, "CNY"))
    whole, cents = text.split(".")
    assert len(cents) == 2 and whole == str(fen // 100)
    assert yuan_to_money(text) == Money(fen, "CNY")


@given(st.integers(min_value=0, max_value=MAX_FEN))
def test_yuan_string_matches_decimal_arithmetic(fen: int) -> None:
    from decimal import Decimal

    assert Decimal(money_to_yuan(Money(fen, "CNY"))) * 100 == fen


@given(st.text(max_size=20))
def test_only_canonical_yuan_strings_parse(text: str) -> None:
    try:
        parsed = yuan_to_money(text)
    except ValueError:
        return
    assert money_to_yuan(parsed) == text  # whatever parses is exactly what we would have written


@pytest.mark.parametrize("bad", ["88.8", "88", "88.888", "+1.00", "-1.00", "1e2", " 1.00", "1.00 ", "01.00",
                                 "1,000.00", "１.00", "0x1.00", "", "NaN", "1.0O"])
def test_malformed_amounts_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        yuan_to_money(bad)


@pytest.mark.parametrize("bad", [8888, 88.88, None, True, ["1.00"]])
def test_non_string_amounts_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        yuan_to_money(bad)


def test_other_currencies_are_refused_both_ways() -> None:
    with pytest.raises(ValueError):
        money_to_yuan(Money(100, "USD"))
    with pytest.raises(ValueError):
        yuan_to_money("1.00", "USD")
    with pytest.raises(ValueError):
        money_to_yuan(Money(-1, "CNY"))


def test_every_known_order_status_is_mapped_and_unknown_is_pending() -> None:
    assert {payment_outcome(s) for s in ORDER_STATUSES} == {
        PaymentOutcome.PENDING, PaymentOutcome.PROCESSING, PaymentOutcome.SUCCEEDED, PaymentOutcome.FAILED,
        PaymentOutcome.CLOSED}
    for unknown in ("", "success", "PAID", "REVOKED", "SUCCESS ", "OFFLINE"):
        assert payment_outcome(unknown) is PaymentOutcome.PENDING


@given(st.text(max_size=12))
def test_no_unknown_status_is_ever_success(status: str) -> None:
    if status not in ORDER_STATUSES:
        assert payment_outcome(status) is PaymentOutcome.PENDING
    if status not in REFUND_STATUSES:
        assert refund_outcome(status) is RefundOutcome.PROCESSING


def test_refund_statuses() -> None:
    assert [refund_outcome(s) for s in ("PROCESSING", "SUCCESS", "FAILED")] == [
        RefundOutcome.PROCESSING, RefundOutcome.SUCCEEDED, RefundOutcome.FAILED]


def test_offline_flag_means_settled_offline_only_on_success() -> None:
    paid = payment_status({"status": "SUCCESS", "amount": "5.00", "offline": True, "pay_time": "20240519231500"})
    assert paid.settled_offline and paid.amount == Money(500, "CNY")
    assert paid.paid_at is not None and paid.paid_at.isoformat() == "2024-05-19T23:15:00+08:00"
    assert not payment_status({"status": "CLOSED", "amount": "5.00", "offline": True}).settled_offline
    assert not payment_status({"status": "SUCCESS", "amount": "5.00", "offline": "true"}).settled_offline
    assert not payment_status({"status": "SUCCESS", "amount": "5.00"}).settled_offline
