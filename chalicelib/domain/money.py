"""Money as integer minor units plus an ISO 4217 currency. No float ever touches an amount."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

from chalicelib.domain.value_class import value_class

# Minor-unit exponent per currency (ISO 4217). Anything not listed has two decimals.
_EXPONENTS: dict[str, int] = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0, "PYG": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}
SUPPORTED_CURRENCIES = frozenset(
    {"CNY", "HKD", "USD", "EUR", "GBP", "SGD", "AUD", "CAD", "CHF", "MOP", "TWD", "THB", "MYR"} | set(_EXPONENTS)
)


def known_currencies(currencies: tuple[str, ...]) -> tuple[str, ...]:
    """A validator of configuration (channel accounts, routing rules): every currency is one the hub supports."""
    unknown = sorted(set(currencies) - SUPPORTED_CURRENCIES)
    if unknown:
        raise ValueError(f"unsupported currencies {unknown}")
    return currencies


def exponent(currency: str) -> int:
    """Number of decimals in the currency's minor unit."""
    return _EXPONENTS.get(currency, 2)


@value_class(slots=True)
class Money:
    """An amount in minor units (fen, cents, yen) of one currency."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError("Money.minor must be an int")
        if self.currency not in SUPPORTED_CURRENCIES:
            raise ValueError(f"unsupported currency {self.currency!r}")

    def to_decimal_string(self) -> str:
        """Major-unit string with exactly the currency's decimals: 8888 CNY -> '88.88'."""
        exp = exponent(self.currency)
        digits = str(abs(self.minor)).rjust(exp + 1, "0")
        sign = "-" if self.minor < 0 else ""
        return f"{sign}{digits[:-exp]}.{digits[-exp:]}" if exp else f"{sign}{digits}"

    @classmethod
    def from_decimal_string(cls, text: str, currency: str) -> Money:
        """Parse a major-unit string; refuses more decimals than the currency has."""
        exp = exponent(currency)
        with localcontext() as exact:
            exact.prec = 200  # far past any amount: scaling must never round
            try:
                value = Decimal(text)
            except InvalidOperation as exc:
                raise ValueError(f"{text!r} is not a decimal amount") from exc
            if not value.is_finite():
                raise ValueError(f"{text!r} is not a finite amount")
            scaled = value.scaleb(exp)
            if scaled != scaled.to_integral_value():
                raise ValueError(f"{text!r} has more than {exp} decimals for {currency}")
            return cls(int(scaled), currency)


def minor_units(text: str, currency: str) -> int:
    """``Money.from_decimal_string(text, currency).minor``: the same value and the same errors, but a plain
    ``digits[.digits]`` string with at most the currency's decimals ("88.88", "500", "0.5") is read with integer
    arithmetic instead of ``Decimal`` (statement parsers call this once per row); anything else takes the
    ``Decimal`` path."""
    if currency in SUPPORTED_CURRENCIES:
        whole, _, fraction = text.partition(".")
        exp = _EXPONENTS.get(currency, 2)
        if whole.isdigit() and len(fraction) <= exp and text.isascii():  # ASCII: isdigit() means 0-9 only
            if not fraction:
                return int(whole) * _TENS[exp]
            if fraction.isdigit():
                return int(whole + fraction) * _TENS[exp - len(fraction)]
    return Money.from_decimal_string(text, currency).minor


_TENS = tuple(10**power for power in range(max(_EXPONENTS.values()) + 1))
