"""The matching engine on DuckDB: the bulk of a day paired in SQL, every difference judged by ``DayMatcher``.

A day's statement rows and hub records are loaded into two DuckDB tables (``rows``, ``records``; columns as
the engine's ``CompactRow`` / ``CompactRecord`` tuples, plus ``seq``, the position in its stream). One join
then finds the **clean pairs**: keys whose outcome no other key can change and whose row agrees with its record
on every field the hot loop of ``DayMatcher.match_row_tuples`` checks. A key is clean when

* exactly one statement row carries its (kind, object_id), and exactly one hub record;
* no pooled row or pooled record carries it;
* no row without an object_id (today's or pooled) names the record's channel_ref (such a row may pair with the
  record by reference, depending on file order);
* the pair agrees: amount, currency, money moved on both sides or on neither, and the fee when the record
  has an expected one.

Clean pairs are counted and their moved amounts summed in SQL. Everything else, the **residue** (rows and
records of every other key, in their original order), goes through ``DayMatcher`` with the pool, and its
result gets the clean pairs' counts and totals added. Removing a clean key changes nothing for the others:
nothing about another key reads it (no duplicate of it, no reference to it, no pool entry), so the result is
the one ``match_day_compact`` gives on the whole day, discrepancy for discrepancy; a test runs every matching
case through both. Input the Python engine would refuse (an unknown kind, an unsupported currency, a field
holding its separator, two records for one key...) is handed whole to ``match_day_compact``, which raises its
own error.

Memory: the tables are DuckDB's (columnar, in memory up to ``memory_limit``, spilled to the scratch directory
beyond it); only the residue becomes Python objects. Speed: the readers are C++ (the export's JSON, a bill's
lines) and the join and aggregates are vectorised, on every core DuckDB is given.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any, Final

import duckdb

from chalicelib.domain.money import SUPPORTED_CURRENCIES
from chalicelib.recon.matching import NEAR_MIDNIGHT, CompactRecord, CompactRow, DayMatcher, match_day_compact
from chalicelib.recon.model import DayResult, Pooled

ROW_COLUMNS: Final = ("kind", "object_id", "channel_ref", "amount", "currency", "status", "fee", "fee_currency",
                      "occurred_at", "attempt_id", "line")
RECORD_COLUMNS: Final = ("kind", "object_id", "channel_ref", "amount", "currency", "status", "occurred_at",
                         "attempt_id", "fee", "fee_currency")
_TYPES: Final = {"amount": "BIGINT", "fee": "BIGINT", "line": "BIGINT", "seq": "BIGINT"}
# seq: the position in the stream the Python engine would have been given (file order, record order); loaders
# set it, since DuckDB may append a parallel scan's rows in any order.
ROWS_SCHEMA: Final = ", ".join(f"{name} {_TYPES.get(name, 'VARCHAR')}" for name in (*ROW_COLUMNS, "seq"))
RECORDS_SCHEMA: Final = ", ".join(f"{name} {_TYPES.get(name, 'VARCHAR')}" for name in (*RECORD_COLUMNS, "seq"))
_ROW_LIST: Final = ", ".join(ROW_COLUMNS)
_RECORD_LIST: Final = ", ".join(RECORD_COLUMNS)
MEMORY_LIMIT: Final = "256MB"  # DuckDB's own; the tables spill to temp_directory beyond it
FETCH_BATCH: Final = 10_000
_SEP = "\x1f"  # the Python index's field separator (matching.py): a field holding it is refused there


class Workspace:
    """A DuckDB connection with a scratch directory for one day's match (a Lambda's /tmp when deployed).
    Use as a context manager; ``rows`` and ``records`` are created empty and filled by the loaders."""

    def __init__(self, *, memory_limit: str = MEMORY_LIMIT, threads: int | None = None,
                 directory: str | None = None, on_disk: bool = True) -> None:
        self.directory = tempfile.mkdtemp(prefix="recon-", dir=directory)
        self.con = duckdb.connect(os.path.join(self.directory, "day.duckdb") if on_disk else ":memory:", config={
            "memory_limit": memory_limit, "threads": threads or os.cpu_count() or 1,
            "temp_directory": os.path.join(self.directory, "spill"), "preserve_insertion_order": True,
        })
        self.con.execute(f"CREATE TABLE rows ({ROWS_SCHEMA})")
        self.con.execute(f"CREATE TABLE records ({RECORDS_SCHEMA})")

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def count(self, table: str) -> int:
        return int(self.one(f"SELECT count(*) FROM {table}")[0])  # noqa: S608 - names and indexes of our own; values go as parameters

    def one(self, sql: str, parameters: list[Any] | None = None) -> tuple[Any, ...]:
        found = self.con.execute(sql, parameters or []).fetchone()
        assert found is not None
        return tuple(found)

    # --- loading plain tuples (any adapter's rows, the recon index's query pages) ---------------------------

    def add_row_tuples(self, rows: Iterable[CompactRow]) -> int:
        return self._add_tuples("rows", ROW_COLUMNS, rows)

    def add_record_tuples(self, records: Iterable[CompactRecord]) -> int:
        return self._add_tuples("records", RECORD_COLUMNS, records)

    def _add_tuples(self, table: str, columns: tuple[str, ...], values: Iterable[tuple[Any, ...]]) -> int:
        """Spool the tuples as JSON lines (exact: ``null`` and ``""`` stay apart, any text survives) and let
        DuckDB append the file to the table; ``seq`` continues after what the table holds."""
        start = int(self.one(f"SELECT coalesce(max(seq) + 1, 0) FROM {table}")[0])  # noqa: S608 - our table
        path = self.path(f"{table}-{start}.jsonl")
        count = 0
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        with open(path, "w", encoding="utf-8") as out:
            for value in values:
                out.write(dumps([_text(cell) for cell in value] + [start + count]))
                out.write("\n")
                count += 1
        if count:
            pick = ", ".join(f"CAST(v[{i + 1}] AS {_TYPES.get(name, 'VARCHAR')})" for i, name in enumerate(columns))
            self.con.execute(f"INSERT INTO {table} SELECT {pick}, CAST(v[{len(columns) + 1}] AS BIGINT) FROM "  # noqa: S608 - names and indexes of our own; values go as parameters
                             "read_json(?, format='newline_delimited', records=false, columns={'v': 'VARCHAR[]'})",
                             [path])
        os.remove(path)
        return count

    # --- matching -----------------------------------------------------------------------------------------

    def match(self, day: date, pool: Iterable[Pooled] = (), *, near_midnight: timedelta = NEAR_MIDNIGHT) -> DayResult:
        """``match_day_compact`` on the loaded tables (the same result, see the module docstring)."""
        pool = list(pool)
        if not self._acceptable():
            return match_day_compact(day, self.fetch_rows(), self.fetch_records(), pool, near_midnight=near_midnight)
        self._pool_keys(pool)
        con = self.con
        # Keys are compared as 64-bit hashes where that can only make a key less clean: two keys sharing a hash
        # count as one repeated key (residue); a pair is still joined on its strings.
        con.execute("SET preserve_insertion_order = false")  # nothing here needs an order: less memory
        try:
            con.execute("""
                CREATE OR REPLACE TABLE clean AS
                WITH row_keys AS (SELECT hash(kind, object_id) AS k FROM rows WHERE object_id <> ''
                                  GROUP BY k HAVING count(*) = 1),
                     record_keys AS (SELECT hash(kind, object_id) AS k FROM records GROUP BY k HAVING count(*) = 1),
                     pooled AS (SELECT hash(kind, object_id) AS k FROM pool_keys),
                     ref_rows AS (SELECT DISTINCT hash(kind, channel_ref) AS k FROM rows
                                  WHERE coalesce(object_id, '') = '' AND coalesce(channel_ref, '') <> ''
                                  UNION SELECT hash(kind, channel_ref) FROM pool_refs),
                     candidates AS (SELECT * FROM records WHERE hash(kind, object_id) IN (SELECT k FROM record_keys)
                                    AND hash(kind, object_id) NOT IN (SELECT k FROM pooled)
                                    AND (channel_ref IS NULL OR hash(kind, channel_ref) NOT IN (SELECT k FROM ref_rows)))
                SELECT r.seq AS row_ord, h.seq AS record_ord, r.currency, r.status = 'succeeded' AS moved,
                       CASE WHEN r.kind = 'payment' THEN r.amount ELSE -r.amount END AS signed
                FROM (SELECT * FROM rows WHERE object_id <> '' AND hash(kind, object_id) IN (SELECT k FROM row_keys)) r
                JOIN candidates h ON r.kind = h.kind AND r.object_id = h.object_id
                WHERE r.amount = h.amount AND r.currency = h.currency
                  AND (r.status = 'succeeded') = (h.status = 'succeeded')
                  AND (h.fee IS NULL OR (r.fee = h.fee AND coalesce(nullif(r.fee_currency, ''), r.currency)
                                                           = coalesce(nullif(h.fee_currency, ''), h.currency)))
            """)
        finally:
            con.execute("SET preserve_insertion_order = true")
        clean = self.one("SELECT count(*) FROM clean")[0]
        moved = dict(con.execute("SELECT currency, sum(signed) FROM clean WHERE moved GROUP BY currency").fetchall())
        matcher = DayMatcher(day, pool, near_midnight=near_midnight)
        matcher.add_record_tuples(self._fetch(
            f"SELECT {_RECORD_LIST} FROM records ANTI JOIN clean ON seq = record_ord ORDER BY seq"))  # noqa: S608 - our column lists
        found = list(matcher.match_row_tuples(self._fetch(
            f"SELECT {_ROW_LIST} FROM rows ANTI JOIN clean ON seq = row_ord ORDER BY seq")))  # noqa: S608 - our column lists
        found.extend(matcher.finish())
        matcher.matched += int(clean)
        for currency, total in moved.items():
            matcher.matched_amount[currency] = matcher.matched_amount.get(currency, 0) + int(total)
        return matcher.result(found)

    def fetch_rows(self) -> Iterator[CompactRow]:
        return self._fetch(f"SELECT {_ROW_LIST} FROM rows ORDER BY seq")  # type: ignore[return-value]  # noqa: S608 - our column lists

    def fetch_records(self) -> Iterator[CompactRecord]:
        return self._fetch(f"SELECT {_RECORD_LIST} FROM records ORDER BY seq")  # type: ignore[return-value]  # noqa: S608 - our column lists

    def _fetch(self, sql: str) -> Iterator[Any]:
        cursor = self.con.cursor()  # its own cursor: the matcher's consumer may query meanwhile
        try:
            cursor.execute(sql)
            while batch := cursor.fetchmany(FETCH_BATCH):
                yield from batch
        finally:
            cursor.close()

    def _acceptable(self) -> bool:
        """Whether the tables hold only what the Python engine indexes without refusing it."""
        currencies = sorted(SUPPORTED_CURRENCIES)
        marks = ", ".join("?" for _ in currencies)
        refused = self.one(f"""
            SELECT count(*) FROM records
            WHERE kind IS NULL OR kind NOT IN ('payment', 'refund') OR coalesce(object_id, '') = ''
               OR currency IS NULL OR currency NOT IN ({marks}) OR status IS NULL OR amount IS NULL
               OR (nullif(fee_currency, '') IS NOT NULL AND fee_currency NOT IN ({marks}))
               OR contains(coalesce(channel_ref, ''), ?) OR occurred_at IS NULL OR contains(occurred_at, ?)
               OR contains(coalesce(attempt_id, ''), ?)""", [*currencies, *currencies, _SEP, _SEP, _SEP])[0]  # noqa: S608 - names and indexes of our own; values go as parameters
        statuses = self.one("SELECT count(DISTINCT status) FROM (SELECT status FROM records UNION ALL "
                            "SELECT 'succeeded')")[0]
        bad_rows = self.one("SELECT count(*) FROM rows WHERE kind IS NULL OR kind NOT IN ('payment', 'refund') "
                            "OR amount IS NULL OR currency IS NULL OR status IS NULL")[0]
        return refused == 0 and statuses <= 256 and bad_rows == 0

    def _pool_keys(self, pool: list[Pooled]) -> None:
        keys: set[tuple[str, str]] = set()
        refs: set[tuple[str, str]] = set()
        for item in pool:
            if item.record is not None:
                keys.add((str(item.record.kind), item.record.object_id))
            if item.row is not None:
                if item.row.object_id:
                    keys.add((str(item.row.kind), item.row.object_id))
                elif item.row.channel_ref:
                    refs.add((str(item.row.kind), item.row.channel_ref))
        self.con.execute("CREATE OR REPLACE TABLE pool_keys (kind VARCHAR, object_id VARCHAR)")
        self.con.execute("CREATE OR REPLACE TABLE pool_refs (kind VARCHAR, channel_ref VARCHAR)")
        if keys:
            self.con.executemany("INSERT INTO pool_keys VALUES (?, ?)", sorted(keys))
        if refs:
            self.con.executemany("INSERT INTO pool_refs VALUES (?, ?)", sorted(refs))


def _text(cell: Any) -> Any:
    return cell.isoformat() if isinstance(cell, datetime) else cell


def match_day_columnar(day: date, rows: Iterable[CompactRow], records: Iterable[CompactRecord],
                       pool: Iterable[Pooled] = (), *, near_midnight: timedelta = NEAR_MIDNIGHT) -> DayResult:
    """``match_day_compact`` on DuckDB: the same result for the same tuples."""
    with Workspace() as space:
        space.add_record_tuples(records)
        space.add_row_tuples(rows)
        return space.match(day, pool, near_midnight=near_midnight)
