"""Stripe's amount units, which are not always ISO 4217's.

Stripe wants every ``amount`` as an integer in the currency's smallest unit *as Stripe defines it*
(docs.stripe.com/currencies): zero-decimal currencies (JPY, KRW, ...) as whole units; ISK and UGX, zero-decimal
in ISO 4217, still as two-decimal values whose last two digits are ``00`` (backwards compatibility); the
three-decimal currencies (BHD, JOD, KWD, OMR, TND) in thousandths whose last digit must be ``0``. The hub
keeps ISO minor units (``chalicelib.domain.money``), so conversion happens here and nowhere else.
"""

from __future__ import annotations

from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money, exponent

ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF",
                          "XOF", "XPF"})
# Zero-decimal in ISO 4217, two-decimal on Stripe's wire with the fraction always 00.
WHOLE_TWO_DECIMAL = frozenset({"ISK", "UGX"})
# Three-decimal: Stripe's partners need the least significant digit to be 0.
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Currencies the hub knows that Stripe does not offer as presentment currencies.
NOT_ON_STRIPE = frozenset({"LYD", "IQD"})
STRIPE_CURRENCIES = frozenset(SUPPORTED_CURRENCIES - NOT_ON_STRIPE)


def stripe_exponent(currency: str) -> int:
    """Decimals of Stripe's ``amount`` for ``currency`` (upper-case ISO code)."""
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2  # two-decimal, including ISK and UGX


def _scale(currency: str) -> int:
    shift = stripe_exponent(currency) - exponent(currency)
    if shift < 0:  # no supported currency has fewer decimals on Stripe than in ISO; refuse rather than round
        raise ValueError(f"{currency} has fewer decimals on Stripe than in ISO 4217")
    return 10**shift


def check_currency(currency: str) -> str:
    if currency not in STRIPE_CURRENCIES:
        raise ValueError(f"Stripe does not take payments in {currency}")
    return currency


def to_wire(money: Money) -> int:
    """Money (ISO minor units) -> Stripe ``amount``; raises ValueError when Stripe cannot take it exactly."""
    currency = check_currency(money.currency)
    if money.minor < 0:
        raise ValueError("amount must not be negative")
    wire = money.minor * _scale(currency)
    if currency in THREE_DECIMAL and wire % 10:
        raise ValueError(f"Stripe needs {currency} amounts whose last (thousandths) digit is 0")
    return wire


def from_wire(amount: object, currency: object) -> Money:
    """Stripe ``amount`` + lower-case ``currency`` -> Money; refuses anything that is not exact."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise ValueError("Stripe amount must be a non-negative integer")
    if not isinstance(currency, str) or not currency:
        raise ValueError("Stripe currency is missing")
    code = check_currency(currency.upper())
    minor, remainder = divmod(amount, _scale(code))
    if remainder:
        raise ValueError(f"Stripe amount {amount} is not a whole number of {code} minor units")
    return Money(minor, code)


def wire_currency(money: Money) -> str:
    return check_currency(money.currency).lower()
