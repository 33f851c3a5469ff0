"""A day too large for one function, as shards: cut, partition by key, match each shard, combine.

Every decision the engine makes concerns one (kind, object_id): a pair, a repeat of it, a hub-only record, a
pooled item. So when every statement row carries its object_id, the rows and records of a key can be sent
to one shard (``shard = hash(kind, object_id) mod N``, DuckDB's hash, the same in every function of a
deployment since the engine's layer pins DuckDB), each shard matched on its own by the same engine
(``columnar.Workspace.match``) and the shards' results combined: the combined result is the one the whole day
gives (counts and totals add up, differences and carried items are the union, in the engine's order). A
test checks that on random days, and on files cut and partitioned as below.

No step reads the whole day:

1. ``chunk_lines`` cuts the statement (one gzip file) into parts of ``lines`` lines, each line carrying its
   number in the whole file, and keeps the detail header and the last two lines (the bill's summary). One
   pass of ISA-L's inflate and ``bytes.split``: it parses nothing.
2. ``partition_statement_part`` (one per part) and ``partition_export_file`` (one per data file of the
   DynamoDB export) read their file with DuckDB and write its rows or records as ``N`` Parquet partitions
   ``<dir>/<side>/shard=<k>/<name>.parquet``; a statement part also returns its counts for the tally.
3. ``match_shard`` (one per shard) reads every part's file of its shard and matches them.
4. ``combine`` adds the shards' results up.

Deployed, the directories are S3 prefixes and two Step Functions Distributed Maps run steps 2 and 3
(``infra/recon_stack.py``); locally they are directories (``bench/recon_shards.py``, the tests). Rows without
an object_id pair by channel_ref with any record: a day with them is not shardable (``NotShardable``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.gzip_members import GzipCutShort, inflate_members
from chalicelib.recon.matching import NEAR_MIDNIGHT, _discrepancy_order, _pooled_order
from chalicelib.recon.model import DayResult, Pooled
from chalicelib.recon.tally import Tally

# The DuckDB engine loads only in the steps that run it (partition, match): plan and combine cut text and add up
# results, and should not pay DuckDB's import at every cold start.
if TYPE_CHECKING:
    from chalicelib.recon.columnar import Workspace

_READ = 1 << 20


class NotShardable(ValueError):
    """The day cannot be matched as shards (rows without an object_id, or a statement part that is not in
    its reader's plain shape): it runs whole, where the engine reads it or names what is wrong."""


@dataclass
class Cut:
    """What ``chunk_lines`` made: the part files, the first line (the detail header) and the last two
    non-blank lines (the summary's header and line)."""

    parts: list[str] = field(default_factory=list)
    header: str | None = None
    tail: list[str] = field(default_factory=list)
    lines: int = 0


def chunk_lines(path: str, directory: str, lines: int) -> Cut:
    """Cut a (gzip) text file into gzip parts of ``lines`` lines as ``<number>\\x01<line>``, numbered as the
    statement parser numbers them (every ``\\n``-terminated line, blank ones too; after the last newline only
    a line with content). A part ends after a detail line (one starting with a backtick) only, so the summary's
    header and its line stay together. Streamed: one read buffer and one part in memory. Inflated and compressed
    by ISA-L (python-isal, the engine's layer): on the benchmark's million lines zlib's compress at level 1 alone
    took 1.2 s of this step's 2.1 s (bench/README.md)."""
    from isal import isal_zlib

    from chalicelib.channels.wechatpay.bill_columnar import numbered

    if lines < 1:
        raise ValueError("lines must be at least 1")
    os.makedirs(directory, exist_ok=True)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    cut, number, held, pending, tail = Cut(), 0, 0, b"", [b"", b""]
    part: list[bytes] = []

    def flush() -> None:
        nonlocal held
        name = os.path.join(directory, f"part-{len(cut.parts):05d}.txt.gz")
        with open(name, "wb") as out:
            out.write(isal_zlib.compress(b"".join(part), level=1, wbits=31))
        cut.parts.append(name)
        part.clear()
        held = 0

    def add(found: list[bytes]) -> None:
        """``found`` into the part, each line as ``<number>\\x01<line>\\n``."""
        nonlocal number, held
        if not found:
            return
        part.append(numbered(found, number + 1, b"\x01"))
        number += len(found)
        held += len(found)

    def take(found: list[bytes]) -> None:
        start = 0
        while start < len(found):
            at = max(start, start + lines - held - 1)  # the line that fills the part; it ends at a detail line
            while at < len(found) and found[at][:1] != b"`":
                at += 1
            add(found[start:at + 1])
            start = at + 1
            if at < len(found):
                flush()
        content: list[bytes] = []  # the last two lines with content so far: the summary's header and line
        for line in reversed(found):
            if line.strip():
                content.insert(0, line)
                if len(content) == 2:
                    break
        tail[:] = [*tail, *content][-2:]

    with open(path, "rb") as source:
        read: Iterator[bytes] = iter(lambda: source.read(_READ), b"")
        try:
            for data in inflate_members(read, isal_zlib.decompressobj) if gzipped else read:
                found = (pending + data).split(b"\n")
                pending = found.pop()
                if cut.header is None and found:
                    cut.header = found[0].decode("utf-8-sig", errors="replace").rstrip("\r")
                take(found)
        except GzipCutShort as exc:
            raise NotShardable("the statement's gzip stream is cut short") from exc
    if pending.strip():
        take([pending])
    if part:
        flush()
    cut.lines = number
    cut.tail = [line.decode("utf-8", errors="replace").rstrip("\r") for line in tail if line]
    return cut


def statement_summary(cut: Cut) -> Any:
    """The bill's summary, read from the cut's last two lines by the parser's own rules."""
    from chalicelib.channels.base import StatementSummary
    from chalicelib.channels.wechatpay import bill

    parsed = list(bill.parse_trade_bill_rows(["\n".join(cut.tail).encode() + b"\n"]))
    if len(parsed) != 1 or not isinstance(parsed[0], StatementSummary):
        raise NotShardable("the statement does not end with its summary")
    return parsed[0]


def _write(space: Workspace, relation: str, directory: str, name: str, shards: int, seq_base: int = 0) -> dict[int, int]:
    from chalicelib.recon.columnar import RECORD_COLUMNS, ROW_COLUMNS

    columns = ROW_COLUMNS if relation == "rows" else RECORD_COLUMNS
    counts = {int(shard): int(count) for shard, count in space.con.execute(
        f"SELECT CAST(hash(kind, object_id) % {int(shards)} AS INTEGER), count(*) FROM {relation} "  # noqa: S608 - ours
        "GROUP BY ALL").fetchall()}
    for shard in counts:
        target = os.path.join(directory, relation, f"shard={shard}")
        os.makedirs(target, exist_ok=True)
    if counts:
        # One file per shard of this part, named for the part: every part of every side writes its own names.
        space.con.execute(
            f"COPY (SELECT {', '.join(columns)}, seq + {int(seq_base)} AS seq, "  # noqa: S608 - names and ints of ours
            f"CAST(hash(kind, object_id) % {int(shards)} AS INTEGER) AS shard "
            f"FROM {relation}) TO '{_quoted(os.path.join(directory, relation))}' "
            f"(FORMAT parquet, PARTITION_BY (shard), OVERWRITE_OR_IGNORE true, FILENAME_PATTERN '{_quoted(name)}_{{i}}')")
    return counts


def partition_statement_part(part: str, header: str, directory: str, name: str, shards: int) -> dict[str, Any]:
    """Step 2 for a statement part: its rows as ``shards`` partitions, and its counts (``tally_values``)."""
    from chalicelib.channels.wechatpay import bill_columnar
    from chalicelib.recon.columnar import Workspace

    with Workspace() as space:
        if not bill_columnar.load_numbered(space, part, header, part=True):
            raise NotShardable(f"statement part {name} is not in the trade bill's plain shape: the day runs whole")
        if space.one("SELECT count(*) FROM rows WHERE coalesce(object_id, '') = ''")[0]:
            raise NotShardable("statement rows without an object_id pair by channel_ref: the day runs whole")
        tally = Tally()
        tally.count_table(space, None)
        return {"rows": _write(space, "rows", directory, name, shards), "tally": tally_values(tally)}


def partition_export_file(path: str, directory: str, name: str, shards: int, *, account_id: str | None,
                          day: date | None, fee_rate_bps: int | None, number: int = 0) -> dict[int, int]:
    """Step 2 for one data file of the hub export (the ``number``-th): its records as ``shards`` partitions,
    their ``seq`` after every earlier file's (a record's position in the export, as the engine reads it)."""
    from chalicelib.recon import hub_records
    from chalicelib.recon.columnar import Workspace

    with Workspace() as space:
        hub_records.load_export(space, [path], account_id=account_id, day=day, fee_rate_bps=fee_rate_bps)
        return _write(space, "records", directory, name, shards, seq_base=number << 40)


def shard_of(kind: str, object_id: str, shards: int) -> int:
    """The shard of one key (what the partitions compute in SQL), e.g. for a pooled item."""
    import duckdb

    found = duckdb.execute("SELECT CAST(hash(?, ?) % ? AS INTEGER)", [kind, object_id, shards]).fetchone()
    assert found is not None
    return int(found[0])


def pool_for_shard(pool: Iterable[Pooled], shard: int, shards: int) -> list[Pooled]:
    """The pooled items of one shard (a pooled row without an object_id cannot be sharded: ``NotShardable``)."""
    mine = []
    for item in pool:
        kind, object_id = ((str(item.row.kind), item.row.object_id) if item.row is not None
                           else (str(item.record.kind), item.record.object_id) if item.record is not None else ("", ""))
        if not object_id:
            raise NotShardable("a pooled row without an object_id pairs by channel_ref: the day runs whole")
        if shard_of(kind, object_id, shards) == shard:
            mine.append(item)
    return mine


def match_shard(day: date, directory: str, shard: int, pool: Iterable[Pooled] = (), *,
                near_midnight: timedelta = NEAR_MIDNIGHT, memory_limit: str = "256MB",
                threads: int | None = None) -> DayResult:
    """Step 3: match one shard from every part's partition files (``pool``: that shard's pooled items)."""
    from chalicelib.recon.columnar import RECORD_COLUMNS, ROW_COLUMNS, Workspace

    with Workspace(memory_limit=memory_limit, threads=threads) as space:
        for relation, columns in (("rows", ROW_COLUMNS), ("records", RECORD_COLUMNS)):
            files = sorted(glob.glob(os.path.join(directory, relation, f"shard={int(shard)}", "*.parquet")))
            if files:  # read where they are, as a reader's relation is (Workspace.store): nothing copied into memory
                listed = ", ".join(f"'{_quoted(path)}'" for path in files)
                space.con.execute(f"DROP TABLE {relation}")
                space.con.execute(f"CREATE VIEW {relation} AS SELECT {', '.join(columns)}, seq "  # noqa: S608 - our names and paths
                                  f"FROM read_parquet([{listed}])")
        return space.match(day, pool, near_midnight=near_midnight)


def combine(results: Iterable[DayResult]) -> DayResult:
    """Step 4: the day's result from its shards' (in the engine's order)."""
    total = DayResult()
    for result in results:
        total.matched += result.matched
        for currency, amount in result.matched_amount.items():
            total.matched_amount[currency] = total.matched_amount.get(currency, 0) + amount
        total.discrepancies.extend(result.discrepancies)
        total.carried.extend(result.carried)
    total.matched_amount = dict(sorted(total.matched_amount.items()))
    total.discrepancies.sort(key=_discrepancy_order)
    total.carried.sort(key=_pooled_order)
    return total


def tally_values(tally: Tally) -> dict[str, Any]:
    """A part's counts as JSON values; ``add_tally`` adds them into the day's ``Tally``."""
    return {"rows": tally.rows, "succeeded_rows": tally.succeeded_rows, "fees": tally.fees,
            "totals": {str(kind): total for kind, total in tally.totals.items()},
            "succeeded_totals": {str(kind): total for kind, total in tally.succeeded_totals.items()},
            "settled": dict(tally.settled), "fees_by_currency": dict(tally.fees_by_currency),
            "gross": {currency: dict(side) for currency, side in tally.gross.items()}}


def add_tally(tally: Tally, values: dict[str, Any]) -> None:
    from chalicelib.channels.base import StatementKind

    tally.rows += int(values["rows"])
    tally.succeeded_rows += int(values["succeeded_rows"])
    tally.fees += int(values["fees"])
    for kind, total in values["totals"].items():
        tally.totals[StatementKind(kind)] += int(total)
    for kind, total in values["succeeded_totals"].items():
        tally.succeeded_totals[StatementKind(kind)] += int(total)
    for currency, total in values["settled"].items():
        tally.settled[currency] += int(total)
    for currency, total in values["fees_by_currency"].items():
        tally.fees_by_currency[currency] += int(total)
    for currency, side in values["gross"].items():
        mine = tally.gross.setdefault(currency, {"payments": 0, "refunds": 0})
        mine["payments"] += int(side["payments"])
        mine["refunds"] += int(side["refunds"])


def _quoted(path: str) -> str:
    return path.replace("'", "''")
