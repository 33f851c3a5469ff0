"""Count and total a statement while it streams past, then check the channel's own summary against the rows.

The summary is a checksum of the file: its count and totals must equal what the rows add up to (over all
rows, or over the succeeded ones, since channels differ in what they total). A file that disagrees with
itself is malformed and fails the run before anything is changed. Fees are stated per row more precisely
than minor units on some channels and rounded by the adapter, so the fee total may differ by half a minor
unit per row. The per-currency settled totals (succeeded payments minus succeeded refunds) and the
succeeded rows' fees per fee currency (what the run books as the channel's fees) feed the ledger check.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary
from chalicelib.domain.money import Money
from chalicelib.recon.matching import CompactRow

_KINDS = {str(kind): kind for kind in StatementKind}


class StatementInvalid(Exception):
    """The statement disagrees with itself (or is not a statement); ``str()`` says how."""


def signed(kind: StatementKind, amount: Money) -> int:
    """Money into clearing is positive: payments add, refunds take away."""
    return amount.minor if kind is StatementKind.PAYMENT else -amount.minor


@dataclass
class Tally:
    rows: int = 0
    succeeded_rows: int = 0
    totals: dict[StatementKind, int] = field(default_factory=lambda: defaultdict(int))  # all rows, minor units
    succeeded_totals: dict[StatementKind, int] = field(default_factory=lambda: defaultdict(int))
    fees: int = 0
    fees_by_currency: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # succeeded rows' fees
    settled: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # currency -> net minor units
    gross: dict[str, dict[str, int]] = field(default_factory=dict)  # currency -> {"payments", "refunds"}
    summary: StatementSummary | None = None

    def rows_of(self, parsed: Iterable[StatementRow | StatementSummary]) -> Iterator[StatementRow]:
        """Pass the rows through, counting them and keeping the summary aside."""
        for item in parsed:
            if isinstance(item, StatementSummary):
                self._keep(item)
                continue
            self._count(item)
            yield item

    def compact_rows_of(self, parsed: Iterable[CompactRow | StatementSummary]) -> Iterator[CompactRow]:
        """``rows_of`` for the engine's ``CompactRow`` tuples (what a run streams): the same counts and totals.
        The row counts and the fee total are added up as the rows pass and stored when the stream ends."""
        totals, succeeded_totals, settled, gross = self.totals, self.succeeded_totals, self.settled, self.gross
        fees_by_currency = self.fees_by_currency
        payment = StatementKind.PAYMENT
        rows = succeeded_rows = fees = 0
        try:
            for item in parsed:
                if isinstance(item, StatementSummary):
                    self._keep(item)
                    continue
                kind = _KINDS.get(item[0])
                if kind is None:
                    raise StatementInvalid(f"statement line {item[10]}: unknown kind {item[0]!r}")
                amount, fee = item[3], item[6]
                rows += 1
                totals[kind] += amount
                if fee is not None:
                    fees += fee
                if item[5] == "succeeded":
                    currency = item[4]
                    if fee:
                        fees_by_currency[item[7] or currency] += fee
                    succeeded_rows += 1
                    succeeded_totals[kind] += amount
                    settled[currency] += amount if kind is payment else -amount
                    side = gross.get(currency)
                    if side is None:
                        side = gross[currency] = {"payments": 0, "refunds": 0}
                    side["payments" if kind is payment else "refunds"] += amount
                yield item
        finally:
            self.rows += rows
            self.succeeded_rows += succeeded_rows
            self.fees += fees

    def count_table(self, space: Any, summary: StatementSummary | None) -> None:
        """``compact_rows_of`` over the rows of a ``columnar.Workspace`` (loaded by an adapter's columnar
        reader), added up by DuckDB: the same counts and totals."""
        if summary is not None:
            self._keep(summary)
        # One scan, per (kind, currency, fee currency): rows, succeeded rows, fees, the amount, the succeeded
        # amount, the succeeded rows' fees.
        groups = space.con.execute("""
            SELECT kind, currency, coalesce(nullif(fee_currency, ''), currency), count(*),
                   count(*) FILTER (WHERE status = 'succeeded'), coalesce(sum(fee), 0), sum(amount),
                   coalesce(sum(amount) FILTER (WHERE status = 'succeeded'), 0),
                   coalesce(sum(fee) FILTER (WHERE status = 'succeeded'), 0)
            FROM rows GROUP BY ALL ORDER BY 2, 1, 3""").fetchall()
        for kind_name, currency, fee_currency, rows, succeeded, fees, total, succeeded_total, succeeded_fees in groups:
            kind = _KINDS.get(kind_name)
            if kind is None:
                raise StatementInvalid(f"unknown kind {kind_name!r} in the statement rows")
            self.rows += int(rows)
            self.succeeded_rows += int(succeeded)
            self.fees += int(fees)
            self.totals[kind] += int(total)
            self.succeeded_totals[kind] += int(succeeded_total)
            if succeeded_fees:
                self.fees_by_currency[fee_currency] += int(succeeded_fees)
            if succeeded:
                payment = kind is StatementKind.PAYMENT
                self.settled[currency] += int(succeeded_total) if payment else -int(succeeded_total)
                side = self.gross.setdefault(currency, {"payments": 0, "refunds": 0})
                side["payments" if payment else "refunds"] += int(succeeded_total)

    def _keep(self, summary: StatementSummary) -> None:
        if self.summary is not None:
            raise StatementInvalid("the statement has more than one summary")
        self.summary = summary

    def _count(self, row: StatementRow) -> None:
        self.rows += 1
        self.totals[row.kind] += row.amount.minor
        self.fees += row.fee.minor if row.fee else 0
        if row.status == "succeeded":
            if row.fee is not None and row.fee.minor:
                self.fees_by_currency[row.fee.currency] += row.fee.minor
            self.succeeded_rows += 1
            self.succeeded_totals[row.kind] += row.amount.minor
            self.settled[row.amount.currency] += signed(row.kind, row.amount)
            side = self.gross.setdefault(row.amount.currency, {"payments": 0, "refunds": 0})
            side["payments" if row.kind is StatementKind.PAYMENT else "refunds"] += row.amount.minor

    def check(self) -> None:
        """Raise ``StatementInvalid`` if the summary (when there is one) does not add up from the rows."""
        summary = self.summary
        if summary is None:
            return
        if summary.count is not None and summary.count not in (self.rows, self.succeeded_rows):
            raise StatementInvalid(f"summary counts {summary.count} rows, the file has {self.rows}")
        for name, kind, stated in (("payments", StatementKind.PAYMENT, summary.payments),
                                   ("refunds", StatementKind.REFUND, summary.refunds)):
            if stated is not None and stated.minor not in (self.totals[kind], self.succeeded_totals[kind]):
                raise StatementInvalid(f"summary {name} total {stated.minor} does not equal its rows' "
                                       f"{self.totals[kind]} (minor units)")
        if summary.fees is not None and abs(summary.fees.minor - self.fees) > self.rows // 2 + 1:
            raise StatementInvalid(f"summary fee total {summary.fees.minor} does not equal its rows' {self.fees}")
