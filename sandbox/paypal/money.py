"""Amounts as PayPal puts them on the wire, written for the sandbox (it never imports the hub).

The sandbox books integer minor units of ISO 4217 (cents, yen); PayPal's ``value`` strings use PayPal's own
decimals, which are 0 for HUF, JPY and TWD even where ISO says 2.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

ISO_DECIMALS = {"JPY": 0}
PAYPAL_NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})
CURRENCIES = frozenset({"AUD", "CAD", "CHF", "CNY", "EUR", "GBP", "HKD", "HUF", "JPY", "MYR", "SGD", "THB", "TWD",
                        "USD"})


class AmountError(ValueError):
    """A value PayPal would refuse; ``issue`` is PayPal's issue code."""

    def __init__(self, issue: str, message: str) -> None:
        super().__init__(message)
        self.issue = issue


def iso_decimals(currency: str) -> int:
    return ISO_DECIMALS.get(currency, 2)


def wire_decimals(currency: str) -> int:
    return 0 if currency in PAYPAL_NO_DECIMALS else iso_decimals(currency)


def parse_value(currency: str, value: object) -> int:
    """PayPal ``value`` string -> minor units; refuses what PayPal refuses."""
    if currency not in CURRENCIES:
        raise AmountError("CURRENCY_NOT_SUPPORTED", f"currency {currency!r} is not supported")
    if not isinstance(value, str) or not value or value.startswith(("-", "+")) or " " in value:
        raise AmountError("INVALID_PARAMETER_SYNTAX", "amount value must be a positive decimal string")
    whole, dot, fraction = value.partition(".")
    if not whole.isdigit() or (dot and not fraction.isdigit()):
        raise AmountError("INVALID_PARAMETER_SYNTAX", f"amount value {value!r} is not a decimal")
    if len(fraction) > wire_decimals(currency):
        raise AmountError("DECIMAL_PRECISION", f"{currency} takes at most {wire_decimals(currency)} decimals")
    try:
        minor = Decimal(value).scaleb(iso_decimals(currency))
    except InvalidOperation as exc:
        raise AmountError("INVALID_PARAMETER_SYNTAX", "amount value is not a decimal") from exc
    if minor <= 0:
        raise AmountError("AMOUNT_MUST_BE_POSITIVE", "amount must be greater than zero")
    return int(minor)


def format_value(currency: str, minor: int, *, negative: bool = False) -> str:
    """Minor units -> PayPal ``value`` with PayPal's decimals (whole units for no-decimal currencies)."""
    drop = iso_decimals(currency) - wire_decimals(currency)
    units = abs(minor) // 10**drop
    decimals = wire_decimals(currency)
    digits = str(units).rjust(decimals + 1, "0")
    text = f"{digits[:-decimals]}.{digits[-decimals:]}" if decimals else digits
    return f"-{text}" if negative and minor else text


def amount(currency: str, minor: int, *, negative: bool = False) -> dict[str, str]:
    return {"currency_code": currency, "value": format_value(currency, minor, negative=negative)}


def fee_minor(currency: str, minor: int, rate_bps: int, fixed_minor: int) -> int:
    """PayPal's fee (percentage + fixed), rounded half up to what the currency can express on PayPal's wire."""
    step = 10 ** (iso_decimals(currency) - wire_decimals(currency))
    raw = minor * rate_bps  # in 1/10000 minor units
    units = (raw + 5000 * step) // (10000 * step)
    return units * step + fixed_minor
