"""PayPal wire amounts: ``{"currency_code": "USD", "value": "10.00"}``, a decimal string in major units.

PayPal's decimals per currency are not always ISO 4217's: HUF, JPY and TWD take no decimals at all (a decimal
value is refused), so a TWD amount must be whole dollars even though the hub counts TWD in cents. Conversion
happens here only; the rest of the hub speaks ``Money`` (integer minor units).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.money import Money, exponent

# Currencies PayPal takes for payments that the hub also supports (PayPal's list is longer; KRW, MOP and the
# three-decimal currencies are not on it).
PAYPAL_CURRENCIES = frozenset(
    {"AUD", "CAD", "CHF", "CNY", "EUR", "GBP", "HKD", "JPY", "MYR", "SGD", "THB", "TWD", "USD"}
)
# Currencies PayPal refuses decimals for, whatever ISO 4217 says.
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})


def wire_decimals(currency: str) -> int:
    return 0 if currency in NO_DECIMALS else exponent(currency)


def to_wire(amount: Money) -> dict[str, str]:
    """``Money`` -> PayPal amount object; ValueError when PayPal cannot express it exactly."""
    if amount.currency not in PAYPAL_CURRENCIES:
        raise ValueError(f"PayPal does not take {amount.currency}")
    if amount.minor <= 0:
        raise ValueError("PayPal amounts must be greater than zero")
    drop = exponent(amount.currency) - wire_decimals(amount.currency)
    if drop and amount.minor % 10**drop:
        raise ValueError(f"PayPal takes no decimals for {amount.currency}: {amount.to_decimal_string()} is not whole")
    units = amount.minor // 10**drop
    decimals = wire_decimals(amount.currency)
    digits = str(units).rjust(decimals + 1, "0")
    value = f"{digits[:-decimals]}.{digits[-decimals:]}" if decimals else digits
    return {"currency_code": amount.currency, "value": value}


def from_wire(block: Any, *, signed: bool = False) -> Money:
    """PayPal amount object -> ``Money``; ValueError on anything malformed (never a float, never rounded).

    ``signed``: allow a leading minus (reporting amounts of refunds and fees are negative).
    """
    if not isinstance(block, Mapping):
        raise ValueError("amount is not an object")
    currency, value = block.get("currency_code"), block.get("value")
    if not isinstance(currency, str) or not isinstance(value, str) or not value:
        raise ValueError("amount lacks currency_code or value")
    text = value[1:] if signed and value.startswith("-") else value
    whole, dot, fraction = text.partition(".")
    if not whole.isdigit() or (dot and not fraction.isdigit()) or len(fraction) > wire_decimals(currency):
        raise ValueError(f"amount value {value!r} is not a {currency} decimal")
    money = Money.from_decimal_string(value, currency)  # exact; refuses more decimals than the hub keeps
    return money
