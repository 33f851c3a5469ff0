"""The sparse ``sync`` index: open attempts and refunds carry ``sync_shard`` + ``sync_due_at`` until final.

Status sync (chalicelib/service/status_sync.py) sweeps it, every shard; records leave it by dropping the
attributes. The shard is a hash of the record's own id (chalicelib/storage/shards.py), so an attempt keeps its
shard for life and no shard takes more than a few hundred writes a second at peak.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.clock import iso
from chalicelib.storage import shards

SYNC_FIELDS = ("sync_shard", "sync_due_at")
FIRST_QUERY_S = 15  # a new attempt is first queried this long after creation, unless a callback came first
PENDING_REFUND_RESUBMIT_S = 300  # a refund still pending this long is resubmitted (its message may be lost)


def sync_shard(object_id: str, count: int | None = None) -> str:
    return shards.shard_of(object_id, count or shards.counts().sync)


def first_sync(now: datetime, object_id: str, *, after_s: int = FIRST_QUERY_S, count: int | None = None) -> dict[str, Any]:
    """The attributes that put a new attempt or refund (``object_id``) into the index, first due ``after_s`` on."""
    return {"sync_shard": sync_shard(object_id, count), "sync_due_at": iso(now + timedelta(seconds=after_s)),
            "sync_count": 0}
