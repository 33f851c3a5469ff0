"""The journals of bank transfers in: a credit's arrival (alone, or completing its order), an order applied from
receipts, an excess returned or kept, a refund out of the reserve."""

from __future__ import annotations

import pytest

from chalicelib.domain import ledger
from chalicelib.domain.money import Money


def lines(journal: ledger.Journal) -> dict[str, int]:
    return {entry.account: entry.amount for entry in journal.entries}


def test_a_credit_nobody_has_applied_yet_waits_in_the_receipts() -> None:
    journal = ledger.bank_credit_received("rcp_1", "rsv", Money(5_000, "CNY"))
    assert lines(journal) == {"reserve:rsv:CNY": 5_000, "bank_receipts:rsv:CNY": -5_000}
    assert journal.journal_id == ledger.journal_id("bank_credit_received", "rcp_1")


def test_an_exact_credit_goes_straight_to_the_channels_clearing_in_one_journal() -> None:
    journal = ledger.bank_credit_received("rcp_2", "rsv", Money(5_000, "CNY"), applies=("bt", Money(5_000, "CNY")))
    assert lines(journal) == {"reserve:rsv:CNY": 5_000, "channel_clearing:bt:CNY": -5_000}


def test_the_last_part_takes_the_earlier_parts_out_of_the_receipts() -> None:
    journal = ledger.bank_credit_received("rcp_3", "rsv", Money(2_000, "CNY"), applies=("bt", Money(5_000, "CNY")))
    assert lines(journal) == {"reserve:rsv:CNY": 2_000, "bank_receipts:rsv:CNY": 3_000, "channel_clearing:bt:CNY": -5_000}


def test_an_excess_stays_in_the_receipts() -> None:
    journal = ledger.bank_credit_received("rcp_4", "rsv", Money(7_000, "CNY"), applies=("bt", Money(5_000, "CNY")))
    assert lines(journal) == {"reserve:rsv:CNY": 7_000, "bank_receipts:rsv:CNY": -2_000, "channel_clearing:bt:CNY": -5_000}


def test_an_application_in_another_currency_or_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="applies"):
        ledger.bank_credit_received("rcp_5", "rsv", Money(7_000, "CNY"), applies=("bt", Money(5_000, "USD")))
    with pytest.raises(ValueError, match="applies"):
        ledger.bank_credit_received("rcp_5", "rsv", Money(7_000, "CNY"), applies=("bt", Money(0, "CNY")))


def test_receipts_applied_returned_kept_and_refunds() -> None:
    assert lines(ledger.bank_receipts_applied("att_1", "rsv", "bt", Money(900, "CNY"))) == {
        "bank_receipts:rsv:CNY": 900, "channel_clearing:bt:CNY": -900}
    assert lines(ledger.bank_receipt_returned("RT1", "rsv", Money(300, "CNY"))) == {
        "bank_receipts:rsv:CNY": 300, "reserve:rsv:CNY": -300}
    assert lines(ledger.bank_receipt_kept("rcp_6", "rsv", "m1", Money(300, "CNY"))) == {
        "bank_receipts:rsv:CNY": 300, "merchant_payable:m1:CNY": -300}
    refund = ledger.bank_refund_paid("re_1", "m1", "rsv", Money(250, "CNY"))
    assert lines(refund) == {"merchant_payable:m1:CNY": 250, "reserve:rsv:CNY": -250}
    assert (refund.purpose, refund.journal_id) == ("refund_paid", ledger.journal_id("refund_paid", "re_1"))
