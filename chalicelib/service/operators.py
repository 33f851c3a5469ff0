"""Operator API keys: who may read reconciliation runs. Distinct from merchant keys in every way: another
prefix (``op_<stage>_``), another record, another check, so a merchant key can never open the operator API
and an operator key can never act for a merchant.

  OPKEY#<sha256 of the key> / OPKEY    key id, name, status, created_at (the key itself is never stored)

Created and revoked with the CLI (``payhub operator-key create|list|revoke``); the key is shown once. Both
are audited (``payhub audit list``). Authentication reads the record on every request, consistently: a
revoked operator key is refused at once.
"""

from __future__ import annotations

import secrets
from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import AuthenticationFailed, InvalidRequest, NotFound
from chalicelib.domain.value_class import value_class
from chalicelib.service import audit
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.config_repo import api_key_hash
from chalicelib.storage.transaction import Transaction

_SK = "OPKEY"


@value_class
class Operator:
    key_id: str
    name: str

    def actor(self) -> audit.Actor:
        return audit.Actor("api", self.key_id, self.name)


@value_class
class NewOperatorKey:
    operator: Operator
    api_key: str  # shown once


def _table() -> str:
    return settings().names.config_table


def _prefix() -> str:
    return f"op_{settings().stage}_"


def create_operator_key(name: str, *, actor: audit.Actor | None = None) -> NewOperatorKey:
    if not name.strip() or len(name) > 100:
        raise InvalidRequest("name must be 1 to 100 characters", param="name")
    api_key = _prefix() + secrets.token_urlsafe(32)
    digest = api_key_hash(api_key)
    operator = Operator(key_id=f"opk_{digest[:16]}", name=name.strip())
    record = {"key_id": operator.key_id, "name": operator.name, "status": "active", "created_at": iso(utcnow())}
    tx = Transaction()
    tx.put_new("key", _table(), {"pk": f"OPKEY#{digest}", "sk": _SK, **record})
    audit.add(tx, actor or audit.Actor.cli(), "operator_key.create", operator.key_id, after=record)
    tx.commit()
    return NewOperatorKey(operator, api_key)


def authenticate_operator(authorization: str | None) -> Operator:
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthenticationFailed("send an operator key as 'Authorization: Bearer op_...'")
    key = authorization[len("Bearer "):].strip()
    if not key.startswith(_prefix()):  # a merchant key, or another stage's operator key
        raise AuthenticationFailed("invalid operator key")
    item = client("dynamodb").get_item(TableName=_table(), ConsistentRead=True,
                                       Key=to_item({"pk": f"OPKEY#{api_key_hash(key)}", "sk": _SK})).get("Item")
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


def revoke_operator_key(key_id: str, *, actor: audit.Actor | None = None) -> None:
    """Immediate: operator keys are read on every request, never cached."""
    matches = [r for r in _all() if r["key_id"] == key_id]
    if not matches:
        raise NotFound(f"no operator key {key_id}", param="key_id")
    if matches[0].get("status") == "revoked":
        return
    now = iso(utcnow())
    tx = Transaction()
    tx.update("key", _table(), {"pk": matches[0]["pk"], "sk": _SK}, {"status": "revoked", "revoked_at": now},
              condition="attribute_exists(pk)", condition_values={})
    audit.add(tx, actor or audit.Actor.cli(), "operator_key.revoke", key_id,
              before={"status": matches[0].get("status")}, after={"status": "revoked", "revoked_at": now})
    tx.commit()
