"""Reads of the state table, and the conditional writes every transition is made of."""

from __future__ import annotations

from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.ids import payment_id_of
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


def get_attempt_and_payment(attempt_id: str) -> tuple[Attempt | None, Payment | None]:
    """The attempt and its payment in one consistent ``BatchGetItem`` when the attempt id names its payment
    (every attempt made since ids did), else two reads: the attempt, then the payment it points to."""
    payment_id = payment_id_of(attempt_id)
    if payment_id is None:
        attempt = get_attempt(attempt_id)
        return attempt, get_payment(attempt.payment_id) if attempt else None
    attempt_key, payment_key = records.attempt_key(attempt_id), records.payment_key(payment_id)
    found = {item["pk"]: item for item in batch_get([attempt_key, payment_key], consistent=True)}
    attempt_item, payment_item = found.get(attempt_key["pk"]), found.get(payment_key["pk"])
    attempt = records.attempt_from(attempt_item) if attempt_item else None
    payment = records.payment_from(payment_item) if payment_item else None
    if attempt is not None and payment is not None and attempt.payment_id != payment.payment_id:
        raise RuntimeError(f"attempt {attempt_id} belongs to {attempt.payment_id}, not the payment its id names")
    return attempt, payment


def get_refund(refund_id: str) -> Refund | None:
    item = get_item(records.refund_key(refund_id))
    return records.refund_from(item) if item else None


def payment_id_for_order_no(merchant_id: str, merchant_order_no: str) -> str | None:
    item = get_item(records.order_no_key(merchant_id, merchant_order_no))
    return item["payment_id"] if item else None


def batch_get(keys: list[dict[str, str]], *, table: str | None = None, consistent: bool = False) -> list[dict[str, Any]]:
    """The items that exist among ``keys`` (any order), in BatchGetItem calls of 100, unprocessed keys retried.
    ``consistent``: strongly consistent reads, as a transition's read-decide-write must have."""
    name = table or state_table()
    found: list[dict[str, Any]] = []
    for first in range(0, len(keys), 100):
        request: dict[str, Any] = {name: {"Keys": [to_item(key) for key in keys[first:first + 100]],
                                          "ConsistentRead": consistent}}
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
