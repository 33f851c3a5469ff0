"""What a journal adds to the ledger's day totals (chalicelib/storage/ledger_repo.journal_writes): the credits of
a day kept apart, and a channel's settlement kept out of its clearing account's day."""

from __future__ import annotations

from chalicelib.domain import ledger
from chalicelib.domain.money import Money
from chalicelib.storage.ledger_repo import journal_writes


def day_totals(journal: ledger.Journal) -> dict[str, dict[str, int]]:
    return {label.split(":", 1)[1]: {k: v for k, v in item.items() if k in ("amount", "credit")}
            for label, kind, item in journal_writes(journal, now="2026-12-07T00:00:00.000Z", value_day="2026-12-07",
                                                    count=4) if label.startswith("day_total:")}


def test_a_day_total_keeps_the_days_credits_apart() -> None:
    captured = day_totals(ledger.payment_captured("att_1", "wx", "m1", Money(900, "CNY")))
    assert captured["merchant_payable:m1:CNY"] == {"amount": -900, "credit": -900}
    assert captured["channel_clearing:wx:CNY"] == {"amount": 900}
    refunded = day_totals(ledger.refund_paid("re_1", "wx", "m1", Money(300, "CNY")))
    assert refunded["merchant_payable:m1:CNY"] == {"amount": 300}  # a debit: it does not wait for T+N


def test_a_channels_settlement_moves_the_reserves_day_not_the_channels() -> None:
    settled = day_totals(ledger.channel_settled("rsv:B1", "wx", "rsv", Money(880, "CNY")))
    assert settled == {"reserve:rsv:CNY": {"amount": 880}}
    entries = [item for label, _, item in journal_writes(ledger.channel_settled("rsv:B1", "wx", "rsv", Money(880, "CNY")),
                                                          now="2026-12-07T00:00:00.000Z", value_day="2026-12-07",
                                                          count=4) if label.startswith("entry:")]
    assert [(e["pk"].split("#")[1], e["value_key"] is not None) for e in entries] == [
        ("reserve:rsv:CNY", True), ("channel_clearing:wx:CNY", False)]
