"""The matching engine on DuckDB: a day paired and sorted out in SQL; only its differences become Python values.

A day's statement rows and hub records are in two relations, ``rows`` and ``records`` (columns as the engine's
``CompactRow`` / ``CompactRecord`` tuples, plus ``seq``, the position in its stream): tables filled from tuples
(``add_row_tuples`` / ``add_record_tuples``), or views over what a reader loaded straight from the files
(``bill_columnar.load_trade_bill``, ``hub_records.load_export``; ``load_concurrently`` runs both at once).

``match`` gives ``match_day_compact``'s result, difference for difference, like this:

* **Residue keys**: a (kind, object_id) that two or more hub records carry, or that a pooled row or record
  carries. Their rows and records (in their original order) go through ``DayMatcher`` with the pool: the
  engine's own rules, on a few keys.
* **Repeated rows**: of a key that two or more statement rows carry (and no residue), every row after the first
  (in file order) is a ``duplicate_row`` naming the first one's line, as ``DayMatcher`` makes it; the first row
  is judged like a key's only row.
* Every other key, and each repeated key by its first row, has at most one row and at most one record, so its
  outcome is its own: one full outer join in SQL decides it. A pair that agrees on every field the engine
  judges (money moved on both sides or neither, currency, amount, the expected fee) is **matched**: counted,
  and its moved amount summed, in SQL.
  Everything else (a pair that differs, a row alone, a ``succeeded`` record alone, a repeated row) comes back as
  one joined tuple and becomes the engine's ``Discrepancy`` or ``Pooled`` value by the engine's functions
  (``differences``, ``statement_row``, ``is_near_midnight``). A record alone that did not succeed is no
  difference and never leaves SQL.

Removing a key from the rest changes nothing for the others (nothing about another key reads it), which is
why the union is the whole day's result. Input the Python engine treats specially or refuses (a row without
an object_id, which pairs by channel_ref with any record; an unknown kind, an unsupported currency, a field
holding its separator...) sends the whole day through ``match_day_compact``,
which gives its result or raises its own error.

Memory: a reader's relation is a Parquet file in the workspace's scratch directory (``store``), read by the
columns each query uses; DuckDB's memory (up to ``memory_limit``, spilled to that directory beyond it) holds the
joins and aggregates; only differences become Python objects. Speed: the readers are C++ (the export's JSON,
a bill's lines), the join and aggregates vectorised, on every thread DuckDB is given.
"""

from __future__ import annotations

import copy
import gc
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any, Final

import duckdb

from chalicelib.channels.base import StatementRow
from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money
from chalicelib.domain.value_class import builder
from chalicelib.recon.hub_records import hub_record
from chalicelib.recon.matching import (
    _KIND_BY_FIELD,
    _KIND_OF,
    NEAR_MIDNIGHT,
    CompactRecord,
    CompactRow,
    DayMatcher,
    _moment,
    differences,
    is_near_midnight,
    match_day_compact,
    statement_row,
)
from chalicelib.recon.model import DayResult, Discrepancy, DiscrepancyKind, FieldDiff, HubRecord, Pooled

ROW_COLUMNS: Final = ("kind", "object_id", "channel_ref", "amount", "currency", "status", "fee", "fee_currency",
                      "occurred_at", "attempt_id", "line")
RECORD_COLUMNS: Final = ("kind", "object_id", "channel_ref", "amount", "currency", "status", "occurred_at",
                         "attempt_id", "fee", "fee_currency")
