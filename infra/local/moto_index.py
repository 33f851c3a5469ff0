"""A partition map for moto's global secondary indexes, so a Query on an index reads one partition, not the table.

moto 5.2.5 answers a Query on a GSI by walking every item of the table (``Table.all_items``, which also sorts
them), keeping those whose index keys match, sorting again and then paging. With a million payments in the state
table one Query takes seconds, and a listing page sends one per listing shard (chalicelib/bills/listing.py), so
bench/listing.py could not run at the size the issue asks for, and a long-running local stack slowed the same way.

The fix keeps, per table and per GSI that has one hash and one range attribute, each partition's items sorted in
moto's own index order (index hash, index range, table hash, table range, compared as moto's ``DynamoType``).
It is built from the table the first time the index is queried and kept up on every write path of the pinned
moto: ``Table.put_item`` (PutItem, BatchWriteItem, transactions, PartiQL), ``Table.delete_item``,
``DynamoDBBackend.update_item`` (which changes items in place) and the undo of a cancelled transaction
(infra/local/moto_patches.py). A table whose ``items`` dict was replaced (a restore) is rebuilt.

A Query then hands moto's own ``Table.query`` only the candidates: the partition, cut by bisection to the key
condition's range (=, <, <=, >, >=, BETWEEN) and the ExclusiveStartKey, to the first ``Limit`` items in the
direction of the read and the partition's next item (moto makes its LastEvaluatedKey on it). moto still does
everything else itself (key checks, ordering, paging, the LastEvaluatedKey, the 1 MB cap, projection, the
filter), over those candidates instead of the whole table, so its answers do not change:
tests/local/test_moto_index_patch.py runs random tables, writes and queries through both and requires the same
items, order, counts and LastEvaluatedKey. Other indexes and conditions (begins_with, multi-attribute keys,
LSIs) take the partition whole, or moto's own path.

Applied with the other moto fixes, to the pinned version only (``moto_patches.PATCHED_VERSIONS``).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import GlobalSecondaryIndex, Table

_original_query = Table.query
_original_all_items = Table.all_items
_original_put_item = Table.put_item
_original_delete_item = Table.delete_item
_original_update_item = DynamoDBBackend.update_item

_lock = threading.RLock()  # moto's server answers on several threads; the maps change on writes
_local = threading.local()  # candidates handed to moto's query on this thread, by table


@dataclass
class _IndexMap:
    hash_attr: str
    range_attr: str
    order: tuple[str, ...]  # moto's sort attributes for this index
    partitions: dict[DynamoType, list[tuple[tuple[DynamoType, ...], Item]]] = field(default_factory=dict)
    placed: dict[tuple[Any, Any], tuple[DynamoType, tuple[DynamoType, ...]]] = field(default_factory=dict)


@dataclass
class _TableMaps:
    items_id: int  # id of the table's ``items`` dict the maps were built from
    indexes: dict[str, _IndexMap] = field(default_factory=dict)


def _entry_key(entry: tuple[tuple[DynamoType, ...], Item]) -> tuple[DynamoType, ...]:
    return entry[0]


def _range_of(entry: tuple[tuple[DynamoType, ...], Item]) -> DynamoType:
    return entry[0][0]


def _simple_gsi(table: Table, index_name: str) -> tuple[str, str] | None:
    index = next((i for i in table.global_indexes or [] if i.name == index_name), None)
    if not isinstance(index, GlobalSecondaryIndex):
        return None
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if len(hashes) != 1 or len(ranges) != 1:
        return None
    return hashes[0], ranges[0]


def _place(index: _IndexMap, item: Item) -> None:
    partition = item.attrs.get(index.hash_attr)
    if partition is None or any(item.attrs.get(a) is None for a in index.order):
        return  # not in the index (DynamoDB indexes an item only when it has the index's key attributes)
    sort_key = tuple(item.attrs[a] for a in index.order)
    insort(index.partitions.setdefault(partition, []), (sort_key, item), key=_entry_key)
    index.placed[(item.hash_key, item.range_key)] = (partition, sort_key)


def _unplace(index: _IndexMap, key: tuple[Any, Any]) -> None:
    where = index.placed.pop(key, None)
    if where is None:
        return
    partition, sort_key = where
    entries = index.partitions[partition]
    at = bisect_left(entries, sort_key, key=_entry_key)
    entries.pop(at)
    if not entries:
        del index.partitions[partition]


def _maps(table: Table) -> _TableMaps:
    maps: _TableMaps | None = getattr(table, "_payhub_index_maps", None)
    if maps is None or maps.items_id != id(table.items):
        maps = _TableMaps(id(table.items))
        table._payhub_index_maps = maps  # type: ignore[attr-defined]
    return maps


def _index_map(table: Table, index_name: str, attrs: tuple[str, str]) -> _IndexMap:
    maps = _maps(table)
    index = maps.indexes.get(index_name)
    if index is None:
        hash_attr, range_attr = attrs
        order = tuple(a for a in (range_attr, table.hash_key_attr, table.range_key_attr) if a)
        index = _IndexMap(hash_attr, range_attr, order)
        for item in _stored_items(table):
            partition = item.attrs.get(hash_attr)
            if partition is not None and all(item.attrs.get(a) is not None for a in order):
                sort_key = tuple(item.attrs[a] for a in order)
                index.partitions.setdefault(partition, []).append((sort_key, item))
                index.placed[(item.hash_key, item.range_key)] = (partition, sort_key)
        for entries in index.partitions.values():
            try:  # the values' own Python order is DynamoType's order (its __lt__ compares them) and much faster
                entries.sort(key=lambda e: tuple(v.cast_value for v in e[0]))
            except TypeError:
                entries.sort(key=_entry_key)
        maps.indexes[index_name] = index
    return index


def _stored_items(table: Table) -> list[Item]:
    if table.range_key_attr:
        return [item for bucket in table.items.values() for item in bucket.values()]
    return list(table.items.values())  # type: ignore[arg-type]


def reindex(table: Table, hash_key: Any, range_key: Any) -> None:
    """Bring every built map of ``table`` up to date with the item now stored at this key (or its absence)."""
    with _lock:
        maps: _TableMaps | None = getattr(table, "_payhub_index_maps", None)
        if maps is None:
            return
        if maps.items_id != id(table.items):
            table._payhub_index_maps = None  # type: ignore[attr-defined]  # rebuilt on the next query
            return
        current = table.get_item(hash_key, range_key) if table.range_key_attr else table.items.get(hash_key)
        for index in maps.indexes.values():
            _unplace(index, (hash_key, range_key))
            if current is not None:
                _place(index, current)


_BOUNDED = {"EQ", "=", "LT", "<", "LE", "<=", "GT", ">", "GE", ">=", "BETWEEN"}


def _bounds(entries: list[Any], comparison: str | None, values: list[DynamoType]) -> tuple[int, int] | None:
    """Slice of a partition whose range value meets the key condition; None when it cannot be cut exactly."""
    if comparison is None:
        return 0, len(entries)
    if comparison not in _BOUNDED:
        return None
    if comparison in ("EQ", "="):
        return (bisect_left(entries, values[0], key=_range_of), bisect_right(entries, values[0], key=_range_of))
    if comparison in ("LT", "<"):
        return 0, bisect_left(entries, values[0], key=_range_of)
    if comparison in ("LE", "<="):
        return 0, bisect_right(entries, values[0], key=_range_of)
    if comparison in ("GT", ">"):
        return bisect_right(entries, values[0], key=_range_of), len(entries)
    if comparison in ("GE", ">="):
        return bisect_left(entries, values[0], key=_range_of), len(entries)
    return bisect_left(entries, values[0], key=_range_of), bisect_right(entries, values[1], key=_range_of)


def _candidates(table: Table, index_name: str, hash_value: DynamoType, range_comparison: str | None,
                range_objs: list[DynamoType], limit: int | None, exclusive_start_key: dict[str, Any] | None,
                scan_index_forward: bool, attrs: tuple[str, str]) -> list[Item]:
    with _lock:
        index = _index_map(table, index_name, attrs)
        entries = index.partitions.get(hash_value, [])
        bounds = _bounds(entries, range_comparison, range_objs)
        if bounds is None:
            return [item for _, item in entries]
        low, high = bounds
        if exclusive_start_key is not None:
            if not all(a in exclusive_start_key for a in index.order):
                return [item for _, item in entries[low:high]]
            start = tuple(DynamoType(exclusive_start_key[a]) for a in index.order)
            if scan_index_forward:
                low = max(low, bisect_right(entries, start, lo=low, hi=high, key=_entry_key))
            else:
                high = min(high, bisect_left(entries, start, lo=low, hi=high, key=_entry_key))
        if limit is None:
            return [item for _, item in entries[low:high]]
        # moto stops at the first item of the partition, in range or not, met once it holds Limit items, and
        # makes that the LastEvaluatedKey: it needs the Limit items in range and the one partition item after.
        if scan_index_forward:
            low, high = low, min(high, low + limit) + 1
        else:
            low, high = max(0, max(low, high - limit) - 1), high
        return [item for _, item in entries[low:high]]


def query(self: Table, hash_key: DynamoType | None, range_comparison: str | None, range_objs: list[DynamoType],
          limit: int, exclusive_start_key: dict[str, Any], scan_index_forward: bool,
          projection_expressions: list[list[str]] | None, index_name: str | None = None,
          consistent_read: bool = False, filter_expression: Any = None,
          hash_key_conditions: list[tuple[str, DynamoType]] | None = None,
          range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None = None,
          **filter_kwargs: Any) -> tuple[list[Item], int, dict[str, Any] | None]:
    """moto's ``Table.query``, given a GSI partition's candidates in place of the whole table when it can be."""
    candidates = None
    attrs = _simple_gsi(self, index_name) if index_name else None
    if (attrs is not None and not filter_kwargs and hash_key_conditions is not None
            and len(hash_key_conditions) == 1 and hash_key_conditions[0][0] == attrs[0]
            and (not range_key_conditions or (len(range_key_conditions) == 1
                                              and range_key_conditions[0][0] == attrs[1]))):
        candidates = _candidates(self, index_name or "", hash_key_conditions[0][1], range_comparison,
                                 range_objs, limit, exclusive_start_key, scan_index_forward, attrs)
    if candidates is None:
        return _original_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                               scan_index_forward, projection_expressions, index_name, consistent_read,
                               filter_expression, hash_key_conditions, range_key_conditions, **filter_kwargs)
    overrides = getattr(_local, "candidates", None)
    if overrides is None:
        overrides = _local.candidates = {}
    overrides[id(self)] = candidates
    try:
        return _original_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                               scan_index_forward, projection_expressions, index_name, consistent_read,
                               filter_expression, hash_key_conditions, range_key_conditions, **filter_kwargs)
    finally:
        del overrides[id(self)]


def all_items(self: Table) -> list[Item]:
    overrides = getattr(_local, "candidates", None)
    if overrides and id(self) in overrides:
        return list(overrides[id(self)])
    return _original_all_items(self)


def put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
    item = _original_put_item(self, *args, **kwargs)
    reindex(self, item.hash_key, item.range_key)
    return item


def delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    item = _original_delete_item(self, hash_key, range_key)
    reindex(self, hash_key, range_key)
    return item


def update_item(self: DynamoDBBackend, table_name: str, key: dict[str, dict[str, Any]], *args: Any,
                **kwargs: Any) -> Item | None:
    try:
        return _original_update_item(self, table_name, key, *args, **kwargs)
    finally:
        if table_name in self.tables:
            table = self.tables[table_name]
            try:
                hash_value, range_value = self.get_keys_value(table, key)
            except MockValidationException:
                pass  # a malformed key: moto refused the update (that error is what the caller sees), nothing changed
            else:
                reindex(table, hash_value, range_value)


def install() -> None:
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
