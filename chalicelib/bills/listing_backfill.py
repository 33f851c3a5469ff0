"""Give payments and refunds written before the ``listing`` index existed their place in it, without a stop.

Records created by older code carry no ``list_pk``/``list_sk``, so the index (a sparse GSI) does not hold them
and ``GET /v1/payments`` never shows them. The backfill reads the state table in parallel Scan segments, asks
DynamoDB to return only payment and refund records without ``list_pk``, and gives each one the keys the write
path would have given it (``listing_index.listing_fields``, the function ``records.payment_item`` and
``refund_item`` use) with a conditional UpdateItem that only adds them if the record is still exactly as read:
still without the keys (never overwrite), at the same ``version`` (every change of a payment or refund bumps it:
a record that changed meanwhile is left alone and counted, and the next run reads it afresh), with the same
merchant and creation time. Each object gains one index entry; nothing else of the record is written.

Resumable: the position of every segment (its LastEvaluatedKey) is kept in a cursor, given back when a run
stops early (``max_pages``) and accepted by the next run, which goes on where each segment stopped. A record
done twice is harmless (the second UpdateItem's condition fails on ``list_pk`` and counts it as done already).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalicelib.storage import listing_index, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item

log = logging.getLogger(__name__)

KIND_OF_SORT_KEY = {"PAYMENT": "payment", "REFUND": "refund"}
ID_FIELD = {"payment": "payment_id", "refund": "refund_id"}
PAGE_SIZE = 500  # items a Scan page reads (before the filter)
MAX_SEGMENTS = 64
_DONE = "done"


class BadCursor(ValueError):
    """The cursor given is not one a backfill printed."""


@dataclass
class Report:
    segments: int
    scanned: int = 0  # items the Scan read
    payments_added: int = 0
    refunds_added: int = 0
    changed_meanwhile: int = 0  # changed (or gained its keys) between the read and the update: left alone
    unowned: int = 0  # no merchant (an orphan's placeholder): nothing to list it under
    cursor: str | None = None  # where to go on from; None when every segment reached its end
    positions: dict[int, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"segments": self.segments, "scanned": self.scanned, "payments_added": self.payments_added,
                "refunds_added": self.refunds_added, "changed_meanwhile": self.changed_meanwhile,
                "unowned": self.unowned, "complete": self.cursor is None, "cursor": self.cursor}


def encode_cursor(segments: int, positions: dict[int, Any]) -> str | None:
    if all(positions.get(s) == _DONE for s in range(segments)):
        return None
    body = json.dumps({"n": segments, "p": {str(s): positions.get(s) for s in range(segments)}}, sort_keys=True)
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, dict[int, Any]]:
    try:
        body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        segments = int(body["n"])
        positions = {int(s): p for s, p in body["p"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadCursor("cursor is not one a listing backfill printed") from exc
    if not 1 <= segments <= MAX_SEGMENTS or set(positions) != set(range(segments)) or not all(
            p is None or p == _DONE or isinstance(p, dict) for p in positions.values()):
        raise BadCursor("cursor is not one a listing backfill printed")
    return segments, positions


def _add_keys(table: str, item: dict[str, Any], kind: str, report: Report, lock: threading.Lock) -> None:
    fields = listing_index.listing_fields(kind, item.get("merchant_id"), item[ID_FIELD[kind]], item["created_at"])
    if not fields:
        with lock:
            report.unowned += 1
        return
    key = records.payment_key(item["payment_id"]) if kind == "payment" else records.refund_key(item["refund_id"])
    values = {":list_pk": fields["list_pk"], ":list_sk": fields["list_sk"], ":merchant_id": item["merchant_id"],
              ":created_at": item["created_at"]}
    unchanged = "attribute_not_exists(#version)"
    if item.get("version") is not None:
        unchanged, values[":version"] = "#version = :version", item["version"]
    try:
        client("dynamodb").update_item(
            TableName=table, Key=to_item(key),
            UpdateExpression="SET list_pk = :list_pk, list_sk = :list_sk",
            ConditionExpression=f"attribute_exists(pk) AND attribute_not_exists(list_pk) AND {unchanged} "
                                "AND merchant_id = :merchant_id AND created_at = :created_at",
            ExpressionAttributeNames={"#version": "version"}, ExpressionAttributeValues=to_item(values))
    except client("dynamodb").exceptions.ConditionalCheckFailedException:
        with lock:
            report.changed_meanwhile += 1
        return
    with lock:
        if kind == "payment":
            report.payments_added += 1
        else:
            report.refunds_added += 1


def _segment(table: str, segment: int, report: Report, lock: threading.Lock, max_pages: int | None,
             on_page: Callable[[Report], None] | None) -> None:
    pages = 0
    while report.positions.get(segment) != _DONE and (max_pages is None or pages < max_pages):
        request: dict[str, Any] = {
            "TableName": table, "Segment": segment, "TotalSegments": report.segments, "Limit": PAGE_SIZE,
            "FilterExpression": "sk IN (:payment, :refund) AND attribute_not_exists(list_pk)",
            "ProjectionExpression": "pk, sk, payment_id, refund_id, merchant_id, created_at, #version",
            "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": to_item({":payment": "PAYMENT", ":refund": "REFUND"}),
        }
        start = report.positions.get(segment)
        if isinstance(start, dict):
            request["ExclusiveStartKey"] = start
        response = client("dynamodb").scan(**request)
        for raw in response.get("Items", []):
            item = from_item(raw)
            _add_keys(table, item, KIND_OF_SORT_KEY[item["sk"]], report, lock)
        pages += 1
        with lock:
            report.scanned += response.get("ScannedCount", 0)
            report.positions[segment] = response.get("LastEvaluatedKey") or _DONE
            report.cursor = encode_cursor(report.segments, report.positions)
            if on_page is not None:
                on_page(report)


def run(*, segments: int = 4, cursor: str | None = None, max_pages: int | None = None,
        on_page: Callable[[Report], None] | None = None) -> Report:
    """Backfill every segment to its end, or ``max_pages`` Scan pages per segment; resume from ``cursor``.

    ``on_page`` sees the report (with the cursor to resume from) after every page, e.g. to save the cursor."""
    if cursor is not None:
        segments, positions = decode_cursor(cursor)
    else:
        if not 1 <= segments <= MAX_SEGMENTS:
            raise ValueError(f"segments must be between 1 and {MAX_SEGMENTS}")
        positions = {s: None for s in range(segments)}
    if max_pages is not None and max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    report = Report(segments, positions=positions)
    report.cursor = encode_cursor(segments, positions)
    table = state_repo.state_table()
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=segments) as pool:
        for done in [pool.submit(_segment, table, s, report, lock, max_pages, on_page) for s in range(segments)]:
            done.result()
    log.info("listing backfill: %s", report.public())
    return report
