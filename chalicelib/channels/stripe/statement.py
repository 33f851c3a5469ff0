"""Parsing the balance reports: CSV by header name, streamed, into ``StatementRow``s plus one ``StatementSummary``
(docs/channels/stripe.md#statements-t1-reconciliation).

Itemized rows by ``reporting_category``: ``charge`` (a payment, succeeded), ``charge_failure`` (a payment
reversed), ``refund`` (succeeded), ``refund_failure`` (a refund that failed after it left the balance). Other
categories (fees, payouts, disputes, adjustments...) are not payments or refunds of ours and are skipped.
Amounts are major-unit decimals. ``gross``/``fee``/``net`` are in the settlement ``currency``; the row amount is
the payer's (``customer_facing_amount`` in ``customer_facing_currency``), which is what the hub recorded, and
the fee stays in the settlement currency. Times come from ``created_utc``.

The summary report totals the same categories. It becomes the ``StatementSummary`` when the day settled in
one currency; a multi-currency day has no single total and yields no summary.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.money import Money

CATEGORIES: Mapping[str, tuple[StatementKind, str]] = {
    "charge": (StatementKind.PAYMENT, "succeeded"),
    "charge_failure": (StatementKind.PAYMENT, "failed"),
    "refund": (StatementKind.REFUND, "succeeded"),
    "refund_failure": (StatementKind.REFUND, "failed"),
}
ITEMIZED_REQUIRED = frozenset({"balance_transaction_id", "created_utc", "reporting_category", "currency", "gross", "fee"})
SUMMARY_REQUIRED = frozenset({"reporting_category", "currency", "count", "gross", "fee", "net"})


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 (BOM allowed) decoded incrementally into lines that keep their line ending (csv needs it)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _money(text: str, currency: str) -> Money:
    value = Money.from_decimal_string(text.strip(), currency.strip().upper())
    return Money(abs(value.minor), value.currency)


def _utc(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _itemized(row: Mapping[str, str], line: int) -> StatementRow | None:
    kind_status = CATEGORIES.get(row["reporting_category"].strip())
    if kind_status is None:
        return None
    kind, status = kind_status
    gross = _money(row["gross"], row["currency"])
    if row.get("net"):
        _money(row["net"], row["currency"])  # checked even though the row does not carry it
    facing_amount, facing_currency = row.get("customer_facing_amount", ""), row.get("customer_facing_currency", "")
    amount = _money(facing_amount, facing_currency) if facing_amount and facing_currency else gross
    attempt_id = row.get("payment_metadata[attempt_id]") or None
    if kind is StatementKind.PAYMENT:
        object_id = attempt_id or ""
        channel_ref = row.get("payment_intent_id") or row.get("charge_id") or row.get("source_id") or None
    else:
        object_id = row.get("refund_metadata[refund_id]") or ""
        channel_ref = row.get("source_id") or None
    return StatementRow(kind=kind, object_id=object_id, channel_ref=channel_ref, amount=amount, status=status,
                        occurred_at=_utc(row["created_utc"]), fee=_money(row["fee"], row["currency"]),
                        attempt_id=attempt_id, line=line)


class _Summary:
    """Totals over the categories the rows cover, per settlement currency."""

    def __init__(self) -> None:
        self.rows: list[Mapping[str, str]] = []

    def add(self, row: Mapping[str, str]) -> None:
        if row["reporting_category"].strip() in CATEGORIES:
            int(row["count"])
            _money(row["gross"], row["currency"])
            _money(row["fee"], row["currency"])
        self.rows.append(row)

    def result(self) -> StatementSummary | None:
        ours = [r for r in self.rows if r["reporting_category"].strip() in CATEGORIES]
        currencies = {r["currency"].strip().upper() for r in self.rows}
        if len(currencies) != 1:
            return None
        currency = currencies.pop()

        def total(column: str, category: str | None = None) -> Money:
            picked = ours if category is None else [r for r in ours if r["reporting_category"].strip() == category]
            return Money(sum(_money(r[column], currency).minor for r in picked), currency)

        net = sum(Money.from_decimal_string(r["net"].strip(), currency).minor for r in self.rows)
        return StatementSummary(count=sum(int(r["count"]) for r in ours), payments=total("gross", "charge"),
                                refunds=total("gross", "refund"), fees=total("fee"), settlement=Money(net, currency))


def parse_balance_reports(chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
    header: list[str] | None = None
    summary: _Summary | None = None
    reader = csv.reader(_lines(chunks), strict=True)
    number = 0
    try:
        for cells in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in cells):
                header = None  # a blank line ends a report
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
                summary = _start(header, number, summary)
                continue
            if len(cells) != len(header):
                raise ChannelError(f"Stripe report line {number}: {len(cells)} cells for {len(header)} columns")
            row = dict(zip(header, cells, strict=True))
            try:
                if "balance_transaction_id" in header:
                    parsed = _itemized(row, number)
                    if parsed is not None:
                        yield parsed
                else:
                    assert summary is not None
                    summary.add(row)
            except (KeyError, ValueError) as exc:
                raise ChannelError(f"Stripe report line {number}: {exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ChannelError(f"Stripe report line {number + 1}: {exc}") from exc
    if summary is not None:
        totals = summary.result()
        if totals is not None:
            yield totals


def _start(header: list[str], line: int, summary: _Summary | None) -> _Summary | None:
    if "balance_transaction_id" in header:
        missing = ITEMIZED_REQUIRED - set(header)
    elif "count" in header:
        missing = SUMMARY_REQUIRED - set(header)
        if summary is not None:
            raise ChannelError(f"Stripe report line {line}: a second summary report")
        summary = _Summary()
    else:
        raise ChannelError(f"Stripe report line {line}: not a balance report header")
    if missing:
        raise ChannelError(f"Stripe report line {line}: header lacks {sorted(missing)}")
    return summary