_TYPES: Final = {"amount": "BIGINT", "fee": "BIGINT", "line": "BIGINT", "seq": "BIGINT"}
# seq: the position in the stream the Python engine would have been given (file order, record order).
ROWS_SCHEMA: Final = ", ".join(f"{name} {_TYPES.get(name, 'VARCHAR')}" for name in (*ROW_COLUMNS, "seq"))
RECORDS_SCHEMA: Final = ", ".join(f"{name} {_TYPES.get(name, 'VARCHAR')}" for name in (*RECORD_COLUMNS, "seq"))
_ROW_LIST: Final = ", ".join(ROW_COLUMNS)
_RECORD_LIST: Final = ", ".join(RECORD_COLUMNS)
# DuckDB's own, for the readers' buffers and the match's joins (the relations themselves are files, ``store``); beyond
# it, work spills to temp_directory. The export reader's COPY (JSON buffers, a Parquet row group per thread) ran out
# of memory at 208 MB in 10 runs of 12 and never at 240 MB (3 runs); at 300 MB the process peaks at 403-443 MB on 1M x 1M,
# the differences' Python values included (bench/README.md).
MEMORY_LIMIT: Final = "300MB"
ALLOCATOR_FLUSH: Final = "16MB"
FETCH_BATCH: Final = 10_000
ROW_GROUP: Final = 122_880  # rows per row group of a stored relation's file (DuckDB's default)
_SEP = "\x1f"  # the Python index's field separator (matching.py): a field holding it is refused there


