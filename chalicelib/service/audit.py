"""The audit trail of operator actions: who did what to which object, when, and what it looked like before
and after. Written in the same DynamoDB transaction as the action itself, so there is no action without its
record and no record of an action that did not happen.

  OPERATOR_AUDIT / aud_<UTC time>_<random>    actor, action, target, before, after (config table)

One partition, ordered by the id (which starts with the time): operator actions are a handful a day, and a
single Query reads them newest first; the id is also the paging cursor.
Nothing secret is ever recorded: values whose field names say they are secret are replaced by a marker
before the record is built (and no caller passes a key or secret in the first place).
"""

from __future__ import annotations

import getpass
import os
import re
from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.ids import new_id
from chalicelib.domain.value_class import value_class
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item
from chalicelib.storage.transaction import Transaction

PK = "OPERATOR_AUDIT"
REDACTED = "[redacted]"
# Field names whose values must never reach the audit trail (key ids and secret *names* are fine).
_SECRET_FIELD = re.compile(r"secret|private|password|passphrase|api_key|apiv3|token|^key$|pem", re.IGNORECASE)
_AUDIT_ID = re.compile(r"aud_[0-9]{8}T[0-9]{12}_[a-z2-7]{12}")
_SAFE_FIELD = re.compile(r"(^|_)(id|ids|names?|fields|updated|serial_no|at)$", re.IGNORECASE)


@value_class
class Actor:
    """Who acted: an operator key on the operator API, or a person at the CLI (with their AWS identity)."""

    via: str  # "api" | "cli"
    id: str  # operator key id, or the CLI user
    name: str

    def as_record(self) -> dict[str, str]:
        return {"via": self.via, "id": self.id, "name": self.name}

    @staticmethod
    def cli() -> Actor:
        """The person running ``payhub``: ``PAYHUB_OPERATOR`` when set, else the login name."""
        user = os.environ.get("PAYHUB_OPERATOR") or getpass.getuser()
        return Actor("cli", user, user)


def scrub(value: Any) -> Any:
    """A copy with every secret-named field's value replaced: before/after go through this."""
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_FIELD.search(k) and not _SAFE_FIELD.search(k) else scrub(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _table() -> str:
    return settings().names.config_table


def add(tx: Transaction, actor: Actor, action: str, target: str, *, before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None) -> str:
    """Add the audit record of ``action`` on ``target`` to the transaction that performs it."""
    moment = utcnow()
    now = iso(moment)
    audit_id = f"aud_{moment.strftime('%Y%m%dT%H%M%S')}{moment.microsecond:06d}_{new_id('x')[2:14]}"
    tx.put_new("audit", _table(), {
        "pk": PK, "sk": audit_id, "audit_id": audit_id, "at": now, "stage": settings().stage,
        "actor": actor.as_record(), "action": action, "target": target,
        "before": scrub(before) if before is not None else None,
        "after": scrub(after) if after is not None else None,
    })
    return audit_id


def record(actor: Actor, action: str, target: str, *, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> str:
    """An audit record on its own, for an action whose own write is not a DynamoDB item."""
    tx = Transaction()
    audit_id = add(tx, actor, action, target, before=before, after=after)
    tx.commit()
    return audit_id


def public(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["audit_id"], "object": "audit_record", "at": item["at"], "actor": item["actor"],
            "action": item["action"], "target": item["target"], "before": item.get("before"),
            "after": item.get("after")}


def list_records(*, limit: int = 50, starting_after: str | None = None, action: str | None = None,
                 target: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first. ``action`` matches a prefix (``api_key.`` for every key action), ``target`` exactly.

    Returns the records and, when there are more, the id to pass as ``starting_after``."""
    if not 1 <= limit <= 200:
        raise InvalidRequest("limit must be between 1 and 200", param="limit")
    conditions, values = ["pk = :pk"], {":pk": {"S": PK}}
    start: dict[str, Any] | None = None
    if starting_after:
        if not _AUDIT_ID.fullmatch(starting_after):
            raise InvalidRequest("starting_after must be an audit record id", param="starting_after")
        start = {"pk": {"S": PK}, "sk": {"S": starting_after}}
    filters, names = [], {}
    if action:
        filters.append("begins_with(#action, :action)")
        names["#action"] = "action"
        values[":action"] = {"S": action}
    if target:
        filters.append("#target = :target")
        names["#target"] = "target"
        values[":target"] = {"S": target}
    found: list[dict[str, Any]] = []
    while len(found) < limit:  # a filter may leave a page short: keep reading until full or done
        request: dict[str, Any] = {"TableName": _table(), "KeyConditionExpression": " AND ".join(conditions),
                                   "ExpressionAttributeValues": values, "ScanIndexForward": False,
                                   "Limit": limit - len(found)}
        if filters:
            request.update(FilterExpression=" AND ".join(filters), ExpressionAttributeNames=names)
        if start:
            request["ExclusiveStartKey"] = start
        page = client("dynamodb").query(**request)
        found += [from_item(raw) for raw in page.get("Items", [])]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    more = start is not None and len(found) >= limit
    return [public(item) for item in found], (found[-1]["audit_id"] if more and found else None)
