"""Instalment schedules and fees as properties: exact sums, no negative instalment, the remainder on the first
instalment, each side's fee share, minimums refused with the field named, refunds returning the seller's fee once."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from chalicelib.domain.instalments import (
    FeePayer,
    FeeTable,
    InstalmentRefused,
    TermFee,
    fee_of,
    offers,
    schedule,
    seller_fee_returned,
)

rates = st.integers(0, 5_000)
principals = st.integers(1, 10**12)


@st.composite
def tables(draw: st.DrawFn, channel: str = "alipay") -> FeeTable:
    counts = draw(st.lists(st.sampled_from([3, 6, 12]), min_size=1, max_size=3, unique=True))
    return FeeTable(channel=channel, terms=tuple(
        TermFee(count=c, buyer_rate_bps=draw(rates), seller_rate_bps=draw(rates),
                minimum_minor=draw(st.integers(c, 100_000))) for c in counts))


@given(table=tables(), principal=principals, payer=st.sampled_from(list(FeePayer)), data=st.data())
def test_a_schedule_adds_up_exactly_with_the_remainder_on_the_first_instalment(table, principal, payer, data):
    term = data.draw(st.sampled_from(table.terms))
    if principal < term.minimum_minor:
        with pytest.raises(InstalmentRefused) as refused:
            schedule(table, principal, term.count, payer)
        assert refused.value.param == "amount"
        return
    plan = schedule(table, principal, term.count, payer)
    parts = plan.instalments
    assert len(parts) == term.count and [p.number for p in parts] == list(range(1, term.count + 1))
    assert sum(p.principal_minor for p in parts) == principal
    assert sum(p.fee_minor for p in parts) == plan.buyer_fee_minor
    assert sum(p.total_minor for p in parts) == plan.buyer_total_minor == principal + plan.buyer_fee_minor
    assert all(p.principal_minor >= 1 and p.fee_minor >= 0 for p in parts)
    # later instalments are equal; the first carries what the division left, less than one fen an instalment
    assert len({(p.principal_minor, p.fee_minor) for p in parts[1:]}) <= 1
    assert 0 <= parts[0].principal_minor - parts[-1].principal_minor < term.count
    assert 0 <= parts[0].fee_minor - parts[-1].fee_minor < term.count
    assert parts[0].principal_minor - parts[-1].principal_minor == principal % term.count


@given(table=tables(), principal=principals, payer=st.sampled_from(list(FeePayer)), data=st.data())
def test_the_fee_falls_on_one_side_only_at_its_rate_rounded_half_up(table, principal, payer, data):
    term = data.draw(st.sampled_from(table.terms))
    if principal < term.minimum_minor:
        return
    plan = schedule(table, principal, term.count, payer)
    rate = term.buyer_rate_bps if payer is FeePayer.BUYER else term.seller_rate_bps
    exact_fen_x10000 = principal * rate
    fee = plan.buyer_fee_minor + plan.seller_fee_minor
    assert abs(fee * 10_000 - exact_fen_x10000) <= 5_000  # within half a fen of the exact fee
    assert fee * 10_000 - exact_fen_x10000 != -5_000  # a half fen rounds up
    if payer is FeePayer.BUYER:
        assert plan.seller_fee_minor == 0 and plan.seller_net_minor == principal
    else:
        assert plan.buyer_fee_minor == 0 and plan.buyer_total_minor == principal
        assert all(p.fee_minor == 0 for p in plan.instalments)
        assert plan.seller_net_minor == principal - plan.seller_fee_minor >= 0


def test_published_huabei_rates_on_a_round_amount():
    table = FeeTable(channel="alipay", terms=(TermFee(3, 230, 230, 100), TermFee(6, 450, 450, 100),
                                              TermFee(12, 750, 750, 100)))
    plan = schedule(table, 100_000, 3, "buyer")  # 1000.00 yuan in 3: fee 23.00
    assert plan.buyer_fee_minor == 2_300
    assert [(i.principal_minor, i.fee_minor) for i in plan.instalments] == [(33_334, 768), (33_333, 766),
                                                                            (33_333, 766)]
    assert schedule(table, 100_000, 12, "seller").seller_fee_minor == 7_500
    assert fee_of(1, 5_000) == 1 and fee_of(1, 4_999) == 0  # half a fen rounds up, less rounds down


@pytest.mark.parametrize(("count", "payer", "amount", "param"), [
    (9, "buyer", 50_000, "instalments.count"),
    (6, "nobody", 50_000, "instalments.fee_payer"),
    (3, "buyer", 9_999, "amount"),
])
def test_refusals_name_their_field(count, payer, amount, param):
    table = FeeTable(channel="alipay", terms=(TermFee(3, 230, 180, 10_000), TermFee(6, 450, 450, 10_000)))
    with pytest.raises(InstalmentRefused) as refused:
        schedule(table, amount, count, payer)
    assert refused.value.param == param


def test_unionpay_instalments_are_paid_by_the_cardholder_only():
    table = FeeTable(channel="unionpay", terms=(TermFee(6, 300, 0, 10_000),))
    assert schedule(table, 60_000, 6, "buyer").buyer_fee_minor == 1_800
    with pytest.raises(InstalmentRefused) as refused:
        schedule(table, 60_000, 6, "seller")
    assert refused.value.param == "instalments.fee_payer"


@pytest.mark.parametrize(("document", "param"), [
    ({"channel": "alipay", "terms": [{"count": 5, "buyer_rate_bps": 1, "seller_rate_bps": 1, "minimum_minor": 5}]},
     "terms[0].count"),
    ({"channel": "alipay", "terms": [{"count": 3, "buyer_rate_bps": -1, "seller_rate_bps": 1, "minimum_minor": 5}]},
     "terms[0].buyer_rate_bps"),
    ({"channel": "alipay", "terms": [{"count": 3, "buyer_rate_bps": 1, "seller_rate_bps": 1}]},
     "terms[0].minimum_minor"),
    ({"channel": "alipay", "terms": [{"count": 3, "buyer_rate_bps": 1, "seller_rate_bps": 1, "minimum_minor": 2}]},
     "terms[0].minimum_minor"),
    ({"channel": "wechatpay", "terms": []}, "channel"),
    ({"channel": "alipay", "terms": [], "colour": "red"}, "colour"),
])
def test_a_bad_fee_table_is_refused_naming_the_field(document, param):
    with pytest.raises(InstalmentRefused) as refused:
        FeeTable.from_document(document)
    assert refused.value.param == param


@given(fee=st.integers(0, 10**9), principal=st.integers(1, 10**9), data=st.data())
def test_refunds_return_the_sellers_fee_in_proportion_and_exactly_once(fee, principal, data):
    cuts = data.draw(st.lists(st.integers(1, principal), max_size=8))
    refunded, returned = 0, 0
    for cut in cuts:
        cut = min(cut, principal - refunded)
        if cut == 0:
            break
        back = seller_fee_returned(fee, principal, refunded, cut)
        assert back >= 0
        refunded += cut
        returned += back
        assert returned == fee * refunded // principal  # never ahead of the refunded share
    rest = principal - refunded
    if rest:
        returned += seller_fee_returned(fee, principal, refunded, rest)
    assert returned == fee  # a payment refunded in full gives the whole fee back


def test_offers_are_the_buyers_terms_the_amount_reaches():
    table = FeeTable(channel="alipay", terms=(TermFee(12, 750, 750, 60_000), TermFee(3, 230, 230, 10_000)))
    assert [o.count for o in offers(table, 50_000)] == [3]
    assert [o.count for o in offers(table, 60_000)] == [3, 12]
    assert offers(None, 60_000) == []
