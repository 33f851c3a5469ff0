"""Money: integer minor units, per-currency exponents, exact decimal-string conversion at the edges."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money, exponent, minor_units

CURRENCIES = sorted(SUPPORTED_CURRENCIES)
# Comfortably beyond any real amount (10**18 minor units) but well inside Decimal's 28-digit context.
REALISTIC_MINOR = st.integers(min_value=-(10**18), max_value=10**18)


@pytest.mark.parametrize(("currency", "decimals"), [("JPY", 0), ("KRW", 0), ("CNY", 2), ("USD", 2),
                                                    ("KWD", 3), ("BHD", 3), ("OMR", 3)])
def test_exponent_per_currency(currency: str, decimals: int) -> None:
    assert exponent(currency) == decimals


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (8888, "CNY", "88.88"), (1, "CNY", "0.01"), (100, "CNY", "1.00"), (0, "CNY", "0.00"),
    (500, "JPY", "500"), (1, "JPY", "1"), (1234, "KWD", "1.234"), (5, "KWD", "0.005"), (-150, "USD", "-1.50"),
])
def test_to_decimal_string_known_values(minor: int, currency: str, text: str) -> None:
    assert Money(minor, currency).to_decimal_string() == text
    assert Money.from_decimal_string(text, currency) == Money(minor, currency)


@given(minor=REALISTIC_MINOR, currency=st.sampled_from(CURRENCIES))
def test_round_trip_minor_to_string_to_minor(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    text = money.to_decimal_string()
    decimals = exponent(currency)
    if decimals:
        assert len(text.rsplit(".", 1)[1]) == decimals
    else:
        assert "." not in text
    assert Decimal(text) == Decimal(minor).scaleb(-decimals)
    assert Money.from_decimal_string(text, currency) == money


@given(minor=REALISTIC_MINOR, currency=st.sampled_from(CURRENCIES), extra=st.integers(1, 9))
def test_one_decimal_too_many_is_refused(minor: int, currency: str, extra: int) -> None:
    text = Money(minor, currency).to_decimal_string()
    too_precise = text + ("" if "." in text else ".") + str(extra)
    with pytest.raises(ValueError, match="decimals"):
        Money.from_decimal_string(too_precise, currency)


@pytest.mark.parametrize(("text", "currency"), [("1.5", "JPY"), ("0.001", "CNY"), ("1.0001", "KWD"),
                                                ("88.881", "USD")])
def test_too_many_decimals_refused(text: str, currency: str) -> None:
    with pytest.raises(ValueError):
        Money.from_decimal_string(text, currency)


@pytest.mark.parametrize(("text", "currency", "minor"), [("1.50", "CNY", 150), ("1.0", "JPY", 1),
                                                         ("2.000", "CNY", 200), ("0.100", "KWD", 100)])
def test_trailing_zeros_beyond_exponent_are_exact_and_accepted(text: str, currency: str, minor: int) -> None:
    assert Money.from_decimal_string(text, currency) == Money(minor, currency)


@pytest.mark.parametrize("text", ["abc", "", "1,00", "Infinity", "NaN", "0x10"])
def test_garbage_strings_refused(text: str) -> None:
    # Refused one way or another (ValueError, decimal.InvalidOperation or OverflowError); never a Money.
    with pytest.raises((ValueError, ArithmeticError)):
        Money.from_decimal_string(text, "CNY")


@pytest.mark.parametrize("minor", [1.0, 0.5, True, False, "100", Decimal("100"), None])
def test_minor_must_be_a_real_int(minor: object) -> None:
    with pytest.raises(TypeError):
        Money(minor, "CNY")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["XXX", "cny", "", "RMB", "CNY "])
def test_unknown_currency_refused(currency: str) -> None:
    with pytest.raises(ValueError, match="unsupported currency"):
        Money(100, currency)
    with pytest.raises(ValueError):
        Money.from_decimal_string("1.00", currency)


def test_money_is_immutable_and_compares_by_value() -> None:
    money = Money(100, "CNY")
    with pytest.raises(AttributeError):
        money.minor = 200  # type: ignore[misc]
    assert money == Money(100, "CNY")
    assert money != Money(100, "HKD")
    assert len({money, Money(100, "CNY")}) == 1


def test_huge_string_with_too_many_decimals_is_refused() -> None:
    with pytest.raises(ValueError):
        Money.from_decimal_string("1234567890123456789012345678.901", "CNY")


def test_huge_amount_to_string_is_exact() -> None:
    assert Money(10**30 + 1, "CNY").to_decimal_string() == "10000000000000000000000000000.01"


def _outcome(parse: object, text: str, currency: str) -> object:
    try:
        return parse(text, currency)  # type: ignore[operator]
    except (ValueError, ArithmeticError) as exc:
        return type(exc), str(exc)


ODD_AMOUNTS = ["88.88", "88.8", "88", "5.", ".5", "0", "007.10", "-1.00", "+1.00", " 1.00", "1_000.00", "1e2", "88.885",
               "88.880", "", "NaN", "Infinity", "abc", "1.2.3", "٣.00", "²", "1.0001", "99999999999999999999999999999.99"]


@given(text=st.sampled_from(ODD_AMOUNTS) | st.builds(lambda units, places: str(Decimal(units).scaleb(-places)),
                                                     st.integers(-10**20, 10**20), st.integers(0, 4)),
       currency=st.sampled_from([*CURRENCIES, "XXX", "cny", ""]))
def test_minor_units_reads_every_string_as_from_decimal_string_does(text: str, currency: str) -> None:
    expected = _outcome(lambda t, c: Money.from_decimal_string(t, c).minor, text, currency)
    assert _outcome(minor_units, text, currency) == expected
