"""The archive: settled records moved out of DynamoDB into S3, still found by their id.

Each archived record is written, in DynamoDB's own attribute-value JSON (every type kept), as one gzip member of a
batch object ``records/<kind>/<YYYY>/<MM>/<DD>/<batch>.jsonl.gz``; gzip members concatenate into one valid file,
so the whole object reads as JSON lines, and one record reads alone with a ranged GET of its member. Objects are
locked (S3 Object Lock) until the kind's retention ends, so nobody, the hub included, can delete or overwrite
evidence early; lifecycle rules move them to Glacier Instant Retrieval (infra/retention.py), which still answers
a GET in milliseconds.

In DynamoDB the record is replaced, in one transaction, by a pointer under ``ARC#<pk>`` / ``<sk>``: the bucket,
key, byte range and SHA-256 of its member. A pointer is a tenth of a record's size, keeps the partition grouping
(an object's audit entries stay one query) and expires (TTL) when the retention does, together with the object.
The delete is conditioned on the record being exactly as read, so a record that changed meanwhile stays hot.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.value_class import value_class
from chalicelib.retention.policy import Policy
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item

POINTER_PREFIX = "ARC#"
TRANSACTION_RECORDS = 50  # two actions each; DynamoDB allows 100 per transaction
# id prefix -> key of the record it names (chalicelib/storage/records.py)
ID_KEYS = {"pay": ("PAY#", "PAYMENT"), "att": ("ATT#", "ATTEMPT"), "re": ("RE#", "REFUND"), "evt": ("EVT#", "EVENT")}


class ArchiveCorrupt(Exception):
    """An archived member does not match the digest its pointer holds: never returned as the record."""


def bucket() -> str:
    return os.environ.get("PAYHUB_ARCHIVE_BUCKET") or settings().names.archive_bucket


@value_class
class Archived:
    key: dict[str, str]
    object_key: str


def _member(raw_item: dict[str, Any]) -> bytes:
    line = json.dumps(raw_item, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return gzip.compress(line, mtime=0)


def archive(table: str, kind: str, raw_items: list[dict[str, Any]], policy: Policy,
            *, now: datetime | None = None) -> list[Archived]:
    """Write ``raw_items`` (low-level DynamoDB items, all of ``kind``) as one locked object, then swap each for its
    pointer. Returns the records that left the table; the others changed since they were read and stay."""
    if not raw_items:
        return []
    now = now or utcnow()
    retain_until = now + timedelta(days=policy.retention_days[kind])
    object_key = f"records/{kind}/{now:%Y/%m/%d}/{uuid.uuid4().hex}.jsonl.gz"
    members = [_member(item) for item in raw_items]
    put: dict[str, Any] = {"Bucket": bucket(), "Key": object_key, "Body": b"".join(members),
                           "ContentType": "application/x-ndjson", "ContentEncoding": "gzip"}
    if policy.lock_mode:
        put.update(ObjectLockMode=policy.lock_mode, ObjectLockRetainUntilDate=retain_until)
    client("s3").put_object(**put)  # first: a crash after it leaves the records hot, never lost

    pointers, offset = [], 0
    for item, member in zip(raw_items, members, strict=True):
        pointers.append({
            "pk": {"S": POINTER_PREFIX + item["pk"]["S"]}, "sk": item["sk"],
            "archive_kind": {"S": kind}, "archive_bucket": {"S": put["Bucket"]}, "archive_key": {"S": object_key},
            "archive_offset": {"N": str(offset)}, "archive_length": {"N": str(len(member))},
            "archive_sha256": {"S": hashlib.sha256(gzip.decompress(member)).hexdigest()},
            "archived_at": {"S": iso(now)}, "retain_until": {"S": iso(retain_until)},
            "expires_at_epoch": {"N": str(int(retain_until.timestamp()))},
        })
        offset += len(member)
    moved: list[Archived] = []
    for start in range(0, len(raw_items), TRANSACTION_RECORDS):
        batch = list(zip(raw_items[start:start + TRANSACTION_RECORDS], pointers[start:start + TRANSACTION_RECORDS],
                         strict=True))
        if _swap(table, batch):
            moved += [Archived({"pk": i["pk"]["S"], "sk": i["sk"]["S"]}, object_key) for i, _ in batch]
        elif len(batch) > 1:  # one record changed meanwhile: the others go one by one
            moved += [Archived({"pk": i["pk"]["S"], "sk": i["sk"]["S"]}, object_key) for i, p in batch
                      if _swap(table, [(i, p)])]
    return moved


def _unchanged(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The condition that the stored record is still the one archived (records without ``updated_at`` are
    append-only: audit entries, delivery attempts)."""
    if "updated_at" in item:
        return "updated_at = :seen", {":seen": item["updated_at"]}
    return "attribute_exists(pk)", {}


