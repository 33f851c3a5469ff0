"""Conversion at a locked rate: exponents, the truncation rule, and refund sequences that never let more out
than came in, in either currency (property tests)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.domain import fx, ledger
from chalicelib.domain.fx import FxError, Locked, RateSnapshot
from chalicelib.domain.money import Money, exponent

CURRENCIES = ("USD", "CNY", "JPY", "KWD", "EUR", "KRW", "BHD")
pairs = st.tuples(st.sampled_from(CURRENCIES), st.sampled_from(CURRENCIES)).filter(lambda p: p[0] != p[1])
# Rates as an operator would type them: 1-10 integer digits at most, up to 10 decimals, positive.
rates = st.decimals(min_value=Decimal("0.0000001"), max_value=Decimal("50000"), places=7).map(
    lambda d: format(d.normalize(), "f"))


def snapshot(pair: str, rate: str) -> RateSnapshot:
    return RateSnapshot(rate_id="fxr_1", pair=pair, rate=rate, source="test", as_of="2026-12-01T00:00:00.000Z",
                        valid_until="2026-12-01T01:00:00.000Z")


def test_exponents_are_applied_on_both_sides():
    assert fx.convert(Money(10_000, "USD"), "7.1234", "CNY") == Money(71_234, "CNY")  # 100.00 USD -> 712.34 CNY
    assert fx.convert(Money(1_000, "JPY"), "0.048", "CNY") == Money(4_800, "CNY")  # 1000 JPY -> 48.00 CNY
    assert fx.convert(Money(4_800, "CNY"), "20.8333", "JPY") == Money(999, "JPY")  # 999.9984 JPY, truncated
    assert fx.convert(Money(100, "CNY"), "0.0432", "KWD") == Money(43, "KWD")  # 1.00 CNY -> 0.043 KWD (0.0432)
    assert fx.convert(Money(1_234, "KWD"), "23.1", "CNY") == Money(2_850, "CNY")  # 1.234 KWD -> 28.5054 -> 28.50


def test_truncation_is_toward_zero_never_up():
    assert fx.convert(Money(1, "USD"), "0.999", "EUR") == Money(0, "EUR")
    assert fx.convert(Money(3, "USD"), "0.3333333333", "CNY") == Money(0, "CNY")
    assert fx.convert(Money(999, "CNY"), "1.0009", "HKD") == Money(999, "HKD")  # 9.998991 -> 9.99


@pytest.mark.parametrize("rate", ["0", "-1", "1e3", "7,12", "", "1.12345678901", "NaN", "12345678901"])
def test_bad_rates_are_refused_naming_the_field(rate):
    with pytest.raises(FxError) as refused:
        fx.parse_rate(rate)
    assert refused.value.field == "rate"


@pytest.mark.parametrize("pair", ["USDUSD", "usdcny", "USD/CNY", "USDXXX", "USDCN"])
def test_bad_pairs_are_refused(pair):
    with pytest.raises(FxError) as refused:
        fx.parse_pair(pair)
    assert refused.value.field == "pair"


def test_a_snapshot_is_valid_from_as_of_until_before_valid_until():
    from chalicelib.domain.clock import parse_iso

    snap = snapshot("USDCNY", "7.1")
    assert snap.valid_at(parse_iso("2026-12-01T00:00:00.000Z"))
    assert snap.valid_at(parse_iso("2026-12-01T00:59:59.999Z"))
    assert not snap.valid_at(parse_iso("2026-12-01T01:00:00.000Z"))
    assert not snap.valid_at(parse_iso("2026-11-30T23:59:59.999Z"))
    with pytest.raises(FxError) as refused:
        RateSnapshot(rate_id="fxr_2", pair="USDCNY", rate="7.1", source="x", as_of=snap.valid_until,
                     valid_until=snap.as_of)
    assert refused.value.field == "valid_until"


def test_an_amount_that_converts_to_nothing_is_refused():
    with pytest.raises(FxError) as refused:
        fx.lock(Money(1, "KRW"), snapshot("KRWKWD", "0.00022"))
    assert refused.value.field == "amount"


@settings(max_examples=400, deadline=None)
@given(pair=pairs, rate=rates, minor=st.integers(1, 10**12))
def test_conversion_is_the_exact_product_truncated(pair, rate, minor):
    base, quote = pair
    converted = fx.convert(Money(minor, base), rate, quote)
    exact = Decimal(minor) * Decimal(rate) * Decimal(10) ** (exponent(quote) - exponent(base))
    assert converted.currency == quote
    assert converted.minor <= exact < converted.minor + 1


@settings(max_examples=300, deadline=None)
@given(pair=pairs, rate=rates, minor=st.integers(1, 10**9))
def test_round_trip_never_gains(pair, rate, minor):
    """Converting there and back at the inverse of the same rate (truncated to the 10 decimals a rate may
    have) never gives more than went in: every step truncates toward zero."""
    base, quote = pair
    there = fx.convert(Money(minor, base), rate, quote)
    inverse = format((Decimal(1) / Decimal(rate)).quantize(Decimal("1e-10"), rounding=ROUND_DOWN), "f")
    if Decimal(inverse) <= 0 or len(inverse.split(".")[0]) > 10:
        return
    back = fx.convert(there, inverse, base) if there.minor else Money(0, base)
    assert back.minor <= minor


@st.composite
def refund_sequences(draw: st.DrawFn) -> tuple[Locked, list[int]]:
    base, quote = draw(pairs)
    rate = draw(rates)
    minor = draw(st.integers(1, 10**9))
    settled = fx.convert(Money(minor, base), rate, quote)
    if settled.minor <= 0:
        settled = Money(draw(st.integers(1, 10**6)), quote)  # any locked ratio: the refund rule needs none
    left, parts = minor, []
    while left and len(parts) < 30:
        part = draw(st.integers(1, left))
        parts.append(part)
        left -= part
    return Locked(Money(minor, base), settled), parts


@settings(max_examples=400, deadline=None)
@given(case=refund_sequences())
def test_refunds_never_exceed_the_original_and_a_full_sequence_ends_at_zero(case):
    locked, parts = case
    state = locked
    for part in parts:
        before = state
        state, back = state.refund(part)
        assert back.currency == locked.settlement.currency
        assert 0 <= back.minor <= locked.settlement.minor - before.refunded_settlement
        # proportional, truncated: a partial refund never takes more than its share
        if state.refunded_presentment < locked.presentment.minor:
            assert back.minor * locked.presentment.minor <= part * locked.settlement.minor
        assert state.refunded_presentment <= locked.presentment.minor
        assert state.refunded_settlement <= locked.settlement.minor
    if sum(parts) == locked.presentment.minor:
        assert state.refunded_presentment == locked.presentment.minor
        assert state.refunded_settlement == locked.settlement.minor


@settings(max_examples=200, deadline=None)
@given(case=refund_sequences())
def test_the_refund_journals_close_the_position_in_each_currency(case):
    locked, parts = case
    journals = [ledger.fx_payment_captured("att_1", "acct", "m1", locked.presentment, locked.settlement)]
    state = locked
    for n, part in enumerate(parts):
        state, back = state.refund(part)
        journals.append(ledger.fx_refund_paid(f"re_{n}", "acct", "m1", Money(part, locked.presentment.currency),
                                              back))
    balances: dict[str, int] = {}
    for journal in journals:
        for entry in journal.entries:
            balances[entry.account] = balances.get(entry.account, 0) + entry.amount
    payable = ledger.merchant_payable_account("m1", locked.settlement.currency)
    assert -balances.get(payable, 0) == locked.settlement.minor - state.refunded_settlement
    if sum(parts) == locked.presentment.minor:
        assert all(amount == 0 for amount in balances.values()), balances


def test_a_refund_larger_than_what_is_left_is_refused():
    locked = Locked(Money(1_000, "USD"), Money(7_100, "CNY"))
    state, _ = locked.refund(600)
    with pytest.raises(FxError):
        state.refund(401)


@settings(max_examples=200, deadline=None)
@given(cleared=st.integers(1, 10**9), locked=st.integers(1, 10**9), received=st.integers(1, 10**9))
def test_a_channel_settling_at_its_own_rate_books_the_difference(cleared, locked, received):
    journal = ledger.fx_channel_settled("stl_1", "acct", "rsv", Money(cleared, "USD"), Money(locked, "CNY"),
                                        Money(received, "CNY"))
    by_account = {entry.account: entry.amount for entry in journal.entries}
    assert by_account.get(ledger.fx_difference_account("CNY"), 0) == locked - received  # debit: a loss
    assert by_account[ledger.reserve_account("rsv", "CNY")] == received
    assert by_account[ledger.clearing_account("acct", "USD")] == -cleared


class RefundReservations(RuleBasedStateMachine):
    """The payment's counters as the refund flow keeps them: refunds reserve both sides at creation (from the
    counters as they stand), then succeed or fail in any order; a failure gives both sides back."""

    @initialize(presentment=st.integers(1, 10**7), settlement=st.integers(1, 10**7))
    def captured(self, presentment: int, settlement: int) -> None:
        self.total = (presentment, settlement)
        self.refundable = [presentment, settlement]
        self.refunded = [0, 0]
        self.pending: list[tuple[int, int]] = []

    @precondition(lambda self: hasattr(self, "total") and self.refundable[0] > 0)
    @rule(data=st.data())
    def reserve(self, data: st.DataObject) -> None:
        left = self.refundable[0]
        part = data.draw(st.one_of(st.just(left), st.integers(1, left)))
        side = fx.settlement_side(part, presentment_total=self.total[0], settlement_total=self.total[1],
                                  presentment_left=left, settlement_left=self.refundable[1])
        self.refundable = [left - part, self.refundable[1] - side]
        self.pending.append((part, side))

    @precondition(lambda self: hasattr(self, "total") and bool(self.pending))
    @rule(data=st.data(), succeeded=st.booleans())
    def ends(self, data: st.DataObject, succeeded: bool) -> None:
        part, side = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        target = self.refunded if succeeded else self.refundable
        target[0] += part
        target[1] += side

    @rule()
    def nothing_happens(self) -> None:
        """Always possible (a payment fully refunded has nothing left to do)."""

    @invariant()
    def never_more_out_than_in(self) -> None:
        if not hasattr(self, "total"):
            return
        for side in (0, 1):
            pending = sum(p[side] for p in self.pending)
            assert self.refundable[side] >= 0 and pending >= 0
            assert self.refunded[side] + pending + self.refundable[side] == self.total[side]
        if self.refunded[0] == self.total[0]:
            assert self.refunded[1] == self.total[1]  # everything refunded: exactly the settlement booked


RefundReservations.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestRefundReservations = RefundReservations.TestCase
