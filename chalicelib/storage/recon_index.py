"""The sparse ``recon`` index: what the hub must reconcile, findable by (channel account, Beijing day).

An attempt enters it in the transaction that records its capture (the money moved), under the Beijing day of
the channel's success time (``PaymentStatus.paid_at``; the hub's clock when the channel gives none), which is
the day the channel's statement lists it on. A refund enters it with its first transition (processing,
succeeded or failed), under the Beijing day it was created: channels list a refund on the day they accepted
it, and a refund still processing there must be findable too. The key never moves afterwards, and the record
is read whole through the index, so a run always sees its current status.

  recon_pk = <account_id>#<YYYY-MM-DD>    recon_sk = payment#<attempt_id> | refund#<refund_id>
  recon_at = when the money moved (UTC ISO), the time a statement row is compared with

The ledger journal written in the same transaction carries the same day (``value_day``), so the ledger check
sums exactly the money of the records this index holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from chalicelib.domain.clock import iso
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item

INDEX = "recon"
FIELDS = ("recon_pk", "recon_sk", "recon_at")
BEIJING = timezone(timedelta(hours=8))
PAGE_ITEMS = 1000


def beijing_day(moment: datetime) -> str:
    """The Beijing calendar day of a moment (a naive moment is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(BEIJING).date().isoformat()


def partition(account_id: str, day: date | str) -> str:
    return f"{account_id}#{day if isinstance(day, str) else day.isoformat()}"


def index_fields(account_id: str, kind: str, object_id: str, occurred_at: datetime) -> dict[str, str]:
    """Attributes that put an attempt (``kind`` payment) or refund into the index; set in the transition."""
    return {"recon_pk": partition(account_id, beijing_day(occurred_at)), "recon_sk": f"{kind}#{object_id}",
            "recon_at": iso(occurred_at)}


def day_pages(table: str, account_id: str, day: date | str) -> Iterator[list[dict[str, Any]]]:
    """The indexed attempt and refund items of one account and day, one query page at a time (never the
    whole day in memory). Eventually consistent, as every GSI read: a run starts hours after the day ended."""
    paginator = client("dynamodb").get_paginator("query")
    for page in paginator.paginate(
        TableName=table, IndexName=INDEX, KeyConditionExpression="recon_pk = :pk",
        ExpressionAttributeValues={":pk": {"S": partition(account_id, day)}},
        PaginationConfig={"PageSize": PAGE_ITEMS},
    ):
        yield [from_item(item) for item in page.get("Items", [])]
