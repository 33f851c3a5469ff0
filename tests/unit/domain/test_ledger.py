"""Double-entry journals: every journal balances per currency; ids are deterministic per (purpose, reference)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.ledger import (
    Entry,
    Journal,
    clearing_account,
    journal_id,
    merchant_payable_account,
    payment_captured,
    refund_paid,
)
from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money

CURRENCIES = sorted(SUPPORTED_CURRENCIES)
AMOUNTS = st.integers(min_value=1, max_value=10**15)
IDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0234567_", min_size=1, max_size=30)


def totals(journal: Journal) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for entry in journal.entries:
        sums[entry.currency] += entry.amount
    return dict(sums)


def test_payment_captured_debits_clearing_and_credits_the_merchant() -> None:
    journal = payment_captured("att_1", "acct_1", "mch_1", Money(8888, "CNY"))
    assert journal.purpose == "payment_captured" and journal.reference == "att_1"
    assert journal.journal_id == journal_id("payment_captured", "att_1")
    assert journal.entries == (
        Entry("channel_clearing:acct_1:CNY", 8888, "CNY"),
        Entry("merchant_payable:mch_1:CNY", -8888, "CNY"),
    )


def test_refund_paid_reverses_a_capture() -> None:
    journal = refund_paid("re_1", "acct_1", "mch_1", Money(100, "JPY"))
    assert journal.purpose == "refund_paid" and journal.reference == "re_1"
    assert journal.entries == (
        Entry("merchant_payable:mch_1:JPY", 100, "JPY"),
        Entry("channel_clearing:acct_1:JPY", -100, "JPY"),
    )


@given(amount=AMOUNTS, currency=st.sampled_from(CURRENCIES), reference=IDS, account=IDS, merchant=IDS)
def test_generated_journals_sum_to_zero_per_currency(amount: int, currency: str, reference: str, account: str,
                                                     merchant: str) -> None:
    money = Money(amount, currency)
    captured = payment_captured(reference, account, merchant, money)
    refunded = refund_paid(reference, account, merchant, money)
    for journal in (captured, refunded):
        assert totals(journal) == {currency: 0}
        assert all(entry.currency == currency and entry.amount != 0 for entry in journal.entries)
        assert {e.account for e in journal.entries} == {clearing_account(account, currency),
                                                        merchant_payable_account(merchant, currency)}
    # A full refund brings every account back to zero.
    balances: dict[str, int] = defaultdict(int)
    for entry in captured.entries + refunded.entries:
        balances[entry.account] += entry.amount
    assert set(balances.values()) == {0}
    assert captured.journal_id != refunded.journal_id


@given(legs=st.lists(st.tuples(st.sampled_from(CURRENCIES), AMOUNTS), min_size=1, max_size=5))
def test_any_balanced_multi_currency_journal_is_accepted(legs: list[tuple[str, int]]) -> None:
    entries = []
    for index, (currency, amount) in enumerate(legs):
        entries += [Entry(f"a:{index}", amount, currency), Entry(f"b:{index}", -amount, currency)]
    journal = Journal(journal_id("test", "x"), "test", "x", tuple(entries))
    assert set(totals(journal).values()) == {0}


@given(legs=st.lists(st.tuples(st.sampled_from(CURRENCIES), AMOUNTS), min_size=1, max_size=5),
       skew=st.integers(min_value=1, max_value=10**6), which=st.integers(min_value=0))
def test_any_unbalanced_journal_is_refused(legs: list[tuple[str, int]], skew: int, which: int) -> None:
    entries = []
    for index, (currency, amount) in enumerate(legs):
        entries += [Entry(f"a:{index}", amount, currency), Entry(f"b:{index}", -amount, currency)]
    victim = which % len(entries)
    entries[victim] = Entry(entries[victim].account, entries[victim].amount + skew, entries[victim].currency)
    with pytest.raises(ValueError, match="does not balance|move money"):
        Journal("jrn_x", "test", "x", tuple(entries))


@pytest.mark.parametrize("entries", [
    (Entry("a", 100, "CNY"), Entry("b", -99, "CNY")),
    (Entry("a", 100, "CNY"), Entry("b", -100, "HKD")),  # zero overall, but not per currency
    (Entry("a", 100, "CNY"), Entry("b", -100, "CNY"), Entry("c", 1, "USD")),
    (Entry("a", 100, "CNY"),),
], ids=["short", "cross_currency", "extra_leg", "one_leg"])
def test_unbalanced_journals_raise(entries: tuple[Entry, ...]) -> None:
    with pytest.raises(ValueError, match="does not balance"):
        Journal("jrn_x", "test", "x", entries)


def test_empty_journal_and_zero_entries_refused() -> None:
    with pytest.raises(ValueError):
        Journal("jrn_x", "test", "x", ())
    with pytest.raises(ValueError, match="move money"):
        Journal("jrn_x", "test", "x", (Entry("a", 0, "CNY"), Entry("b", 0, "CNY")))


def test_journals_are_immutable() -> None:
    journal = payment_captured("att_1", "acct_1", "mch_1", Money(1, "CNY"))
    with pytest.raises(AttributeError):
        journal.entries = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        journal.entries[0].amount = 5  # type: ignore[misc]


@given(purpose=IDS, reference=IDS)
def test_journal_id_is_deterministic(purpose: str, reference: str) -> None:
    assert journal_id(purpose, reference) == journal_id(purpose, reference)
    assert journal_id(purpose, reference).startswith("jrn_")
    assert len(journal_id(purpose, reference)) == 4 + 24


@given(reference=IDS, other=IDS)
def test_journal_ids_distinct_across_purposes_and_references(reference: str, other: str) -> None:
    assert journal_id("payment_captured", reference) != journal_id("refund_paid", reference)
    if other != reference:
        assert journal_id("payment_captured", reference) != journal_id("payment_captured", other)


def test_same_fact_posted_twice_has_the_same_id_whatever_the_amount() -> None:
    # The id is what refuses a second posting of the same capture (conditional put on the id).
    first = payment_captured("att_1", "acct_1", "mch_1", Money(100, "CNY"))
    second = payment_captured("att_1", "acct_2", "mch_1", Money(200, "CNY"))
    assert first.journal_id == second.journal_id