class Workspace:
    """A DuckDB database (in memory, spilling to a scratch directory: a Lambda's /tmp when deployed) for one
    day's match. Use as a context manager. ``rows`` and ``records`` start as empty tables; a reader may replace
    one, while it is empty, by a view over what it loaded (one load per side)."""

    def __init__(self, *, memory_limit: str = MEMORY_LIMIT, threads: int | None = None,
                 directory: str | None = None, on_disk: bool = False) -> None:
        self.directory = tempfile.mkdtemp(prefix="recon-", dir=directory)
        self.con = duckdb.connect(os.path.join(self.directory, "day.duckdb") if on_disk else ":memory:", config={
            "memory_limit": memory_limit, "threads": threads or os.cpu_count() or 1,
            "temp_directory": os.path.join(self.directory, "spill"),
            # Nothing relies on DuckDB keeping a file's order: every relation carries its position (``seq``: a
            # bill line's number, a tuple's index, for the export the position in DuckDB's read), and the one
            # path where the records' order decides (the fallback to match_day_compact, where a row without an
            # object_id pairs by channel_ref with the first record in order) reads them in order from
            # ``in_order``. Not keeping it lets the export's reader append as it goes: 0.4 s less on 1M records.
            "preserve_insertion_order": False,
            # Give freed memory back to the system soon (DuckDB's default keeps up to 128 MB, and 512 MB after a
            # bulk free): a day's differences become Python values after its tables are dropped, and the two
            # must not add up in the process's peak.
            "allocator_flush_threshold": ALLOCATOR_FLUSH, "allocator_bulk_deallocation_flush_threshold": ALLOCATOR_FLUSH,
        })
        self.con.execute(f"CREATE TABLE rows ({ROWS_SCHEMA})")
        self.con.execute(f"CREATE TABLE records ({RECORDS_SCHEMA})")
        self._owner = True
        # Relations a reader vouched for (``vouch``): shared with the workspace's cursors.
        self.vetted: set[str] = set()
        # How to read a relation again in its source's order, when a reader's rows are not in it (the export's
        # records): shared with the workspace's cursors.
        self.in_order: dict[str, Callable[[], Iterable[Any]]] = {}
        # What ``store`` kept in files (shared with the workspace's cursors): ``release`` removes them.
        self.stored: set[str] = set()
        # Columns a reader's view computes that the outcome query computes itself, from other columns of the view,
        # after its join (``late``): shared with the workspace's cursors.
        self.late: dict[str, dict[str, str]] = {}
        self.stats: dict[str, int] = {}  # what the last match decided where (for the bench)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()
        if self._owner:
            shutil.rmtree(self.directory, ignore_errors=True)

    def cursor(self) -> Workspace:
        """The same database on a connection of its own, for a reader running beside another (close it after)."""
        other = copy.copy(self)
        other.con = self.con.cursor()
        other._owner = False
        return other

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def count(self, relation: str) -> int:
        return int(self.one(f"SELECT count(*) FROM {relation}")[0])  # noqa: S608 - names of our own

    def one(self, sql: str, parameters: list[Any] | dict[str, Any] | None = None) -> tuple[Any, ...]:
        found = self.con.execute(sql, parameters or []).fetchone()
        assert found is not None
        return tuple(found)

    def is_table(self, name: str) -> bool:
        return bool(self.one("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name])[0])

    def replaceable(self, name: str) -> bool:
        """Whether a reader may replace ``name`` by a view: it is still the empty table it started as."""
        return self.is_table(name) and self.count(name) == 0

    def store(self, name: str, select: str, parameters: list[Any] | dict[str, Any] | None = None) -> None:
        """``CREATE TABLE name AS select``, kept in a Parquet file of the workspace's directory rather than in
        DuckDB's memory: ``name`` becomes a view over the file (its ``rowid`` the row's place in the file). A day's
        two relations (~330 MB as tables on 1M x 1M) then hold no memory while they wait; each scan reads the
        columns it uses, so the match's joins have the memory limit to themselves and spill nothing. Written
        uncompressed (Snappy cost 0.1 s more CPU on 1M records for a file the run deletes); in row groups of
        ``ROW_GROUP`` rows, which bounds what the writer holds per thread."""
        path = _quoted(self.path(f"{name}.parquet"))
        self.con.execute(f"COPY ({select}) TO '{path}' "  # noqa: S608 - our own SQL and path
                         f"(FORMAT parquet, COMPRESSION uncompressed, ROW_GROUP_SIZE {ROW_GROUP})", parameters or [])
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT *, file_row_number AS rowid "  # noqa: S608
                         f"FROM read_parquet('{path}', file_row_number=true)")
        self.stored.add(name)

    def drop_stored(self, name: str) -> None:
        """Forget what ``store`` kept as ``name`` (the view and its file)."""
        self.con.execute(f"DROP VIEW IF EXISTS {name}")
        path = self.path(f"{name}.parquet")
        if os.path.exists(path):
            os.remove(path)
        self.stored.discard(name)

    def vouch(self, relation: str) -> None:
        """A reader that replaced ``relation`` (``rows`` / ``records``) by a view says it has checked, in its own
        pass over the lines, everything ``match`` asks of that relation before deciding in SQL (no second scan)."""
        self.vetted.add(relation)

    def compute_late(self, relation: str, column: str, expression: str) -> None:
        """A reader's view says how ``column`` is computed from its other columns (``expression``, a SQL expression
        with ``{t}`` for the relation's alias): the outcome query computes it after its join, on the few rows it
        keeps, instead of reading the view's column, which the view computes for every row it scans (the bill's
        time formatted as text: ~0.03 s on 1M rows)."""
        self.late.setdefault(relation, {})[column] = expression

    def load_concurrently(self, *loads: Callable[[Workspace], Any]) -> list[Any]:
        """Run readers at once, each on its own connection (DuckDB releases the GIL while it reads): a gzip
        file is decompressed by one thread, so the statement and the export are read side by side."""
        spaces = [self.cursor() for _ in loads]
        try:
            with ThreadPoolExecutor(max_workers=len(loads)) as pool:
                futures = [pool.submit(load, space) for load, space in zip(loads, spaces, strict=True)]
                return [future.result() for future in futures]
        finally:
            for space in spaces:
                space.close()

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

    def match(self, day: date, pool: Iterable[Pooled] = (), *, near_midnight: timedelta = NEAR_MIDNIGHT,
              release: bool = False) -> DayResult:
        """``match_day_compact`` on the loaded relations (the same result, see the module docstring).
        ``release``: drop the day's relations once matched."""
        pool = list(pool)
        if not self._acceptable(pool):
            records = self.in_order["records"]() if "records" in self.in_order else self.fetch_records()
            return match_day_compact(day, self.fetch_rows(), records, pool, near_midnight=near_midnight)
        self._pool_keys(pool)
        matched = python_matched = built = 0
        matched_amount: dict[str, int] = {}
        found: list[Discrepancy] = []
        carried: list[Pooled] = []
        residue_rows: list[tuple[int, tuple[Any, ...]]] = []
        residue_records: list[tuple[int, tuple[Any, ...]]] = []
        totals, residue_keys = self._decide()
        for currency, count, moved, total in totals:
            matched += int(count)
            if moved:
                matched_amount[currency] = int(total)
        # Python's cyclic collector is paused while the differences become values (``_collector_paused``). Equal
        # amounts share one Money (``_money_cache``); the values without checks of their own are built field by
        # field (``builder``).
        money = _money_cache()
        with _collector_paused():
            for outcome in self._outcomes(residue_keys):
                what = outcome[2]
                if what:
                    if what == _REPEAT:  # a repeated row (DayMatcher._duplicate): its first row's line is known
                        built += 1
                        repeat = _row_of(outcome, money)
                        found.append(_discrepancy(DiscrepancyKind.DUPLICATE_ROW, repeat.kind, repeat.object_id,
                                                  (_field_diff("duplicate_of", None, f"line {outcome[3]}"),), repeat,
                                                  None, None))
                    elif what == _RESIDUE_ROW:  # a residue key's row or record, kept with its position
                        residue_rows.append((outcome[0], outcome[_ROW_AT]))
                    else:
                        residue_records.append((outcome[1], outcome[_RECORD_AT]))
                    continue
                built += 1
                row = _row_of(outcome, money) if outcome[0] is not None else None
                record = _record_of(outcome, money) if outcome[1] is not None else None
                if row is not None and record is not None:  # a pair: what DayMatcher._judge_pair decides
                    reasons = differences(row, record)
                    if not reasons:  # SQL's three-valued logic was stricter than the engine: a match
                        matched += 1
                        python_matched += 1
                        if row.status == "succeeded":
                            signed = row.amount.minor if row.kind == "payment" else -row.amount.minor
                            currency = row.amount.currency
                            matched_amount[currency] = matched_amount.get(currency, 0) + signed
                        continue
                    found.append(_discrepancy(_KIND_BY_FIELD[reasons[0].field], row.kind, row.object_id, reasons,
                                              row, record, None))
                elif row is not None:  # a row no record pairs with (DayMatcher._judge_row)
                    if is_near_midnight(row.occurred_at, near_midnight):
                        carried.append(_pooled(day, row, None))
                    else:
                        found.append(_discrepancy(DiscrepancyKind.CHANNEL_ONLY, row.kind, row.object_id,
                                                  (_field_diff("status", None, row.status),), row, None, None))
                elif record is not None:  # a succeeded record no row pairs with (DayMatcher.finish)
                    if is_near_midnight(record.occurred_at, near_midnight):
                        carried.append(_pooled(day, None, record))
                    else:
                        found.append(_discrepancy(DiscrepancyKind.HUB_ONLY, record.kind, record.object_id,
                                                  (_field_diff("status", record.status, None),), None, record, None))
            if release:
                self.release()
            # The residue: DayMatcher on its keys' rows and records, in their original order, with the pool.
            residue_rows.sort(key=_first)
            residue_records.sort(key=_first)
            matcher = DayMatcher(day, pool, near_midnight=near_midnight)
            matcher.add_record_tuples(record for _, record in residue_records)
            found.extend(matcher.match_row_tuples(row for _, row in residue_rows))
            found.extend(matcher.finish())
            matcher.matched += matched
            for currency, total in matched_amount.items():
                matcher.matched_amount[currency] = matcher.matched_amount.get(currency, 0) + total
            matcher.carried.extend(carried)
            matcher.carried.sort(key=_pooled_order)
            self.stats = {"matched_in_sql": matched - python_matched, "residue_keys": residue_keys,
                          "python_values": built}
            return matcher.result(found)

    def _decide(self) -> tuple[list[tuple[Any, ...]], int]:
        """The keys decided in SQL. First the keys that are not one row and one record: ``residue`` (hashes of
        the keys two or more records carry, or a pooled item) and ``repeats`` (the rows after the first of a
        key two or more rows carry and the residue does not hold, each with its first row's line). Then one
        narrow join decides every other key, and each repeated key by its first row (``decided``). Returns the
        matched pairs' counts and sums per currency, and how many residue keys."""
        con = self.con
        con.execute("""
            CREATE OR REPLACE TABLE many AS
            SELECT k, count(*) FILTER (WHERE NOT is_row) > 1 AS records_many
            FROM (SELECT hash(kind, object_id) AS k, true AS is_row FROM rows
                  UNION ALL SELECT hash(kind, object_id), false FROM records)
            GROUP BY k HAVING count(*) FILTER (WHERE is_row) > 1 OR count(*) FILTER (WHERE NOT is_row) > 1""")
        con.execute("""
            CREATE OR REPLACE TABLE residue AS
            SELECT k FROM many WHERE records_many UNION SELECT hash(kind, object_id) FROM pool_keys""")
        residue_keys = self.count("residue")
        # A key only rows repeat is what DayMatcher makes of it: its first row (in file order) is judged like a
        # key's only row, and each later one is a duplicate_row naming the first one's line. The window runs on
        # the repeated hashes' rows alone, by the key's text (two keys sharing a hash are told apart here).
        con.execute("""
            CREATE OR REPLACE TABLE repeats AS
            SELECT seq, first_line FROM (
                SELECT seq, row_number() OVER by_key AS nth, first_value(line) OVER by_key AS first_line
                FROM rows
                WHERE hash(kind, object_id) IN (SELECT k FROM many WHERE NOT records_many
                                                EXCEPT SELECT k FROM residue)
                WINDOW by_key AS (PARTITION BY kind, object_id ORDER BY seq))
            WHERE nth > 1""")
        # The keys each side has once (a repeated key's first row included) and the pool does not touch; a key's
        # row and record are joined on the strings, filtered on a 64-bit hash of the key first (a hash two keys
        # with records share only makes both residue). Only the outcome flags, the matched amounts and each side's
        # position are kept (no key text: the differences are fetched by position). Each side's judged values are
        # narrowed before the join (the kind as a flag, whether money moved, the fee's currency resolved): a
        # smaller hash table. ``_acceptable`` has made sure every kind is payment or refund.
        judged = """SELECT kind = 'refund' AS refund, object_id, amount, currency, status = 'succeeded' AS moved, fee,
                           coalesce(nullif(fee_currency, ''), currency) AS fee_currency, seq"""
        # (without residue keys, as on most days, nothing is filtered out: no key is hashed)
        single = "WHERE hash(kind, object_id) NOT IN (SELECT k FROM residue)" if residue_keys else "WHERE true"
        # A pair that agrees is only counted and summed: ``decided`` keeps one row per currency for them (``agree``)
        # and one per pair or side left alone that does not (a table of ~60,000 rows on the benchmark's day, not
        # of 1M: less memory beside the differences' Python values).
        con.execute(f"""
            CREATE OR REPLACE TABLE decided AS
            SELECT agree, CASE WHEN agree THEN currency END AS currency,
                   CASE WHEN NOT agree THEN has_row END AS has_row,
                   CASE WHEN NOT agree THEN record_moved END AS record_moved,
                   CASE WHEN NOT agree THEN r_seq END AS r_seq, CASE WHEN NOT agree THEN h_seq END AS h_seq,
                   count(*) AS pairs, count(*) FILTER (WHERE moved) AS moved_pairs,
                   coalesce(sum(signed) FILTER (WHERE moved), 0) AS moved_sum
            FROM (SELECT r.refund IS NOT NULL AS has_row,
                         coalesce(r.amount = h.amount AND r.currency = h.currency AND r.moved = h.moved
                                  AND (h.fee IS NULL OR (r.fee = h.fee AND r.fee_currency = h.fee_currency)),
                                  false) AS agree,
                         r.currency, r.moved, h.moved AS record_moved,
                         CASE WHEN r.refund THEN -r.amount ELSE r.amount END AS signed, r.seq AS r_seq, h.seq AS h_seq
                  FROM ({judged} FROM rows {single} AND seq NOT IN (SELECT seq FROM repeats)) r
                  FULL JOIN ({judged} FROM records {single}) h ON r.refund = h.refund AND r.object_id = h.object_id)
            GROUP BY ALL""")  # noqa: S608 - our own SQL
        totals = con.execute(
            "SELECT currency, pairs, moved_pairs, moved_sum FROM decided WHERE agree ORDER BY currency").fetchall()
        return totals, residue_keys

    def _outcomes(self, residue_keys: int) -> Iterator[tuple[Any, ...]]:
        """What ``decided`` leaves to Python, with the repeated rows and the residue keys' rows and records: one
        query, in which each side's columns are read in full once and joined by position (the residue's positions
        come from a scan of the key columns), fetched in batches. It is ordered as the day's differences sort (kind,
        object_id, then a key's repeats by line, and by position where two carry the same line, as DayMatcher
        reports them): DuckDB runs it to the end on its own threads before the first batch is fetched, rather than
        streaming it through the fetching thread, and the final (stable) sort finds them in order. Each tuple: the
        row's and the record's positions (``seq``), what it is (``_OUTCOME``: a pair that differs, a row alone or a
        succeeded record alone; ``_REPEAT``: a repeated row; ``_RESIDUE_ROW``, ``_RESIDUE_RECORD``), a repeated
        row's first line, the row's columns, the record's (what ``_row_of`` / ``_record_of`` read). Without residue
        keys no side is scanned for them."""
        residue = "hash(kind, object_id) IN (SELECT k FROM residue)"
        residue_sides = f"""
                  UNION ALL SELECT seq, NULL, {_RESIDUE_ROW}, NULL FROM rows WHERE {residue}
                  UNION ALL SELECT NULL, seq, {_RESIDUE_RECORD}, NULL FROM records WHERE {residue}""" if residue_keys else ""  # noqa: S608 - our own SQL
        return self._fetch(f"""
            SELECT d.r_seq, d.h_seq, d.what, d.first_line, {self._columns("rows", "r", ROW_COLUMNS)},
                   {self._columns("records", "h", RECORD_COLUMNS)}
            FROM (SELECT r_seq, h_seq, {_OUTCOME} AS what, NULL AS first_line FROM decided
                  WHERE NOT agree AND (has_row OR record_moved)
                  UNION ALL SELECT seq, NULL, {_REPEAT}, first_line FROM repeats{residue_sides}) d
            LEFT JOIN rows r ON r.seq = d.r_seq LEFT JOIN records h ON h.seq = d.h_seq
            ORDER BY coalesce(r.kind, h.kind), coalesce(r.object_id, h.object_id), d.what, r.line, d.r_seq""")  # noqa: S608 - our column lists

    def _columns(self, relation: str, alias: str, columns: tuple[str, ...]) -> str:
        late = self.late.get(relation, {})
        return ", ".join(late[c].format(t=alias) if c in late else f"{alias}.{c}" for c in columns)

    def release(self) -> None:
        """Drop every relation of the day: DuckDB gives their memory back, and the stored ones' files go."""
        for name in list(self.stored):
            self.drop_stored(name)
        for name, kind in self.con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall():
            self.con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {name}")
        self.vetted.clear()
        self.in_order.clear()
        self.late.clear()
        for name in ("rows", "records"):
            self.con.execute(f"CREATE TABLE {name} ({ROWS_SCHEMA if name == 'rows' else RECORDS_SCHEMA})")

    def fetch_rows(self) -> Iterator[CompactRow]:
        return self._fetch(f"SELECT {_ROW_LIST} FROM rows ORDER BY seq")  # type: ignore[return-value]  # noqa: S608 - our column lists

    def fetch_records(self) -> Iterator[CompactRecord]:
        return self._fetch(f"SELECT {_RECORD_LIST} FROM records ORDER BY seq")  # type: ignore[return-value]  # noqa: S608 - our column lists

    def _fetch(self, sql: str) -> Iterator[Any]:
        cursor = self.con.cursor()  # its own cursor: the consumer may query meanwhile
        try:
            cursor.execute(sql)
            while batch := cursor.fetchmany(FETCH_BATCH):
                yield from batch
        finally:
            cursor.close()

    def _acceptable(self, pool: list[Pooled]) -> bool:
        """Whether the day is one the SQL path decides exactly: nothing pairs by channel_ref (every row and
        pooled row has an object_id) and nothing the Python engine would refuse (two records for a key are
        residue: DayMatcher accepts identical copies and refuses different ones)."""
        if any(item.row is not None and not item.row.object_id for item in pool):
            return False
        currencies = sorted(SUPPORTED_CURRENCIES)
        marks = ", ".join("?" for _ in currencies)
        bad_records, statuses = (0, 0) if "records" in self.vetted else self.one(f"""
            SELECT count(*) FILTER (WHERE kind IS NULL OR kind NOT IN ('payment', 'refund')
                       OR coalesce(object_id, '') = '' OR currency IS NULL OR currency NOT IN ({marks})
                       OR status IS NULL OR amount IS NULL
                       OR (nullif(fee_currency, '') IS NOT NULL AND fee_currency NOT IN ({marks}))
                       OR contains(coalesce(channel_ref, ''), ?) OR occurred_at IS NULL OR contains(occurred_at, ?)
                       OR contains(coalesce(attempt_id, ''), ?)),
                   count(DISTINCT status)
            FROM records""", [*currencies, *currencies, _SEP, _SEP, _SEP])  # noqa: S608 - placeholders only
        bad_rows = 0 if "rows" in self.vetted else self.one(f"""
            SELECT count(*) FROM rows WHERE kind IS NULL OR kind NOT IN ('payment', 'refund')
                OR coalesce(object_id, '') = '' OR amount IS NULL OR currency IS NULL OR status IS NULL
                OR currency NOT IN ({marks}) OR occurred_at IS NULL OR line IS NULL
                OR (fee IS NOT NULL AND coalesce(nullif(fee_currency, ''), currency) NOT IN ({marks}))""",  # noqa: S608 - placeholders only
                            [*currencies, *currencies])[0]
        return bad_records == 0 and statuses < 256 and bad_rows == 0

    def _pool_keys(self, pool: list[Pooled]) -> None:
        """``pool_keys``: the keys of the pooled rows and records (residue keys, whatever the day holds)."""
        keys: set[tuple[str, str]] = set()
        for item in pool:
            if item.record is not None:
                keys.add((str(item.record.kind), item.record.object_id))
            if item.row is not None:
                keys.add((str(item.row.kind), item.row.object_id))
        self.con.execute("CREATE OR REPLACE TABLE pool_keys (kind VARCHAR, object_id VARCHAR)")
        if keys:
            self.con.executemany("INSERT INTO pool_keys VALUES (?, ?)", sorted(keys))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a block, then back as it was. A day's differences are tens of
    thousands of fresh containers (tuples, frozen values) that form no cycles, so the collector finds nothing
    in them, yet their count keeps triggering it, and each full pass rescans all of them: on 1M x 1M that was
    ~0.7 s of CPU (bench/README.md). Reference counting still frees everything as usual. When it comes back,
    what the block allocated joins the oldest generation directly (``freeze`` then ``unfreeze``: two list
    splices) instead of being traversed by the young generation's next collection, which the first allocation
    after the block would trigger (0.11-0.13 s on 1M x 1M); a full collection still sees them, as it sees every
    long-lived object."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


# What a fetched outcome is (``_outcomes``), and where its parts are: the row's and the record's positions (seq),
# what it is, a repeated row's first line, then a row's ROW_COLUMNS, then a record's RECORD_COLUMNS.
_OUTCOME, _REPEAT, _RESIDUE_ROW, _RESIDUE_RECORD = 0, 1, 2, 3
_ROW_AT: Final = slice(4, 4 + len(ROW_COLUMNS))
_RECORD_AT: Final = slice(4 + len(ROW_COLUMNS), 4 + len(ROW_COLUMNS) + len(RECORD_COLUMNS))


_discrepancy = builder(Discrepancy)
_field_diff = builder(FieldDiff)
_pooled = builder(Pooled)
_statement_row = builder(StatementRow)
_hub_record = builder(HubRecord)


def _money_cache() -> Callable[[int, str], Money]:
    """``Money(minor, currency)``, each distinct value built (and checked) once and then shared: a day's
    differences repeat the same fees and amounts (a pair that differs in one field has the other equal on both
    sides), and equal frozen values are interchangeable."""
    made: dict[tuple[int, str], Money] = {}

    def money(minor: int, currency: str) -> Money:
        if minor.__class__ is not int:  # (a bool would find its int's Money): Money's own error
            return Money(minor, currency)
        key = (minor, currency)
        value = made.get(key)
        if value is None:
            value = made[key] = Money(minor, currency)
        return value

    return money


def _row_of(outcome: tuple[Any, ...], money: Callable[[int, str], Money] = Money) -> StatementRow:
    """``statement_row`` of the outcome's row: the same value (and, for an unknown kind, the same error), built
    with fewer calls (the kind looked up, not parsed; positional fields)."""
    values = outcome[_ROW_AT]
    kind, object_id, channel_ref, amount, currency, status, fee, fee_currency, occurred_at, attempt_id, line = values
    object_kind = _KIND_OF.get(kind)
    if object_kind is None:
        return statement_row(values)
    return _statement_row(object_kind, object_id, channel_ref, money(amount, currency), status, _moment(occurred_at),
                          None if fee is None else money(fee, fee_currency or currency), attempt_id, line)


def _record_of(outcome: tuple[Any, ...], money: Callable[[int, str], Money] = Money) -> HubRecord:
    """``hub_record`` of the outcome's record: the same value, built with fewer calls."""
    values = outcome[_RECORD_AT]
    kind, object_id, channel_ref, amount, currency, status, occurred_at, attempt_id, fee, fee_currency = values
    object_kind = _KIND_OF.get(kind)
    if object_kind is None:
        return hub_record(values)
    return _hub_record(object_kind, object_id, channel_ref, money(amount, currency), status, _moment(occurred_at),
                       attempt_id, None if fee is None else money(fee, fee_currency or currency))


def _quoted(path: str) -> str:
    """A path inside a SQL string literal."""
    return path.replace("'", "''")


def _first(pair: tuple[int, Any]) -> int:
    return pair[0]


def _pooled_order(item: Pooled) -> tuple[Any, ...]:
    from chalicelib.recon.matching import _pooled_order as order

    return order(item)


def _text(cell: Any) -> Any:
    return cell.isoformat() if isinstance(cell, datetime) else cell


def match_day_columnar(day: date, rows: Iterable[CompactRow], records: Iterable[CompactRecord],
                       pool: Iterable[Pooled] = (), *, near_midnight: timedelta = NEAR_MIDNIGHT) -> DayResult:
    """``match_day_compact`` on DuckDB: the same result for the same tuples."""
    with Workspace() as space:
        space.add_record_tuples(records)
        space.add_row_tuples(rows)
        return space.match(day, pool, near_midnight=near_midnight)
