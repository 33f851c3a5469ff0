"""Reads of the state table, and the conditional writes every transition is made of."""

from __future__ import annotations

from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.models import Attempt, Payment, Refund
from chalicelib.storage import records
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.transaction import Transaction


def state_table() -> str:
    return settings().names.state_table


def ledger_table() -> str:
    return settings().names.ledger_table


def get_item(key: dict[str, str], *, table: str | None = None) -> dict[str, Any] | None:
    response = client("dynamodb").get_item(
        TableName=table or state_table(), Key=to_item(key), ConsistentRead=True
    )
    item = response.get("Item")
    return from_item(item) if item else None


def get_payment(payment_id: str) -> Payment | None:
    item = get_item(records.payment_key(payment_id))
    return records.payment_from(item) if item else None


def get_attempt(attempt_id: str) -> Attempt | None:
    item = get_item(records.attempt_key(attempt_id))
    return records.attempt_from(item) if item else None


def get_refund(refund_id: str) -> Refund | None:
    item = get_item(records.refund_key(refund_id))
    return records.refund_from(item) if item else None


def payment_id_for_order_no(merchant_id: str, merchant_order_no: str) -> str | None:
    item = get_item(records.order_no_key(merchant_id, merchant_order_no))
    return item["payment_id"] if item else None


def batch_get(keys: list[dict[str, str]], *, table: str | None = None) -> list[dict[str, Any]]:
    """The items that exist among ``keys`` (any order), in BatchGetItem calls of 100, unprocessed keys retried."""
    name = table or state_table()
    found: list[dict[str, Any]] = []
    for first in range(0, len(keys), 100):
        request: dict[str, Any] = {name: {"Keys": [to_item(key) for key in keys[first:first + 100]]}}
        while request:
            response = client("dynamodb").batch_get_item(RequestItems=request)
            found.extend(from_item(item) for item in response.get("Responses", {}).get(name, []))
            request = response.get("UnprocessedKeys") or {}
    return found


def query(
    key_condition: str, values: dict[str, Any], *, index: str | None = None, limit: int = 100,
    forward: bool = True, start_key: dict[str, Any] | None = None, table: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    params: dict[str, Any] = {
        "TableName": table or state_table(),
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": to_item(values),
        "Limit": limit,
        "ScanIndexForward": forward,
    }
    if index:
        params["IndexName"] = index
    if start_key:
        params["ExclusiveStartKey"] = start_key
    response = client("dynamodb").query(**params)
    return [from_item(i) for i in response.get("Items", [])], response.get("LastEvaluatedKey")


# --- conditional writes used inside transactions ----------------------------------------------------


def guard_version(
    tx: Transaction, label: str, key: dict[str, str], *, status: str, version: int,
    changes: dict[str, Any], remove: tuple[str, ...] = (),
) -> None:
    """Write ``changes`` only if the record is still at ``status`` and ``version``; bumps the version."""
    tx.update(
        label, state_table(), key, {**changes, "version": version + 1},
        condition="#status = :expected_status AND #version = :expected_version",
        condition_values={":expected_status": status, ":expected_version": version},
        remove=remove,
    )
