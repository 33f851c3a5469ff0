"""Write sharding: how many partition keys each hot key is spread over, and which one an object lands on.

DynamoDB serves about 1,000 writes a second per partition key (base table and each GSI alike). A key that
every payment touches — the sparse sync and outbox indexes, a channel account's ledger entries and its
balance, the day's reconciliation index, a merchant's event list — therefore caps the whole hub at that rate.
Each such key carries a shard suffix, the shard being a stable hash of the object's own id, so writes spread
evenly and a given object always lands on the same shard (its later updates and its removal hit the same
key). Readers of a sharded key read every shard: sweeps in parallel, balances as one batch of items.

Counts only ever go up: an item written under ``count`` N lies in shards ``0..N-1``, which a reader of a
larger count still covers. Shard ``"0"`` is also where every item written before sharding lives (the old
single-key indexes used the literal ``"0"``), so those are swept with no migration. The deployed counts are
sized by ``tests/unit/test_peak_hour_partitions.py`` for 100,000 payments a second on one channel account
(docs/capacity.md); the local stage uses a few shards so moto stays fast and tests still cross shards.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from chalicelib.config.settings import settings
from chalicelib.domain.value_class import value_class

T = TypeVar("T")
PARALLEL = 16  # queries in flight at once when a reader visits every shard (boto3 clients are thread-safe)


@value_class
class ShardCounts:
    """How many shards each sharded index key is spread over."""

    sync: int  # sparse ``sync`` index (open attempts and refunds, by due time)
    outbox: int  # sparse ``outbox`` index (events not yet published)
    events: int  # ``gsi1``: a merchant's event list
    ledger: int  # a ledger account's entries, running balance and value-day totals
    recon: int  # sparse ``recon`` index: an account's records of one Beijing day
    listing: int = 1  # ``listing`` index: a merchant's payments (and, apart, refunds), newest first

    def __post_init__(self) -> None:
        for name, count in vars(self).items():
            if not 1 <= count <= 65_536:
                raise ValueError(f"shard count {name} must be 1..65536, not {count}")


# Sized for 100,000 payments/s on one channel account and one merchant with every index projecting ALL
# attributes (each update of an indexed item is also a write to the index): see docs/capacity.md.
DEPLOYED = ShardCounts(sync=4096, outbox=2048, events=512, ledger=512, recon=1024, listing=512)
LOCAL = ShardCounts(sync=4, outbox=4, events=4, ledger=4, recon=4, listing=4)


def counts() -> ShardCounts:
    return DEPLOYED if settings().is_deployed else LOCAL


def _digest(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def shard_of(key: str, count: int) -> str:
    """The shard (decimal text) of an object id among ``count``: uniform, stable across processes and releases."""
    return str(_digest(key) % count)


def all_shards(count: int) -> list[str]:
    return [str(n) for n in range(count)]


def over_shards(count: int, work: Callable[[str], T], *, workers: int = PARALLEL) -> list[T]:
    """``work(shard)`` for every shard, ``workers`` at a time, in shard order. Work is started from a random
    shard onwards, so a sweep cut short by its time budget does not always leave the same shards for last."""
    names = all_shards(count)
    start = random.randrange(count)
    order = names[start:] + names[:start]
    if count == 1 or workers <= 1:
        done = {shard: work(shard) for shard in order}
    else:
        with ThreadPoolExecutor(max_workers=min(workers, count)) as pool:
            done = dict(zip(order, pool.map(work, order), strict=True))
    return [done[shard] for shard in names]
