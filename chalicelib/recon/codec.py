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
from chalicelib.recon.model import Discrepancy, HubRecord, Pooled


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
