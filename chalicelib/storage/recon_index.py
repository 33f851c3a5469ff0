"""The sparse ``recon`` index: what the hub must reconcile, findable by (channel account, Beijing day).

An attempt enters it in the transaction that records its capture (the money moved), under the Beijing day of
the channel's success time (``PaymentStatus.paid_at``; the hub's clock when the channel gives none), which is
the day the channel's statement lists it on. A refund enters it with its first transition (processing,
succeeded or failed), under the Beijing day it was created: channels list a refund on the day they accepted
it, and a refund still processing there must be findable too. The key never moves afterwards, and the record
is read whole through the index, so a run always sees its current status.

  recon_pk  = <account_id>#<YYYY-MM-DD>    recon_sk = payment#<attempt_id> | refund#<refund_id>
  recon_spk = <recon_pk>#<shard>          the index's partition key (shard: a hash of the object id)
  recon_at  = when the money moved (UTC ISO), the time a statement row is compared with

One account's day would be a single partition key taking every payment of the account (100,000 writes a
second at peak, against DynamoDB's ~1,000 per key), so the index is keyed by ``recon_spk``, spread over
``shards.counts().recon`` keys, and a run reads every shard. ``recon_pk`` stays on the item, unsharded, for the
readers of table exports (chalicelib/recon/hub_records.py), which filter by account and day.

The ledger journal written in the same transaction carries the same day (``value_day``), so the ledger check
sums exactly the money of the records this index holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from chalicelib.domain.clock import iso
from chalicelib.storage import shards
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item

INDEX = "recon"
FIELDS = ("recon_pk", "recon_spk", "recon_sk", "recon_at")
BEIJING = timezone(timedelta(hours=8))
PAGE_ITEMS = 1000


def beijing_day(moment: datetime) -> str:
    """The Beijing calendar day of a moment (a naive moment is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(BEIJING).date().isoformat()


def partition(account_id: str, day: date | str) -> str:
    return f"{account_id}#{day if isinstance(day, str) else day.isoformat()}"


def recon_shard(object_id: str, count: int | None = None) -> str:
    return shards.shard_of(object_id, count or shards.counts().recon)


def index_fields(account_id: str, kind: str, object_id: str, occurred_at: datetime,
                 count: int | None = None) -> dict[str, str]:
    """Attributes that put an attempt (``kind`` payment) or refund into the index; set in the transition."""
    day = partition(account_id, beijing_day(occurred_at))
    return {"recon_pk": day, "recon_spk": f"{day}#{recon_shard(object_id, count)}",
            "recon_sk": f"{kind}#{object_id}", "recon_at": iso(occurred_at)}


def day_pages(table: str, account_id: str, day: date | str) -> Iterator[list[dict[str, Any]]]:
    """The indexed attempt and refund items of one account and day, shard after shard, one query page at a time
    (never the whole day in memory). Eventually consistent, as every GSI read: a run starts hours after the day
    ended."""
    paginator = client("dynamodb").get_paginator("query")
    for shard in shards.all_shards(shards.counts().recon):
        for page in paginator.paginate(
            TableName=table, IndexName=INDEX, KeyConditionExpression="recon_spk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"{partition(account_id, day)}#{shard}"}},
            PaginationConfig={"PageSize": PAGE_ITEMS},
        ):
            if page.get("Items"):
                yield [from_item(item) for item in page["Items"]]
