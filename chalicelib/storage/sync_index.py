"""The sparse ``sync`` index: open attempts and refunds carry ``sync_shard`` + ``sync_due_at`` until final.

Status sync (chalicelib/service/status_sync.py) sweeps it; records leave it by dropping the attributes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.clock import iso

SYNC_SHARD = "0"
SYNC_FIELDS = ("sync_shard", "sync_due_at")
FIRST_QUERY_S = 15  # a new attempt is first queried this long after creation, unless a callback came first
PENDING_REFUND_RESUBMIT_S = 300  # a refund still pending this long is resubmitted (its message may be lost)


def first_sync(now: datetime, *, after_s: int = FIRST_QUERY_S) -> dict[str, Any]:
    return {"sync_shard": SYNC_SHARD, "sync_due_at": iso(now + timedelta(seconds=after_s)), "sync_count": 0}
