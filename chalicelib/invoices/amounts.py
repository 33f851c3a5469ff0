"""Invoice arithmetic in ``Decimal``, with one rounding rule written down and used everywhere.

The rule (docs/invoices.md#amounts-and-rounding):
- A line's amount is what the payer paid for it, tax included (价税合计), in fen: the hub holds what was paid,
  and 数电 invoices accept price-inclusive lines (``withTaxFlag`` 1).
- The line's tax is ``amount * rate / (1 + rate)`` rounded half-up to the fen (0.005 yuan goes up), computed
  per line, never on the total; the amount without tax is the line's amount minus that tax, so the two always
  add up to what was paid, to the fen.
- The invoice's totals are the sums of its lines (tax total = sum of the lines' rounded taxes).
- A red (reversing) invoice for part of a line takes the tax of what has been reversed of that line so far, by
  the same rule, minus the tax already reversed: the reversals of a line add up to exactly its tax once the
  whole line is reversed, and never more before.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from chalicelib.domain.value_class import value_class

FEN = Decimal("0.01")
# The VAT rates a 数电 line may carry (13 % goods, 9 %, 6 % services, 5 % / 3 % / 1 % simplified collection, 0).
RATES = tuple(Decimal(rate) for rate in ("0.13", "0.09", "0.06", "0.05", "0.03", "0.01", "0"))


def tax_in(amount_fen: int, rate: Decimal) -> int:
    """The tax contained in a price-inclusive amount, in fen, rounded half-up."""
    if rate not in RATES:
        raise ValueError(f"unsupported tax rate {rate}")
    exact = Decimal(amount_fen) * rate / (1 + rate)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@value_class
class LineAmounts:
    amount: int  # tax included, fen
    tax: int
    rate: Decimal

    @property
    def without_tax(self) -> int:
        return self.amount - self.tax


def line(amount_fen: int, rate: Decimal) -> LineAmounts:
    if amount_fen <= 0:
        raise ValueError("a line's amount must be positive")
    return LineAmounts(amount_fen, tax_in(amount_fen, rate), rate)


@value_class
class Totals:
    amount: int
    tax: int

    @property
    def without_tax(self) -> int:
        return self.amount - self.tax


def totals(lines: Sequence[LineAmounts]) -> Totals:
    return Totals(sum(item.amount for item in lines), sum(item.tax for item in lines))


def reversal_tax(line_amount: int, rate: Decimal, reversed_before: int, reversing: int) -> int:
    """The tax of reversing ``reversing`` fen more of a line of which ``reversed_before`` is already reversed."""
    if reversing <= 0 or reversed_before < 0 or reversed_before + reversing > line_amount:
        raise ValueError("a reversal must be positive and stay within the line")
    return tax_in(reversed_before + reversing, rate) - tax_in(reversed_before, rate)


def split(amount: int, weights: Sequence[int]) -> list[int]:
    """``amount`` fen spread over parts in proportion to ``weights`` (largest remainder, ties to the earlier
    part), each part at most its weight. Used to take a partial reversal from an invoice's lines."""
    total = sum(weights)
    if amount < 0 or amount > total or any(w < 0 for w in weights):
        raise ValueError("cannot split more than the weights hold")
    if total == 0:
        return [0 for _ in weights]
    shares = [amount * w // total for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in remainders[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def yuan(fen: int) -> str:
    """Fen as the provider's yuan string with two decimals ("-12.30" for a red line)."""
    return str((Decimal(fen) * FEN).quantize(FEN))


def fen(yuan_text: str) -> int:
    value = Decimal(yuan_text)
    cents = value / FEN
    if cents != cents.to_integral_value():
        raise ValueError(f"{yuan_text!r} is not a whole number of fen")
    return int(cents)
