"""Statement rows, hub records and pool entries to and from plain dicts (DynamoDB items, reports, the API).

Amounts stay integer minor units with their currency; times are UTC ISO strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from chalicelib.channels.base import StatementKind, StatementRow
from chalicelib.domain.clock import iso, parse_iso
from chalicelib.domain.money import Money
from chalicelib.recon.model import DayResult, Discrepancy, DiscrepancyKind, FieldDiff, HubRecord, Pooled


def _money(values: Mapping[str, Any], prefix: str) -> Money | None:
    minor = values.get(f"{prefix}_minor")
    return Money(int(minor), str(values[f"{prefix}_currency"])) if minor is not None else None


def row_to_dict(row: StatementRow) -> dict[str, Any]:
    return {
        "kind": str(row.kind), "object_id": row.object_id, "channel_ref": row.channel_ref,
        "amount_minor": row.amount.minor, "amount_currency": row.amount.currency, "status": row.status,
        "occurred_at": iso(row.occurred_at), "fee_minor": row.fee.minor if row.fee else None,
        "fee_currency": row.fee.currency if row.fee else None, "attempt_id": row.attempt_id, "line": row.line,
    }


def row_from_dict(values: Mapping[str, Any]) -> StatementRow:
    amount = _money(values, "amount")
    assert amount is not None
    return StatementRow(
        kind=StatementKind(values["kind"]), object_id=str(values["object_id"]), channel_ref=values.get("channel_ref"),
        amount=amount, status=str(values["status"]), occurred_at=parse_iso(str(values["occurred_at"])),
        fee=_money(values, "fee"), attempt_id=values.get("attempt_id"), line=int(values.get("line") or 0),
    )


def record_to_dict(record: HubRecord) -> dict[str, Any]:
    return {
        "kind": str(record.kind), "object_id": record.object_id, "channel_ref": record.channel_ref,
        "amount_minor": record.amount.minor, "amount_currency": record.amount.currency, "status": record.status,
        "occurred_at": iso(record.occurred_at), "attempt_id": record.attempt_id,
        "expected_fee_minor": record.expected_fee.minor if record.expected_fee else None,
        "expected_fee_currency": record.expected_fee.currency if record.expected_fee else None,
    }


def record_from_dict(values: Mapping[str, Any]) -> HubRecord:
    amount = _money(values, "amount")
    assert amount is not None
    return HubRecord(
        kind=StatementKind(values["kind"]), object_id=str(values["object_id"]), channel_ref=values.get("channel_ref"),
        amount=amount, status=str(values["status"]), occurred_at=parse_iso(str(values["occurred_at"])),
        attempt_id=values.get("attempt_id"), expected_fee=_money(values, "expected_fee"),
    )


def pooled_to_dict(entry: Pooled) -> dict[str, Any]:
    return {
        "since": entry.since.isoformat(),
        "row": row_to_dict(entry.row) if entry.row else None,
        "record": record_to_dict(entry.record) if entry.record else None,
    }


def pooled_from_dict(values: Mapping[str, Any]) -> Pooled:
    return Pooled(
        since=date.fromisoformat(str(values["since"])),
        row=row_from_dict(values["row"]) if values.get("row") else None,
        record=record_from_dict(values["record"]) if values.get("record") else None,
    )


def subject(discrepancy: Discrepancy) -> tuple[Money | None, str | None]:
    """The amount a difference is about (the channel's when it has a row) and when it happened."""
    if discrepancy.row is not None:
        return discrepancy.row.amount, iso(discrepancy.row.occurred_at)
    if discrepancy.record is not None:
        return discrepancy.record.amount, iso(discrepancy.record.occurred_at)
    return None, None


def discrepancy_to_dict(found: Discrepancy) -> dict[str, Any]:
    return {"kind": str(found.kind), "object_kind": str(found.object_kind), "object_id": found.object_id,
            "reasons": [[reason.field, reason.hub, reason.channel] for reason in found.reasons],
            "row": row_to_dict(found.row) if found.row else None,
            "record": record_to_dict(found.record) if found.record else None,
            "since": found.since.isoformat() if found.since else None}


def discrepancy_from_dict(values: Mapping[str, Any]) -> Discrepancy:
    return Discrepancy(
        kind=DiscrepancyKind(values["kind"]), object_kind=StatementKind(values["object_kind"]),
        object_id=str(values["object_id"]),
        reasons=tuple(FieldDiff(str(field), hub, channel) for field, hub, channel in values["reasons"]),
        row=row_from_dict(values["row"]) if values.get("row") else None,
        record=record_from_dict(values["record"]) if values.get("record") else None,
        since=date.fromisoformat(str(values["since"])) if values.get("since") else None,
    )


def result_to_dict(result: DayResult) -> dict[str, Any]:
    """A day's (or a shard's) matching result as JSON-able values: what a shard function hands on."""
    return {"matched": result.matched, "matched_amount": dict(result.matched_amount),
            "discrepancies": [discrepancy_to_dict(found) for found in result.discrepancies],
            "carried": [pooled_to_dict(entry) for entry in result.carried]}


def result_from_dict(values: Mapping[str, Any]) -> DayResult:
    return DayResult(matched=int(values["matched"]),
                     matched_amount={str(k): int(v) for k, v in values["matched_amount"].items()},
                     discrepancies=[discrepancy_from_dict(found) for found in values["discrepancies"]],
                     carried=[pooled_from_dict(entry) for entry in values["carried"]])
