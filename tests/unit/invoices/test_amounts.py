"""Invoice arithmetic: the rounding rule of chalicelib/invoices/amounts.py, as properties over any amounts."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.invoices import amounts

rates = st.sampled_from(amounts.RATES)
fen = st.integers(min_value=1, max_value=10**11)


def test_known_values():
    assert amounts.tax_in(6000, Decimal("0.13")) == 690  # 690.265...
    assert amounts.tax_in(2888, Decimal("0.06")) == 163  # 163.47...
    assert amounts.tax_in(113, Decimal("0.13")) == 13  # exactly 13
    assert amounts.tax_in(0, Decimal("0.13")) == 0
    assert amounts.tax_in(1751, Decimal("0.03")) == 51  # exactly 51
    assert amounts.tax_in(601, Decimal("0.03")) == 18  # 17.50485 -> 18
    assert amounts.tax_in(600, Decimal("0.03")) == 17  # 17.47572 -> 17


def test_an_exact_half_fen_cannot_arise():
    """rate/(1+rate) has an odd denominator for every rate (113, 109, 53, 21, 103, 101), so amount * rate / (1+rate)
    is never k + 0.5 fen: half-up and half-even agree on every amount."""
    for rate in amounts.RATES:
        if rate:
            assert (Fraction(rate) / (1 + Fraction(rate))).denominator % 2 == 1


@given(fen, rates)
def test_a_line_adds_up_and_its_tax_is_within_half_a_fen(amount, rate):
    line = amounts.line(amount, rate)
    assert line.without_tax + line.tax == amount
    exact = Decimal(amount) * rate / (1 + rate)
    assert abs(Decimal(line.tax) - exact) <= Decimal("0.5")
    assert line.tax == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert 0 <= line.tax < amount or (amount == 0)


@given(st.lists(st.tuples(fen, rates), min_size=1, max_size=30))
def test_totals_are_the_sums_of_the_lines_and_near_the_exact_tax(items):
    lines = [amounts.line(amount, rate) for amount, rate in items]
    total = amounts.totals(lines)
    assert total.amount == sum(a for a, _ in items)
    assert total.tax == sum(line.tax for line in lines)
    assert total.without_tax + total.tax == total.amount
    exact = sum(Decimal(a) * r / (1 + r) for a, r in items)
    assert abs(Decimal(total.tax) - exact) <= Decimal("0.5") * len(items)


@given(fen, rates, st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=20))
def test_partial_reversals_never_exceed_the_line_and_add_up_to_its_tax(amount, rate, cuts):
    line = amounts.line(amount, rate)
    reversed_amount = reversed_tax = 0
    for cut in cuts:
        step = min(cut, amount - reversed_amount)
        if step <= 0:
            break
        tax = amounts.reversal_tax(amount, rate, reversed_amount, step)
        assert 0 <= tax <= step
        reversed_amount += step
        reversed_tax += tax
        assert reversed_tax <= line.tax
        assert reversed_tax == amounts.tax_in(reversed_amount, rate)
    if reversed_amount < amount:
        reversed_tax += amounts.reversal_tax(amount, rate, reversed_amount, amount - reversed_amount)
    assert reversed_tax == line.tax  # the whole line reversed: exactly its tax, to the fen


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=20), st.data())
def test_split_is_proportional_whole_and_within_each_part(weights, data):
    amount = data.draw(st.integers(min_value=0, max_value=sum(weights)))
    shares = amounts.split(amount, weights)
    assert sum(shares) == amount
    total = sum(weights)
    for share, weight in zip(shares, weights, strict=True):
        assert 0 <= share <= weight
        if total:
            assert abs(share * total - amount * weight) < total  # within one fen of the exact share


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_yuan_strings_round_trip(value):
    assert amounts.fen(amounts.yuan(value)) == value
