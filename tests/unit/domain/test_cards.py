"""Luhn, brand by prefix, expiry and which methods take a card."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.cards import brand_of, expired, luhn_valid, requires_card


@pytest.mark.parametrize(("number", "brand"), [
    ("4111111111111111", "visa"), ("4012888888881881", "visa"), ("5555555555554444", "mastercard"),
    ("2223003122003222", "mastercard"), ("378282246310005", "amex"), ("371449635398431", "amex"),
    ("6011111111111117", "discover"), ("3530111333300000", "jcb"), ("30569309025904", "diners"),
    ("6212345678901265", "unionpay"), ("6200000000000005", "unionpay"),
])
def test_well_known_test_numbers(number: str, brand: str) -> None:
    assert luhn_valid(number) and brand_of(number) == brand


@pytest.mark.parametrize("number", ["4111111111111112", "6212345678901266", "", "41111111111a1111", "４１１１"])
def test_bad_check_digit_or_not_digits(number: str) -> None:
    assert not luhn_valid(number)


@given(body=st.text(alphabet="0123456789", min_size=11, max_size=18), wrong=st.integers(min_value=1, max_value=9))
def test_exactly_one_check_digit_fits(body: str, wrong: int) -> None:
    valid = [d for d in "0123456789" if luhn_valid(body + d)]
    assert len(valid) == 1
    assert not luhn_valid(body + str((int(valid[0]) + wrong) % 10))


def test_unknown_prefix() -> None:
    assert brand_of("9999999999999995") == "unknown" and brand_of("") == "unknown"


def test_a_card_is_valid_through_its_expiry_month() -> None:
    today = date(2025, 3, 31)
    assert not expired(3, 2025, today) and not expired(1, 2026, today)
    assert expired(2, 2025, today) and expired(12, 2024, today)


def test_only_server_side_card_methods_take_a_card() -> None:
    assert requires_card("unionpay.card")
    assert not any(requires_card(m) for m in ("stripe.card", "unionpay.gateway", "wechat.native", "paypal.wallet"))
