"""Three narrow fixes to moto's DynamoDB, so a long `make run` or a stress test stays as fast as its first minute.

Measured on moto 5.2.5 (bench/moto_transactions.py, docs/local-speed.md): ``TransactWriteItems`` slowed as the
tables grew (34 tx/s with a few hundred items, 14/s at 1,500) and every transaction grew the process by
megabytes, while ``PutItem`` stayed flat. Two causes:

1. ``DynamoDBBackend.transact_write_items`` takes its rollback copy by ``copy.deepcopy`` of *every table the
   transaction names*, once per item that names it, before doing anything. A transaction of 4 items on a table
   of 40,000 items copies 160,000 items to change 4.
2. Every ``BaseModel`` instance, an ``Item`` included, is appended to its class's ``instances_tracked`` list
   when created (``BaseModel.__new__``; the list feeds the moto dashboard) and never leaves it. ``deepcopy``
   creates objects through ``__new__``, so each of those table copies, and every item version that PutItem,
   UpdateItem or a query's result copy ever made, is kept alive for the life of the process.

The fixes, applied by :func:`apply` (``start_moto`` calls it), the third in infra/local/moto_index.py:

1. ``transact_write_items`` is replaced by the same algorithm with an undo log: before an item is written, a
   detached copy of that one item (or "absent") is noted; a cancelled transaction puts exactly those items
   back. Work is proportional to the transaction, not the table. Conditions, the per-item cancellation
   reasons (with ``ALL_OLD`` items), the validation errors that abort at once, and the all-or-nothing
   outcome are unchanged (tests/unit/test_moto_patches.py checks each against the original). On a table with
   a stream, a cancelled transaction also takes back the stream records its writes had added.
2. DynamoDB ``Item`` and SQS ``Message`` instances (the two models the hub creates per request: every
   queued message was kept the same way) are created without being tracked. Nothing in moto reads their
   ``instances_tracked`` except the dashboard's model listing, which then no longer lists them.
3. A Query on a global secondary index walks every item of the table; a per-index partition map, kept up on
   every write, hands moto's own query only the partition's candidates (infra/local/moto_index.py).

All are applied only to the moto version they were written against (``PATCHED_VERSIONS``): on any other,
:func:`apply` leaves moto alone and says so, and a test fails until someone checks the new version. The fix
offered upstream is in docs/local-speed.md.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import moto
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.sqs.models import Message

from infra.local import moto_index

log = logging.getLogger("local.moto")

PATCHED_VERSIONS = frozenset({"5.2.5"})
_WRITE_OPS = ("Put", "Delete", "Update")
UNTRACKED_MODELS: tuple[type, ...] = (Item, Message)

_original_transact_write_items = DynamoDBBackend.transact_write_items
_applied = False


def applies_to_installed_moto() -> bool:
    return moto.__version__ in PATCHED_VERSIONS


def apply() -> bool:
    """Install both fixes (idempotent). Returns whether they are in force."""
    global _applied
    if _applied:
        return True
    if not applies_to_installed_moto():
        log.warning("moto %s is not a version these DynamoDB fixes were checked against (%s): left as it is",
                    moto.__version__, ", ".join(sorted(PATCHED_VERSIONS)))
        return False
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    moto_index.install()
    for model in UNTRACKED_MODELS:
        model.__new__ = staticmethod(_new_untracked)  # type: ignore[assignment]
    _applied = True
    return True


def _new_untracked(cls: type, *args: Any, **kwargs: Any) -> Any:
    # What BaseModel.__new__ does, minus appending the instance to a class-wide list that is never emptied.
    return object.__new__(cls)


def detached_copy(item: Item) -> Item:
    """A deep copy of one item that shares nothing with it (UpdateItem changes items in place) and is not
    tracked by moto's model registry."""
    clone = object.__new__(type(item))
    for name, value in vars(item).items():
        setattr(clone, name, copy.deepcopy(value))
    return clone


@dataclass(slots=True)
class _Before:
    """One item as it was before the transaction wrote it; ``item`` None means it did not exist."""

    table: Table
    hash_key: DynamoType
    range_key: DynamoType | None
    item: Item | None


def _restore(before: _Before) -> None:
    _put_back(before)
    moto_index.reindex(before.table, before.hash_key, before.range_key)


def _put_back(before: _Before) -> None:
    items = before.table.items
    if before.range_key is None:
        if before.item is None:
            items.pop(before.hash_key, None)
        else:
            items[before.hash_key] = before.item
        return
    bucket = items.get(before.hash_key)
    if before.item is not None:
        items[before.hash_key][before.range_key] = before.item
    elif bucket is not None:
        bucket.pop(before.range_key, None)
        if not bucket:
            del items[before.hash_key]


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's ``DynamoDBBackend.transact_write_items`` with an undo log of the written items in place of
    a deep copy of every table named. Everything else (order of checks, errors, reasons) is kept as it was."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    # A table with a stream gets a record per write; a cancelled transaction must leave none behind (moto's own
    # method gets that from its table copy). Each stream is cut back to its length before the transaction.
    stream_lengths: dict[int, tuple[list[Any], int]] = {}
    for entry in transact_items:
        op_body = next(iter(entry.values()), None)
        table_name = op_body.get("TableName") if isinstance(op_body, dict) else None
        shard = self.tables[table_name].stream_shard if table_name in self.tables else None
        if shard is not None and id(shard) not in stream_lengths:
            stream_lengths[id(shard)] = (shard.items, len(shard.items))

    undo: list[_Before] = []

    def rollback() -> None:
        for before in reversed(undo):
            _restore(before)
        for records, length in stream_lengths.values():
            del records[length:]

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        target = (str(table_name), str(dict(sorted(key.items()))))
        if target in target_items:
            raise MultipleTransactionsException()
        target_items.add(target)

    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for entry in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(entry.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", *_WRITE_OPS}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            return_on_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(condition_expression, names, values)
                if not condition_op.expr(current):
                    if return_on_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type in _WRITE_OPS:
                table = self.get_table(table_name)
                hash_key, range_key = self.get_keys_value(table, key)
                undo.append(_Before(table, hash_key, range_key,
                                    detached_copy(current) if current is not None else None))

            if op_type == "Put":
                self.put_item(table_name, op["Item"], condition_expression=condition_expression,
                              expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, condition_expression=condition_expression,
                                 expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 condition_expression=condition_expression,
                                 expression_attribute_names=names, expression_attribute_values=values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), original_item))
        except Exception as exc:  # noqa: BLE001 - moto reports any other failure as that item's cancellation reason
            errors.append((type(exc).__name__, str(exc), original_item))

    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)
    return None
