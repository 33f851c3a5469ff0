"""Currency conversion for payments presented in one currency and settled to the merchant in another.

A payer sees the *presentment* amount (what the channel charges); the merchant is owed the *settlement* amount.
The two are tied by a rate snapshot locked when the payment is created and never looked up again: captures and
refunds of that payment convert at the locked rate, whatever the market does meanwhile (docs/fx.md).

Rounding, one rule everywhere: a converted amount is truncated toward zero to the settlement currency's minor
unit, and the remainder lands on the last refund.
- capture: ``settlement = trunc(presentment * rate)`` in minor units, exponents applied (JPY 0, CNY 2, KWD 3);
- a partial refund of ``p`` presentment units takes ``trunc(p * S / P)`` settlement units of the payment's locked
  ``P`` -> ``S`` (never more than what is left of ``S``), and the refund that takes the last of the presentment
  amount takes exactly what is left of ``S``. So refunds never take back more than the capture booked, in either
  currency, and a full refund sequence brings both to exactly zero.
Only integers and ``Decimal`` touch amounts and rates; a rate is a decimal string, never a float.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from typing import Any

from chalicelib.domain.clock import parse_iso
from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money, exponent
from chalicelib.domain.value_class import value_class

RATE_MAX_DECIMALS = 10  # 1 USD = 7.1234567891 CNY at most; finer rates are refused, not rounded
RATE_MAX_DIGITS = 20
_PAIR = re.compile(r"^([A-Z]{3})([A-Z]{3})$")
_RATE_TEXT = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,10})?$")
_SOURCE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


class FxError(ValueError):
    """A rate, pair or conversion the hub refuses; ``field`` names what was wrong."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def parse_pair(text: str) -> tuple[str, str]:
    """``USDCNY`` -> (``USD``, ``CNY``): the presentment (base) and settlement (quote) currencies, both
    supported and different."""
    found = _PAIR.fullmatch(text)
    if not found:
        raise FxError(f"pair {text!r} must be two ISO 4217 codes, e.g. USDCNY", "pair")
    base, quote = found.groups()
    for currency in (base, quote):
        if currency not in SUPPORTED_CURRENCIES:
            raise FxError(f"pair {text!r}: unsupported currency {currency}", "pair")
    if base == quote:
        raise FxError(f"pair {text!r} converts a currency to itself", "pair")
    return base, quote


def parse_rate(text: str) -> Decimal:
    """A rate as a plain positive decimal string: quote major units per one base major unit (``7.1234``)."""
    if not isinstance(text, str) or not _RATE_TEXT.fullmatch(text):
        raise FxError(f"rate {text!r} must be a positive decimal with at most {RATE_MAX_DECIMALS} decimals", "rate")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # the pattern lets only digits through; kept for a clear error anyway
        raise FxError(f"rate {text!r} is not a decimal", "rate") from exc
    if value <= 0:
        raise FxError("rate must be greater than zero", "rate")
    return value


def check_source(text: str) -> str:
    if not isinstance(text, str) or not _SOURCE.fullmatch(text):
        raise FxError("source must be 1-64 letters, digits or _.:-", "source")
    return text


@value_class
class RateSnapshot:
    """One published rate: 1 ``base`` = ``rate`` ``quote``, from ``source``, quoted at ``as_of`` and usable
    until ``valid_until`` (exclusive). Snapshots are never changed; a new rate is a new snapshot."""

    rate_id: str
    pair: str
    rate: str  # canonical decimal string
    source: str
    as_of: str  # ISO 8601 UTC
    valid_until: str

    def __post_init__(self) -> None:
        parse_pair(self.pair)
        parse_rate(self.rate)
        check_source(self.source)
        if parse_iso(self.valid_until) <= parse_iso(self.as_of):
            raise FxError("valid_until must be after as_of", "valid_until")

    @property
    def base(self) -> str:
        return self.pair[:3]

    @property
    def quote(self) -> str:
        return self.pair[3:]

    def valid_at(self, moment: datetime) -> bool:
        return parse_iso(self.as_of) <= moment < parse_iso(self.valid_until)

    def record(self) -> dict[str, Any]:
        """What a payment keeps of the snapshot it locked (and shows in its public shape)."""
        return {"id": self.rate_id, "pair": self.pair, "rate": self.rate, "source": self.source,
                "as_of": self.as_of, "valid_until": self.valid_until}


def convert(amount: Money, rate: str, to: str) -> Money:
    """``amount`` at ``rate`` (``to`` units per one unit of ``amount``'s currency, major units), truncated
    toward zero to ``to``'s minor unit. Exact: the product is computed with far more digits than it can have."""
    value = parse_rate(rate)
    if amount.currency == to:
        raise FxError("conversion to the same currency", "settlement_currency")
    with localcontext() as exact:
        exact.prec = 80  # 13 digits of amount + 20 of rate + 3 of exponent shift: never rounded before the end
        scaled = (Decimal(amount.minor) * value).scaleb(exponent(to) - exponent(amount.currency))
        return Money(int(scaled.to_integral_value(rounding=ROUND_DOWN)), to)


def settlement_side(refund_minor: int, *, presentment_total: int, settlement_total: int,
                    presentment_left: int, settlement_left: int) -> int:
    """The settlement units a refund of ``refund_minor`` presentment units takes back, at the locked ratio
    ``settlement_total / presentment_total``: truncated, capped at what is left, and everything left when it
    refunds the last of the presentment amount. ``*_left``: not yet refunded nor reserved by a pending refund."""
    if not 0 < refund_minor <= presentment_left <= presentment_total:
        raise FxError(f"refund of {refund_minor} with {presentment_left} of {presentment_total} left", "amount")
    if not 0 <= settlement_left <= settlement_total:
        raise FxError(f"{settlement_left} of {settlement_total} settlement units left", "amount")
    if refund_minor == presentment_left:
        return settlement_left
    return min(refund_minor * settlement_total // presentment_total, settlement_left)


@value_class
class Locked:
    """A payment's conversion at its locked rate and what has been refunded of it on each side: the pure
    model of the counters a payment keeps (tests run refund sequences against it)."""

    presentment: Money
    settlement: Money
    refunded_presentment: int = 0
    refunded_settlement: int = 0

    def refund(self, minor: int) -> tuple[Locked, Money]:
        """Refund ``minor`` presentment units: the new state and the settlement amount taken back."""
        side = settlement_side(minor, presentment_total=self.presentment.minor,
                               settlement_total=self.settlement.minor,
                               presentment_left=self.presentment.minor - self.refunded_presentment,
                               settlement_left=self.settlement.minor - self.refunded_settlement)
        return (Locked(self.presentment, self.settlement, self.refunded_presentment + minor,
                       self.refunded_settlement + side), Money(side, self.settlement.currency))


def lock(amount: Money, snapshot: RateSnapshot) -> Locked:
    """A payment of ``amount`` converted at ``snapshot``; refused when it converts to nothing."""
    if amount.currency != snapshot.base:
        raise FxError(f"rate {snapshot.pair} does not convert {amount.currency}", "currency")
    settled = convert(amount, snapshot.rate, snapshot.quote)
    if settled.minor <= 0:
        raise FxError(f"{amount.to_decimal_string()} {amount.currency} is less than one minor unit of "
                      f"{snapshot.quote} at {snapshot.rate}", "amount")
    return Locked(amount, settled)
