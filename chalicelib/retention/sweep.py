"""The daily archival sweep: moves settled records older than the hot window from the state table to the archive.

A parallel scan: each invocation owns one segment (``segment`` of ``segments``), resumes where its last run
stopped (a cursor kept in the table) and stops before its time budget, so a table of any size is covered by
enough segments or enough days, without a scan ever being restarted from the beginning.

What is archived (by key, chalicelib/storage/records.py): payments, attempts, refunds (only in a final state
and with nothing pending: no refund reserved, no settlement hold, no outbox or status-sync marker), webhook events
once delivered, failed or refused, internal commands once published, delivery attempts, and audit entries.
Everything else (uniqueness guards, callback dedupe, vaulted cards, cursors, pointers) stays: it is small,
expires by itself or guards money. The ledger stays in its own table (balances are computed from its entries).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.retention import archive
from chalicelib.retention.policy import Policy
from chalicelib.storage.aws import client

FINAL = {
    "PAYMENT": {"succeeded", "failed", "closed"},
    "ATTEMPT": {"succeeded", "failed", "closed"},
    "REFUND": {"succeeded", "failed"},
}
EVENT_FINAL = {"delivered", "failed", "refused"}
IN_FLIGHT = ("outbox_shard", "sync_shard", "settlement_hold")  # a marker someone still acts on
CURSOR_PK = "ARCHIVE#CURSOR"
PAGE_ITEMS = 500


@dataclass
class SweepResult:
    scanned: int = 0
    archived: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    kept_changed: int = 0
    finished_pass: bool = False


def kind_of(item: dict[str, Any]) -> str | None:
    """The retention kind of a raw state-table item, or None when it is not archived."""
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    if pk.startswith(("PAY#", "ATT#")) and sk in ("PAYMENT", "ATTEMPT"):
        return "payments"
    if pk.startswith("RE#") and sk == "REFUND":
        return "refunds"
    if pk.startswith("EVT#") and (sk == "EVENT" or sk.startswith("DLV#")):
        return "events"
    if pk.startswith("AUDIT#"):
        return "audit"
    return None


def last_change(item: dict[str, Any]) -> datetime | None:
    for name in ("updated_at", "last_attempt_at", "created_at", "at"):
        if name in item and "S" in item[name]:
            return parse_iso(item[name]["S"])
    if item["pk"]["S"].startswith("AUDIT#"):  # sk = <ISO time>#<kind or id>
        return parse_iso(item["sk"]["S"].split("#", 1)[0])
    return None


def settled(item: dict[str, Any]) -> bool:
    if any(marker in item for marker in IN_FLIGHT):
        return False
    sk = item["sk"]["S"]
    if sk in FINAL:
        if item.get("status", {}).get("S") not in FINAL[sk]:
            return False
        return sk != "PAYMENT" or int(item.get("amount_refund_pending", {}).get("N", "0")) == 0
    if sk == "EVENT":  # a webhook once its delivery ended; an internal command once published (checked above)
        return item.get("topic", {}).get("S") != "webhooks" or item.get("delivery_status", {}).get("S") in EVENT_FINAL
    return True  # delivery attempts and audit entries are written once


def archivable(item: dict[str, Any], cutoff: datetime) -> str | None:
    kind = kind_of(item)
    if kind is None or not settled(item):
        return None
    changed = last_change(item)
    return kind if changed is not None and changed < cutoff else None


def run(table: str, policy: Policy, *, segment: int = 0, segments: int = 1, budget_s: float = 600.0,
        now: datetime | None = None) -> SweepResult:
    now = now or utcnow()
    cutoff = now - timedelta(days=policy.hot_days)
    deadline = time.monotonic() + budget_s
    dynamodb = client("dynamodb")
    cursor_key = {"pk": {"S": CURSOR_PK}, "sk": {"S": f"{segment}/{segments}"}}
    stored = dynamodb.get_item(TableName=table, Key=cursor_key, ConsistentRead=True).get("Item", {})
    start = stored.get("start_key", {}).get("M")
    result = SweepResult()
    while True:  # at least one page per run, however short the budget
        scan: dict[str, Any] = {"TableName": table, "Segment": segment, "TotalSegments": segments,
                                "Limit": PAGE_ITEMS}
        if start:
            scan["ExclusiveStartKey"] = start
        page = dynamodb.scan(**scan)
        result.scanned += len(page["Items"])
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in page["Items"]:
            kind = archivable(item, cutoff)
            if kind:
                by_kind[kind].append(item)
        for kind, items in by_kind.items():
            moved = archive.archive(table, kind, items, policy, now=now)
            result.archived[kind] += len(moved)
            result.kept_changed += len(items) - len(moved)
        start = page.get("LastEvaluatedKey")
        if not start:
            result.finished_pass = True
            break
        if time.monotonic() >= deadline:
            break
    # The cursor is written after the page's records moved: a crash repeats a page, which finds them gone.
    cursor = {**cursor_key, "updated_at": {"S": iso(now)}}
    if start and not result.finished_pass:
        cursor["start_key"] = {"M": start}
    dynamodb.put_item(TableName=table, Item=cursor)
    return result
