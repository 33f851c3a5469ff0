"""infra/local/moto_index.py: a Query on a GSI reads its partition's candidates only, and answers as moto's own.

Differential: random tables are built through every write path the map follows (PutItem, UpdateItem that moves,
adds or removes index keys, DeleteItem, BatchWrite-style puts, transactions that commit or are cancelled and
undone), then random key conditions on two GSIs (a string range and a number range) are paged to the end through
the patched query and through moto's own on the same table; each page must carry the same items in the same
order, the same count and the same LastEvaluatedKey.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.dynamodb.exceptions import TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from infra.local import moto_index, moto_patches

TABLE = "state"


@pytest.fixture(autouse=True, scope="module")
def _patched() -> None:
    assert moto_patches.apply()


def new_backend() -> DynamoDBBackend:
    backend = DynamoDBBackend("ap-east-1", "123456789012")
    gsi = [{"IndexName": "by_s", "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"},
                                               {"AttributeName": "gsk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["v"]}},
           {"IndexName": "by_n", "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"},
                                               {"AttributeName": "num", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}]
    backend.create_table(TABLE, schema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                        {"AttributeName": "sk", "KeyType": "RANGE"}],
                         attr=[{"AttributeName": n, "AttributeType": t} for n, t in
                               (("pk", "S"), ("sk", "S"), ("gpk", "S"), ("gsk", "S"), ("num", "N"))],
                         throughput=None, global_indexes=gsi, indexes=None, streams=None,
                         billing_mode="PAY_PER_REQUEST", sse_specification=None, tags=[],
                         deletion_protection_enabled=False, warm_throughput=None)
    return backend


PKS = st.sampled_from([f"p{i}" for i in range(12)])
SKS = st.sampled_from(["A", "B"])
PARTS = st.sampled_from(["x", "y", "z"])
RANGES = st.sampled_from(["a", "ab", "b", "ba", "c", "c#1", "d"])  # duplicates on purpose: ties by table key
NUMS = st.integers(-3, 3)


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


@st.composite
def writes(draw: st.DrawFn) -> list[tuple[str, Any]]:
    ops: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(5, 40))):
        kind = draw(st.sampled_from(["put", "put", "put", "set", "remove", "delete", "tx", "tx_cancel", "query"]))
        pk, sk = draw(PKS), draw(SKS)
        item: dict[str, Any] = {**_key(pk, sk), "v": {"N": str(draw(NUMS))}}
        if draw(st.booleans()):
            item["gpk"] = {"S": draw(PARTS)}
        if draw(st.integers(0, 3)):
            item["gsk"] = {"S": draw(RANGES)}
        if draw(st.booleans()):
            item["num"] = {"N": str(draw(NUMS))}
        ops.append((kind, (pk, sk, item, draw(PARTS), draw(RANGES))))
    return ops


def apply_write(backend: DynamoDBBackend, kind: str, args: Any) -> None:
    pk, sk, item, part, rng = args
    if kind == "put":
        backend.put_item(TABLE, item)
    elif kind == "set":  # moves the item in the index, or puts it there (UpdateItem changes items in place)
        backend.update_item(TABLE, _key(pk, sk), update_expression="SET gpk = :p, gsk = :r",
                            expression_attribute_names=None, condition_expression=None,
                            expression_attribute_values={":p": {"S": part}, ":r": {"S": rng}})
    elif kind == "remove":
        backend.update_item(TABLE, _key(pk, sk), update_expression="REMOVE gsk", expression_attribute_names=None,
                            expression_attribute_values=None, condition_expression=None)
    elif kind == "delete":
        backend.delete_item(TABLE, _key(pk, sk))
    elif kind in ("tx", "tx_cancel"):
        ops: list[dict[str, Any]] = [
            {"Put": {"TableName": TABLE, "Item": item}},
            {"Update": {"TableName": TABLE, "Key": _key("p11" if pk != "p11" else "p10", "A"),
                        "UpdateExpression": "SET gpk = :p, gsk = :r",
                        "ExpressionAttributeValues": {":p": {"S": part}, ":r": {"S": rng}}}},
        ]
        if kind == "tx_cancel":
            ops.append({"ConditionCheck": {"TableName": TABLE, "Key": _key("never", "A"),
                                           "ConditionExpression": "attribute_exists(pk)"}})
        try:
            backend.transact_write_items(ops)
        except TransactionCanceledException:
            assert kind == "tx_cancel"


CONDITIONS = st.one_of(
    st.tuples(st.none(), st.just(())),
    st.tuples(st.sampled_from(["EQ", "LT", "LE", "GT", "GE", "BEGINS_WITH"]), st.tuples(RANGES)),
    st.tuples(st.just("BETWEEN"), st.tuples(RANGES, RANGES)),
)


def _typed(index: str, values: tuple[str, ...]) -> list[DynamoType]:
    if index == "by_n":  # the same draws as numbers -2..2
        return [DynamoType({"N": str(ord(v[0]) - ord("b"))}) for v in values]
    return [DynamoType({"S": v}) for v in values]


def page_through(query: Any, table: Table, index: str, part: str, comparison: str | None,
                 values: list[DynamoType], limit: int | None, forward: bool) -> list[tuple[Any, ...]]:
    range_attr = "num" if index == "by_n" else "gsk"
    if index == "by_n" and comparison == "BEGINS_WITH":
        comparison = "GE"  # begins_with is for strings (DynamoDB refuses it on a number)
    pages, start = [], None
    for _ in range(60):
        items, scanned, last = query(
            table, None, comparison, values, limit, start, forward, None, index_name=index,
            hash_key_conditions=[("gpk", DynamoType({"S": part}))],
            range_key_conditions=[(range_attr, comparison, values)] if comparison else None)
        pages.append(([json.dumps(i.to_json(), sort_keys=True) for i in items], scanned,
                      json.dumps(last, sort_keys=True, default=str)))
        if not last:
            return pages
        start = {k: (v.to_json() if isinstance(v, DynamoType) else v) for k, v in last.items()}
    raise AssertionError("no end to the pages")


def both(table: Table, index: str, part: str, comparison: str | None, values: list[DynamoType],
         limit: int | None, forward: bool) -> None:
    ours = page_through(moto_index.query, table, index, part, comparison, values, limit, forward)
    theirs = page_through(moto_index._original_query, table, index, part, comparison, values, limit, forward)
    assert ours == theirs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=writes(), queries=st.lists(st.tuples(st.sampled_from(["by_s", "by_n"]), PARTS, CONDITIONS,
                                                st.sampled_from([None, 1, 2, 3, 7]), st.booleans()),
                                      min_size=1, max_size=6))
def test_the_patched_query_answers_as_motos_own(ops: list[tuple[str, Any]], queries: list[Any]) -> None:
    backend = new_backend()
    table = backend.get_table(TABLE)
    for kind, args in ops:
        if kind == "query":  # builds the maps part-way, so the later writes go through their upkeep
            for index, part, (comparison, values), limit, forward in queries:
                both(table, index, part, comparison, _typed(index, values), limit, forward)
        else:
            apply_write(backend, kind, args)
    for index, part, (comparison, values), limit, forward in queries:
        both(table, index, part, comparison, _typed(index, values), limit, forward)


def test_a_page_visits_a_window_of_its_partition_not_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = new_backend()
    table = backend.get_table(TABLE)
    for n in range(3000):
        table.put_item({**_key(f"p{n:05d}", "A"), "gpk": {"S": f"g{n % 3}"}, "gsk": {"S": f"{n:05d}"}})
    seen: list[int] = []
    original = moto_index._stored_items
    monkeypatch.setattr(moto_index, "_stored_items", lambda t: seen.append(1) or original(t))
    first = moto_index.query(table, None, "LE", [DynamoType({"S": "01500"})], 5, None, False, None,
                             index_name="by_s", hash_key_conditions=[("gpk", DynamoType({"S": "g0"}))],
                             range_key_conditions=[("gsk", "LE", [DynamoType({"S": "01500"})])])
    assert [i.attrs["gsk"].value for i in first[0]] == ["01500", "01497", "01494", "01491", "01488"]
    assert len(seen) == 1  # the map is built once from the table ...
    window = moto_index._candidates(table, "by_s", DynamoType({"S": "g0"}), "LE", [DynamoType({"S": "01500"})],
                                    5, None, False, ("gpk", "gsk"))
    assert len(window) == 6 and len(seen) == 1  # ... then a page reads Limit + 1 candidates, not 3,000 items
    table.delete_item(DynamoType({"S": "p01500"}), DynamoType({"S": "A"}))
    after = moto_index.query(table, None, "LE", [DynamoType({"S": "01500"})], 2, None, False, None,
                             index_name="by_s", hash_key_conditions=[("gpk", DynamoType({"S": "g0"}))],
                             range_key_conditions=[("gsk", "LE", [DynamoType({"S": "01500"})])])
    assert [i.attrs["gsk"].value for i in after[0]] == ["01497", "01494"] and len(seen) == 1
