"""Payout batches in the state table.

  POB#<batch_id> / BATCH                    the batch: merchant, currency, state, totals, approval, reserve
  POB#<batch_id> / ITEM#<line:05d>          one item: payee, amount, state, attempt, transfer reference
  POBNO#<merchant_id>#<merchant_batch_no> / BATCHNO   which batch a merchant's batch number names (put once)
  POBDAY#<merchant_id>#<CCY>#<day> / TOTAL  ``amount``: payouts released on that Beijing day (the daily limit)
  POBCLAIM#<batch_id> / CLAIM               which request writes the batch's items (a lease of CLAIM_S)

A batch's id is a hash of (merchant, batch number, content), so its items can be written before the batch
record without a second submission of different content ever writing over them: that one has another id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.state_repo import get_item, state_table

WRITE_BATCH = 25  # BatchWriteItem's limit


def batch_key(batch_id: str) -> dict[str, str]:
    return {"pk": f"POB#{batch_id}", "sk": "BATCH"}


def item_key(batch_id: str, line: int) -> dict[str, str]:
    return {"pk": f"POB#{batch_id}", "sk": f"ITEM#{line:05d}"}


def number_key(merchant_id: str, merchant_batch_no: str) -> dict[str, str]:
    return {"pk": f"POBNO#{merchant_id}#{merchant_batch_no}", "sk": "BATCHNO"}


def day_total_key(merchant_id: str, currency: str, day: str) -> dict[str, str]:
    return {"pk": f"POBDAY#{merchant_id}#{currency}#{day}", "sk": "TOTAL"}


def put_items(items: list[dict[str, Any]]) -> None:
    """Write items, 25 at a time, retrying what DynamoDB leaves unprocessed (idempotent: same keys, same items)."""
    dynamodb, table = client("dynamodb"), state_table()
    for first in range(0, len(items), WRITE_BATCH):
        request: dict[str, Any] = {table: [{"PutRequest": {"Item": to_item(item)}}
                                           for item in items[first:first + WRITE_BATCH]]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


CLAIM_S = 300  # a claim older than this (its request died) may be taken over


def claim(batch_id: str, now: str) -> bool:
    """Take the right to write a batch's items: False when another request holds it (and has not died)."""
    from datetime import timedelta

    from chalicelib.domain.clock import iso, parse_iso

    stale = iso(parse_iso(now) - timedelta(seconds=CLAIM_S))
    try:
        client("dynamodb").put_item(
            TableName=state_table(), Item=to_item({"pk": f"POBCLAIM#{batch_id}", "sk": "CLAIM", "claimed_at": now}),
            ConditionExpression="attribute_not_exists(pk) OR claimed_at < :stale",
            ExpressionAttributeValues={":stale": {"S": stale}})
    except client("dynamodb").exceptions.ConditionalCheckFailedException:
        return False
    return True


def release_claim(batch_id: str) -> None:
    client("dynamodb").delete_item(TableName=state_table(), Key=to_item({"pk": f"POBCLAIM#{batch_id}", "sk": "CLAIM"}))


def delete_items(items: list[dict[str, Any]]) -> None:
    """Remove written items (a batch whose record could not be committed), 25 at a time."""
    dynamodb, table = client("dynamodb"), state_table()
    for first in range(0, len(items), WRITE_BATCH):
        request: dict[str, Any] = {table: [{"DeleteRequest": {"Key": to_item({"pk": item["pk"], "sk": item["sk"]})}}
                                           for item in items[first:first + WRITE_BATCH]]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def get_batch(batch_id: str) -> dict[str, Any] | None:
    return get_item(batch_key(batch_id))


def get_number(merchant_id: str, merchant_batch_no: str) -> dict[str, Any] | None:
    return get_item(number_key(merchant_id, merchant_batch_no))


def day_total(merchant_id: str, currency: str, day: str) -> int:
    found = get_item(day_total_key(merchant_id, currency, day))
    return int(found["amount"]) if found else 0


def items(batch_id: str, *, first_line: int = 1, last_line: int = 99_999, after: int | None = None,
          limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The batch's items from ``first_line`` to ``last_line`` (after line ``after``), in line order."""
    start = max(first_line, (after or 0) + 1)
    values = {":pk": {"S": f"POB#{batch_id}"}, ":from": {"S": f"ITEM#{start:05d}"}, ":to": {"S": f"ITEM#{last_line:05d}"}}
    request: dict[str, Any] = {"TableName": state_table(), "ConsistentRead": True,
                               "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
                               "ExpressionAttributeValues": values}
    given = 0
    for page in client("dynamodb").get_paginator("query").paginate(**request):
        for raw in page.get("Items", []):
            yield from_item(raw)
            given += 1
            if limit is not None and given >= limit:
                return
