"""The sandbox's own copy of Stripe's currency rules (it never imports the hub): which currencies it takes,
how many decimals Stripe's ``amount`` has for each, and the special rules for ISK/UGX and three-decimal ones."""

from __future__ import annotations

ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf",
                          "xof", "xpf"})
WHOLE_TWO_DECIMAL = frozenset({"isk", "ugx"})  # two decimals on the wire, always 00
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})  # last digit must be 0
OTHER_SUPPORTED = frozenset({"usd", "eur", "gbp", "cny", "hkd", "sgd", "aud", "cad", "chf", "mop", "twd", "thb",
                             "myr", "nzd", "sek", "nok", "dkk", "pln", "czk", "huf", "inr", "mxn", "brl", "aed"})
SUPPORTED = ZERO_DECIMAL | WHOLE_TWO_DECIMAL | THREE_DECIMAL | OTHER_SUPPORTED


def decimals(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def amount_problem(amount: int, currency: str) -> tuple[str, str] | None:
    """(code, message) when Stripe would refuse ``amount`` in ``currency``; None when it is acceptable."""
    if currency in WHOLE_TWO_DECIMAL and amount % 100:
        return ("invalid_charge_amount_no_decimal_compatible",
                f"Invalid amount. Currency {currency.upper()} has become effectively zero-decimal and charged amounts "
                "must be evenly divisible by 100.")
    if currency in THREE_DECIMAL and amount % 10:
        return ("invalid_amount", f"Amounts in {currency.upper()} must have 0 as their last (thousandths) digit.")
    return None


def major(amount: int, currency: str) -> str:
    """Wire amount -> the major-unit decimal string the reports show (500 jpy -> "500", 1234 usd -> "12.34")."""
    places = decimals(currency)
    sign = "-" if amount < 0 else ""
    digits = str(abs(amount)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


def fee_for(amount: int, currency: str, rate_bps: int, fixed_fee: int) -> int:
    """Processing fee of a charge, in wire units: rate (half up) plus a fixed part for two-decimal currencies.
    ISK/UGX fees are whole units (multiples of 100), as their amounts are."""
    fee = (amount * rate_bps + 5_000) // 10_000
    if decimals(currency) == 2:
        fee += fixed_fee
    if currency in WHOLE_TWO_DECIMAL:
        fee = (fee + 50) // 100 * 100
    if currency in THREE_DECIMAL:
        fee = (fee + 5) // 10 * 10
    return fee
