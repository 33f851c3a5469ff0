"""One atomic write: state transitions, their outbox events and ledger journals go in together or not at all.

A cancelled transaction is reported per item, so callers can tell "someone else already did this"
(a condition on a state/version or on a dedupe key failed) from a real fault.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item, to_value

MAX_ITEMS = 100
_COLLISION_RETRIES = 5


class TransactionConflict(Exception):
    """A condition failed; ``failed_labels`` names the items whose condition did not hold."""

    def __init__(self, failed_labels: list[str]) -> None:
        super().__init__(f"condition failed on {failed_labels}")
        self.failed_labels = failed_labels


@dataclass
class Transaction:
    """DynamoDB writes committed together, each labelled so that a failed condition names its item."""

    _items: list[dict[str, Any]] = field(default_factory=list)
    _labels: list[str] = field(default_factory=list)

    def put_new(self, label: str, table: str, item: dict[str, Any]) -> None:
        """Insert; fails if an item with the same key exists (dedupe keys, new records, journals)."""
        self._add(label, {"Put": {"TableName": table, "Item": to_item(item),
                                  "ConditionExpression": "attribute_not_exists(pk)"}})

    def put(self, label: str, table: str, item: dict[str, Any]) -> None:
        """Insert or replace, unconditionally (a configuration document that an operator puts again)."""
        self._add(label, {"Put": {"TableName": table, "Item": to_item(item)}})

    def update(
        self,
        label: str,
        table: str,
        key: dict[str, str],
        set_values: dict[str, Any],
        *,
        condition: str | None,
        condition_values: dict[str, Any],
        remove: tuple[str, ...] = (),
        add_values: dict[str, int] | None = None,
    ) -> None:
        """``condition`` None: unconditional (a running total that ``ADD`` creates on first use)."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses: list[str] = []
        for i, (name, value) in enumerate(set_values.items()):
            names[f"#s{i}"] = name
            values[f":s{i}"] = to_value(value)
            clauses.append(f"#s{i} = :s{i}")
        expression = "SET " + ", ".join(clauses) if clauses else ""
        if add_values:
            parts = []
            for i, (name, delta) in enumerate(add_values.items()):
                names[f"#a{i}"] = name
                values[f":a{i}"] = to_value(delta)
                parts.append(f"#a{i} :a{i}")
            expression += " ADD " + ", ".join(parts)
        if remove:
            for i, name in enumerate(remove):
                names[f"#r{i}"] = name
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        for placeholder, value in condition_values.items():
            values[placeholder] = to_value(value)
        operation: dict[str, Any] = {"TableName": table, "Key": to_item(key), "UpdateExpression": expression.strip(),
                                     "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        if condition is not None:
            _declare_condition_names(condition, names)
            operation["ConditionExpression"] = condition
        self._add(label, {"Update": operation})

    def delete(self, label: str, table: str, key: dict[str, str], *, condition: str,
               condition_values: dict[str, Any]) -> None:
        """Remove an item if ``condition`` holds. A condition that also holds for a missing item (``attribute_not_exists(pk)
        OR ...``) makes a repeat, or an item already gone, harmless."""
        names: dict[str, str] = {}
        _declare_condition_names(condition, names)
        operation: dict[str, Any] = {"TableName": table, "Key": to_item(key), "ConditionExpression": condition,
                                     "ExpressionAttributeValues": {k: to_value(v) for k, v in condition_values.items()}}
        if names:
            operation["ExpressionAttributeNames"] = names
        self._add(label, {"Delete": operation})

    def _add(self, label: str, operation: dict[str, Any]) -> None:
        if len(self._items) >= MAX_ITEMS:
            raise ValueError("a DynamoDB transaction holds at most 100 items")
        self._items.append(operation)
        self._labels.append(label)

    def commit(self) -> None:
        """Write every item or none.

        The ClientRequestToken makes botocore's own retries (after a timeout whose first send had in fact
        committed) succeed as the same transaction, instead of failing their own conditions. DynamoDB cancels
        a transaction that merely collides with another one in flight (``TransactionConflict``); that is not
        a failed condition, so it is sent again, with a fresh token, after a short jittered pause.
        """
        if not self._items:
            return
        for attempt in range(_COLLISION_RETRIES):
            try:
                client("dynamodb").transact_write_items(TransactItems=self._items,
                                                        ClientRequestToken=uuid.uuid4().hex)
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                codes = [reason.get("Code") for reason in exc.response.get("CancellationReasons") or []]
                failed = [self._labels[i] for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
                if failed:
                    raise TransactionConflict(failed) from exc
                if "TransactionConflict" not in codes or attempt == _COLLISION_RETRIES - 1:
                    raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))


def _declare_condition_names(condition: str, names: dict[str, str]) -> None:
    """In conditions, "#status" simply means the attribute "status": callers write readable conditions and the
    placeholders (needed because status, version... are reserved words) are declared here."""
    for token in condition.replace("(", " ").replace(")", " ").replace(",", " ").split():
        if token.startswith("#") and token not in names:
            names[token] = token[1:]
