"""Operator API keys: who may read reconciliation runs. Distinct from merchant keys in every way: another
prefix (``op_<stage>_``), another record, another check, so a merchant key can never open the operator API
and an operator key can never act for a merchant.

  OPKEY#<sha256 of the key> / OPKEY    key id, name, status, created_at (the key itself is never stored)

Created and revoked with the CLI (``payhub operator-key create|list|revoke``); the key is shown once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import AuthenticationFailed, InvalidRequest, NotFound
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.config_repo import api_key_hash

_SK = "OPKEY"


@dataclass(frozen=True)
class Operator:
    key_id: str
    name: str


@dataclass(frozen=True)
class NewOperatorKey:
    operator: Operator
    api_key: str  # shown once


def _table() -> str:
    return settings().names.config_table


def _prefix() -> str:
    return f"op_{settings().stage}_"


def create_operator_key(name: str) -> NewOperatorKey:
    if not name.strip() or len(name) > 100:
        raise InvalidRequest("name must be 1 to 100 characters", param="name")
    api_key = _prefix() + secrets.token_urlsafe(32)
    digest = api_key_hash(api_key)
    operator = Operator(key_id=f"opk_{digest[:16]}", name=name.strip())
    client("dynamodb").put_item(TableName=_table(), ConditionExpression="attribute_not_exists(pk)", Item=to_item({
        "pk": f"OPKEY#{digest}", "sk": _SK, "key_id": operator.key_id, "name": operator.name, "status": "active",
        "created_at": iso(utcnow()),
    }))
    return NewOperatorKey(operator, api_key)


def authenticate_operator(authorization: str | None) -> Operator:
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthenticationFailed("send an operator key as 'Authorization: Bearer op_...'")
    key = authorization[len("Bearer "):].strip()
    if not key.startswith(_prefix()):  # a merchant key, or another stage's operator key
        raise AuthenticationFailed("invalid operator key")
    item = client("dynamodb").get_item(TableName=_table(), Key=to_item({"pk": f"OPKEY#{api_key_hash(key)}",
                                                                         "sk": _SK})).get("Item")
    record = from_item(item) if item else None
    if record is None or record.get("status") != "active":
        raise AuthenticationFailed("invalid operator key")
    return Operator(record["key_id"], record["name"])


def _all() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client("dynamodb").get_paginator("scan").paginate(
        TableName=_table(), FilterExpression="sk = :sk", ExpressionAttributeValues={":sk": {"S": _SK}},
    ):
        found += [from_item(raw) for raw in page.get("Items", [])]
    return found


def list_operator_keys() -> list[dict[str, Any]]:
    """Operator listing (CLI only): ids, names and status, never a key or its hash."""
    return sorted(({"key_id": r["key_id"], "name": r["name"], "status": r["status"], "created_at": r["created_at"]}
                   for r in _all()), key=lambda r: str(r["created_at"]))


def revoke_operator_key(key_id: str) -> None:
    matches = [r for r in _all() if r["key_id"] == key_id]
    if not matches:
        raise NotFound(f"no operator key {key_id}", param="key_id")
    client("dynamodb").update_item(
        TableName=_table(), Key=to_item({"pk": matches[0]["pk"], "sk": _SK}),
        UpdateExpression="SET #status = :revoked", ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":revoked": {"S": "revoked"}},
    )
