"""The statement's summary checked against its rows, and the ledger check's expected gap from the pool."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary
from chalicelib.domain.money import Money
from chalicelib.recon.ledger_check import LedgerGap, gaps, pool_gap
from chalicelib.recon.matching import compact_row
from chalicelib.recon.model import DayResult, Discrepancy, DiscrepancyKind, HubRecord, Pooled
from chalicelib.recon.tally import StatementInvalid, Tally

BEIJING = timezone(timedelta(hours=8))
DAY = date(2024, 5, 19)
PAY, REF = StatementKind.PAYMENT, StatementKind.REFUND


def row(object_id: str, kind: StatementKind = PAY, amount: int = 1000, status: str = "succeeded",
        currency: str = "CNY", fee: int | None = None) -> StatementRow:
    return StatementRow(kind=kind, object_id=object_id, channel_ref=None, amount=Money(amount, currency),
                        status=status, occurred_at=datetime(2024, 5, 19, 23, 50, tzinfo=BEIJING),
                        fee=Money(fee, currency) if fee is not None else None)


def record(object_id: str, kind: StatementKind = PAY, amount: int = 1000, status: str = "succeeded") -> HubRecord:
    return HubRecord(kind=kind, object_id=object_id, channel_ref=None, amount=Money(amount, "CNY"), status=status,
                     occurred_at=datetime(2024, 5, 19, 23, 50, tzinfo=BEIJING))


def tallied(*items: StatementRow | StatementSummary) -> Tally:
    tally = Tally()
    assert len(list(tally.rows_of(items))) == sum(isinstance(i, StatementRow) for i in items)
    return tally


ROWS = (row("a", amount=1000, fee=6), row("b", amount=500, fee=3), row("r", REF, amount=200, fee=-1),
        row("p", REF, amount=100, status="processing"))


def test_a_summary_that_adds_up_passes_and_the_settled_total_counts_what_succeeded() -> None:
    tally = tallied(*ROWS, StatementSummary(count=4, payments=Money(1500, "CNY"), refunds=Money(300, "CNY"),
                                            fees=Money(8, "CNY")))
    tally.check()
    assert dict(tally.settled) == {"CNY": 1500 - 200}
    assert tally.gross == {"CNY": {"payments": 1500, "refunds": 200}}


def test_a_channel_that_totals_only_succeeded_rows_passes_too() -> None:
    tallied(*ROWS, StatementSummary(count=3, payments=Money(1500, "CNY"), refunds=Money(200, "CNY"))).check()


@pytest.mark.parametrize(("summary", "message"), [
    (StatementSummary(count=5, payments=None, refunds=None), "counts 5 rows"),
    (StatementSummary(count=None, payments=Money(1501, "CNY"), refunds=None), "payments total 1501"),
    (StatementSummary(count=None, payments=None, refunds=Money(299, "CNY")), "refunds total 299"),
    (StatementSummary(count=None, payments=None, refunds=None, fees=Money(20, "CNY")), "fee total 20"),
])
def test_a_summary_that_does_not_add_up_is_malformed(summary: StatementSummary, message: str) -> None:
    with pytest.raises(StatementInvalid, match=message):
        tallied(*ROWS, summary).check()


def test_two_summaries_are_malformed_and_no_summary_is_accepted() -> None:
    summary = StatementSummary(count=1, payments=Money(1000, "CNY"), refunds=None)
    with pytest.raises(StatementInvalid, match="more than one summary"):
        tallied(row("a"), summary, summary)
    tallied(row("a")).check()


def test_settled_totals_are_per_currency() -> None:
    tally = tallied(row("a", amount=1000), row("u", amount=700, currency="USD"), row("v", REF, 50, currency="USD"))
    assert dict(tally.settled) == {"CNY": 1000, "USD": 650}


def test_tuple_rows_tally_as_statement_rows_do() -> None:
    items = (*ROWS, row("u", amount=700, currency="USD", fee=4), row("v", REF, 50, currency="USD"),
             StatementSummary(count=6, payments=Money(2200, "CNY"), refunds=Money(350, "CNY"), fees=Money(12, "CNY")))
    plain, compact = Tally(), Tally()
    assert list(plain.rows_of(items)) == list(items[:-1])
    tuples = [item if isinstance(item, StatementSummary) else compact_row(item) for item in items]
    assert list(compact.compact_rows_of(tuples)) == tuples[:-1]
    assert compact == plain and compact.rows == 6 and compact.fees == 12 and compact.summary == items[-1]
    with pytest.raises(StatementInvalid, match="more than one summary"):
        list(Tally().compact_rows_of([tuples[-1], tuples[-1]]))
    with pytest.raises(StatementInvalid, match="unknown kind 'chargeback'"):
        list(Tally().compact_rows_of([("chargeback", *tuples[0][1:])]))


# --- the ledger gap the pool explains ---------------------------------------------------------------------


def test_today_pooled_row_is_in_the_statement_only_and_a_pooled_record_in_the_ledger_only() -> None:
    result = DayResult(carried=[Pooled(DAY, row=row("late", amount=300)), Pooled(DAY, record=record("early", amount=80)),
                                Pooled(DAY, row=row("lr", REF, amount=40))])
    assert pool_gap(DAY, [], result) == {"CNY": -300 + 80 + 40}


def test_entries_pooled_earlier_count_when_paired_today_and_not_while_they_wait() -> None:
    earlier = DAY - timedelta(days=1)
    paired_row, paired_record = Pooled(earlier, row=row("r1", amount=300)), Pooled(earlier, record=record("h1", amount=70))
    still = Pooled(earlier, row=row("r2", amount=999))
    result = DayResult(carried=[still])
    # r1's record is in today's ledger only (+300); h1's row is in today's statement only (-70)
    assert pool_gap(DAY, [paired_row, paired_record, still], result) == {"CNY": 300 - 70}


def test_expired_entries_and_entries_without_money_do_not_count() -> None:
    earlier = DAY - timedelta(days=3)
    expired = Pooled(earlier, row=row("x", amount=300))
    unmoved = Pooled(DAY, row=row("p", REF, amount=100, status="processing"))
    reported = Discrepancy(DiscrepancyKind.CHANNEL_ONLY, PAY, "x", row=expired.row, since=earlier)
    assert pool_gap(DAY, [expired], DayResult(discrepancies=[reported], carried=[unmoved])) == {}


def test_gaps_report_only_currencies_that_do_not_add_up() -> None:
    found = gaps({"CNY": 1000, "USD": 5}, {"CNY": 1300, "USD": 5, "EUR": 7}, {"CNY": -300})
    assert found == [LedgerGap("EUR", 0, 7, 0)]
    assert found[0].unexplained_minor == -7
    assert gaps({"CNY": 1000}, {"CNY": 1000}, {}) == []
