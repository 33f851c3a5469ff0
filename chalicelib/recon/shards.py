"""A day too large for one function, matched as shards: split by key, match each shard, combine.

Every decision the engine makes concerns one (kind, object_id): a pair, a duplicate of it, a hub-only record,
a pooled item. So when every statement row carries its object_id, the rows and records of a key can be sent
to one shard (``shard = hash(kind:object_id) mod N``), each shard matched on its own with the same engine
(``columnar.Workspace.match``) and the shards' results combined: the combined result is the one the whole day
gives (matched counts and totals add up, discrepancies and carried items are the union, in the engine's
order). A test checks that on random days. Rows without an object_id pair by channel_ref with any record,
so a statement that has them cannot be split this way: ``split`` refuses it (``NotShardable``) and the day
runs whole.

Shards are Parquet files written by DuckDB (``COPY ... PARTITION_BY``), one directory per side:
``<dir>/rows/shard=<k>/*.parquet`` and ``<dir>/records/shard=<k>/*.parquet``; keys are hashed with DuckDB's
``hash()``, the same in every function of a deployment (the layer pins DuckDB). Deployed, the directories
are S3 prefixes and a Step Functions Distributed Map runs ``match_shard`` once per shard
(``infra/recon_stack.py``); locally they are directories (``bench/recon_shards.py``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from chalicelib.recon.columnar import RECORD_COLUMNS, ROW_COLUMNS, Workspace
from chalicelib.recon.matching import NEAR_MIDNIGHT
from chalicelib.recon.model import DayResult, Pooled


class NotShardable(ValueError):
    """The statement has rows without an object_id: they may pair with any record, so the day runs whole."""


@dataclass(frozen=True)
class Split:
    shards: int
    rows: dict[int, int]  # shard -> rows
    records: dict[int, int]


def _key(kind: str, object_id: str) -> str:
    return f"{kind}:{object_id}"


def shard_of(space: Workspace, kind: str, object_id: str, shards: int) -> int:
    """The shard of one key (what ``split`` computes in SQL), e.g. for a pooled item."""
    return int(space.one("SELECT CAST(hash(? || ':' || ?) % ? AS INTEGER)", [kind, object_id, shards])[0])


def split(space: Workspace, directory: str, shards: int) -> Split:
    """Write the workspace's rows and records as ``shards`` Parquet partitions under ``directory``; the order
    of each side (``seq``) goes with it, so a shard is matched in its original order."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    if space.one("SELECT count(*) FROM rows WHERE coalesce(object_id, '') = ''")[0]:
        raise NotShardable("statement rows without an object_id pair by channel_ref: the day runs whole")
    os.makedirs(directory, exist_ok=True)  # DuckDB makes the partition directories, not their parent
    counts: dict[str, dict[int, int]] = {}
    for table in ("rows", "records"):
        target = os.path.join(directory, table)
        space.con.execute(
            f"COPY (SELECT *, CAST(hash(kind || ':' || object_id) % {int(shards)} AS INTEGER) AS shard "  # noqa: S608 - our table names
            f"FROM {table}) TO '{_quoted(target)}' (FORMAT parquet, PARTITION_BY (shard), OVERWRITE_OR_IGNORE true)")
        counts[table] = {int(shard): int(count) for shard, count in space.con.execute(
            f"SELECT CAST(hash(kind || ':' || object_id) % {int(shards)} AS INTEGER), count(*) FROM {table} "  # noqa: S608
            "GROUP BY ALL").fetchall()}
    return Split(shards, counts["rows"], counts["records"])


def pool_for_shard(space: Workspace, pool: Iterable[Pooled], shard: int, shards: int) -> list[Pooled]:
    """The pooled items of one shard (a pooled row without an object_id cannot be sharded: ``NotShardable``)."""
    mine = []
    for item in pool:
        kind, object_id = ((str(item.row.kind), item.row.object_id) if item.row is not None
                           else (str(item.record.kind), item.record.object_id) if item.record is not None else ("", ""))
        if not object_id:
            raise NotShardable("a pooled row without an object_id pairs by channel_ref: the day runs whole")
        if shard_of(space, kind, object_id, shards) == shard:
            mine.append(item)
    return mine


def match_shard(day: date, directory: str, shard: int, pool: Iterable[Pooled] = (), *,
                near_midnight: timedelta = NEAR_MIDNIGHT, memory_limit: str = "256MB",
                threads: int | None = None) -> DayResult:
    """Match one shard written by ``split`` (``pool``: that shard's pooled items): the per-shard function."""
    with Workspace(memory_limit=memory_limit, threads=threads) as space:
        for table, columns in (("rows", ROW_COLUMNS), ("records", RECORD_COLUMNS)):
            files = sorted(glob.glob(os.path.join(directory, table, f"shard={int(shard)}", "*.parquet")))
            if files:
                space.con.execute(f"INSERT INTO {table} SELECT {', '.join(columns)}, seq FROM read_parquet(?)",  # noqa: S608
                                  [files])
        return space.match(day, pool, near_midnight=near_midnight)


def combine(results: Iterable[DayResult]) -> DayResult:
    """The day's result from its shards' (in the engine's order)."""
    from chalicelib.recon.matching import _discrepancy_order, _pooled_order

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


def _quoted(path: str) -> str:
    return path.replace("'", "''")