def _swap(table: str, batch: list[tuple[dict[str, Any], dict[str, Any]]]) -> bool:
    actions = []
    for item, pointer in batch:
        condition, values = _unchanged(item)
        delete: dict[str, Any] = {"TableName": table, "Key": {"pk": item["pk"], "sk": item["sk"]},
                                  "ConditionExpression": condition}
        if values:
            delete["ExpressionAttributeValues"] = values
        actions += [{"Put": {"TableName": table, "Item": pointer, "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Delete": delete}]
    try:
        client("dynamodb").transact_write_items(TransactItems=actions)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "TransactionCanceledException":
            return False
        raise
    return True


# --- finding a record by id ------------------------------------------------------------------------------------


@value_class
class Found:
    item: dict[str, Any]
    archived: dict[str, Any] | None  # the pointer when the record came from the archive


def find(table: str, key: dict[str, str]) -> Found | None:
    """The record under ``key``: from DynamoDB while hot, else from its archived member (digest checked)."""
    dynamodb = client("dynamodb")
    hot = dynamodb.get_item(TableName=table, Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True)
    if "Item" in hot:
        return Found(from_item(hot["Item"]), None)
    pointer = dynamodb.get_item(TableName=table, Key={"pk": {"S": POINTER_PREFIX + key["pk"]}, "sk": {"S": key["sk"]}},
                                ConsistentRead=True).get("Item")
    return _read(pointer, key) if pointer else None


def find_by_id(table: str, object_id: str) -> Found | None:
    prefix = object_id.split("_", 1)[0]
    if prefix not in ID_KEYS or "_" not in object_id:
        raise ValueError(f"id {object_id!r}: expected one of {', '.join(p + '_…' for p in ID_KEYS)}")
    pk_prefix, sk = ID_KEYS[prefix]
    return find(table, {"pk": pk_prefix + object_id, "sk": sk})


def audit_trail(table: str, object_id: str) -> list[dict[str, Any]]:
    """Every audit entry of an object, hot and archived, oldest first."""
    entries = [from_item(i) for i in _query(table, f"AUDIT#{object_id}")]
    entries += [_read(p, {"pk": f"AUDIT#{object_id}", "sk": p["sk"]["S"]}).item
                for p in _query(table, f"{POINTER_PREFIX}AUDIT#{object_id}")]
    return sorted(entries, key=lambda e: e["sk"])


def _query(table: str, pk: str) -> Iterator[dict[str, Any]]:
    paginator = client("dynamodb").get_paginator("query")
    for page in paginator.paginate(TableName=table, KeyConditionExpression="pk = :pk",
                                   ExpressionAttributeValues={":pk": {"S": pk}}, ConsistentRead=True):
        yield from page["Items"]


def _read(pointer: dict[str, Any], key: dict[str, str]) -> Found:
    start, length = int(pointer["archive_offset"]["N"]), int(pointer["archive_length"]["N"])
    body = client("s3").get_object(Bucket=pointer["archive_bucket"]["S"], Key=pointer["archive_key"]["S"],
                                   Range=f"bytes={start}-{start + length - 1}")["Body"].read()
    line = gzip.decompress(body)
    if hashlib.sha256(line).hexdigest() != pointer["archive_sha256"]["S"]:
        raise ArchiveCorrupt(f"archived {key['pk']}/{key['sk']} does not match its digest")
    raw = json.loads(line)
    if (raw["pk"]["S"], raw["sk"]["S"]) != (key["pk"], key["sk"]):
        raise ArchiveCorrupt(f"archived member for {key['pk']}/{key['sk']} holds {raw['pk']['S']}/{raw['sk']['S']}")
    return Found(from_item(raw), from_item(pointer))


def read_object(object_key: str) -> Iterable[dict[str, Any]]:
    """Every record of one archive object, as JSON lines (what Athena or a person reads)."""
    body = client("s3").get_object(Bucket=bucket(), Key=object_key)["Body"].read()
    return [json.loads(line) for line in gzip.decompress(body).splitlines() if line]
