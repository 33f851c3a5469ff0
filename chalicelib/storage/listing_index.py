"""Where a payment or a refund sits in its merchant's list: the ``listing`` index of the state table.

  list_pk = LIST#<merchant_id>#PAY#<s>   (refunds: ...#REF#<s>)      s = shard of the object's id
  list_sk = <created_at>#<object id>                                  newest first when read backwards

Both are set when the object is first written and never change, and the index projects only attributes that
never change either (method, channel, payment_id), so each object costs exactly one index write in its life.
A merchant taking 100,000 payments a second would put them all on one key without the shard; with
``shards.counts().listing`` shards (512 deployed, as the event list) each key takes about 200 writes a second.
A list reads every shard and merges them (chalicelib/bills/listing.py). ``created_at`` is the hub's fixed-width
ISO text with milliseconds, so the sort key orders by time, then by id for objects of the same millisecond.
"""

from __future__ import annotations

from chalicelib.storage import shards

KINDS = {"payment": "PAY", "refund": "REF"}


def listing_shard(object_id: str, count: int | None = None) -> str:
    return shards.shard_of(object_id, count or shards.counts().listing)


def partition(merchant_id: str, kind: str, shard: str) -> str:
    return f"LIST#{merchant_id}#{KINDS[kind]}#{shard}"


def position(created_at: str, object_id: str) -> str:
    return f"{created_at}#{object_id}"


def listing_fields(kind: str, merchant_id: str | None, object_id: str, created_at: str) -> dict[str, str]:
    """The index keys of a new object. None for an object owned by no merchant (an orphan's placeholder)."""
    if not merchant_id:
        return {}
    return {"list_pk": partition(merchant_id, kind, listing_shard(object_id)),
            "list_sk": position(created_at, object_id)}
