"""infra/local/moto_patches.py: TransactWriteItems with an undo log keeps moto's semantics, and its cost and the
memory it leaves behind no longer grow with the table.

Semantics are checked two ways on moto's backend directly (no HTTP): named cases (conditions, cancellation
reasons with ALL_OLD items, all-or-nothing rollback of puts, in-place updates and deletes, errors that abort at
once), and a differential property test that runs random transaction sequences through moto's own method and
through the patched one, on two fresh backends, and requires the same outcome and the same tables after each.
"""

from __future__ import annotations

import copy
import gc
import json
from collections.abc import Callable
from typing import Any

import moto
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

from infra.local import moto_patches

ORIGINAL = moto_patches._original_transact_write_items
PATCHED = moto_patches.transact_write_items
Transact = Callable[[DynamoDBBackend, list[dict[str, Any]]], None]


def new_backend() -> DynamoDBBackend:
    backend = DynamoDBBackend("ap-east-1", "123456789012")
    common = {"throughput": None, "global_indexes": None, "indexes": None, "streams": None,
              "billing_mode": "PAY_PER_REQUEST", "sse_specification": None, "tags": [],
              "deletion_protection_enabled": False, "warm_throughput": None}
    backend.create_table("ranged", schema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                           {"AttributeName": "sk", "KeyType": "RANGE"}],
                         attr=[{"AttributeName": "pk", "AttributeType": "S"},
                               {"AttributeName": "sk", "AttributeType": "S"}], **common)
    backend.create_table("flat", schema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         attr=[{"AttributeName": "pk", "AttributeType": "S"}], **common)
    return backend


def contents(backend: DynamoDBBackend) -> dict[str, list[str]]:
    return {name: sorted(json.dumps(item.to_json(), sort_keys=True) for item in table.all_items())
            for name, table in backend.tables.items()}


def key(table: str, pk: str, sk: str = "A") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}} if table == "ranged" else {"pk": {"S": pk}}


def put(table: str, pk: str, v: int, *, new_only: bool = False, sk: str = "A") -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": table, "Item": {**key(table, pk, sk), "v": {"N": str(v)}}}
    if new_only:
        op["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": op}


def add(table: str, pk: str, n: int, *, if_v: int | None = None, all_old: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": table, "Key": key(table, pk), "UpdateExpression": "ADD n :n",
                          "ExpressionAttributeValues": {":n": {"N": str(n)}}}
    if if_v is not None:
        op["ConditionExpression"] = "v = :v"
        op["ExpressionAttributeValues"][":v"] = {"N": str(if_v)}
    if all_old:
        op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Update": op}


def delete(table: str, pk: str, *, must_exist: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": table, "Key": key(table, pk)}
    if must_exist:
        op["ConditionExpression"] = "attribute_exists(pk)"
    return {"Delete": op}


def check(table: str, pk: str, v: int) -> dict[str, Any]:
    return {"ConditionCheck": {"TableName": table, "Key": key(table, pk), "ConditionExpression": "v = :v",
                               "ExpressionAttributeValues": {":v": {"N": str(v)}}}}


def outcome(transact: Transact, backend: DynamoDBBackend, items: list[dict[str, Any]]) -> tuple[str, str]:
    """What a client would see: success, or the error's type and its wire description (reasons included)."""
    try:
        transact(backend, copy.deepcopy(items))
    except (TransactionCanceledException, MockValidationException, MultipleTransactionsException) as exc:
        return type(exc).__name__, exc.description
    except Exception as exc:  # noqa: BLE001 - any other error must also be the same on both sides
        return type(exc).__name__, str(exc)
    return "ok", ""


def reasons(description: str) -> list[dict[str, Any]]:
    return list(json.loads(description)["CancellationReasons"])


@pytest.fixture(params=[ORIGINAL, PATCHED], ids=["moto as released", "patched"])
def transact(request: pytest.FixtureRequest) -> Transact:
    """The named cases run on both, so each one shows moto's own behaviour is what the patch keeps."""
    return request.param  # type: ignore[no-any-return]


def test_the_fixes_apply_to_the_pinned_moto() -> None:
    # A moto upgrade fails here until someone checks whether these fixes are still needed and still right.
    assert moto_patches.applies_to_installed_moto(), moto.__version__
    assert moto_patches.apply()
    assert DynamoDBBackend.transact_write_items is PATCHED


def test_a_failed_condition_cancels_everything_with_a_reason_per_item(transact: Transact) -> None:
    backend = new_backend()
    transact(backend, [put("ranged", "p1", 1), put("ranged", "p3", 1), put("flat", "f1", 1)])
    before = contents(backend)
    with pytest.raises(TransactionCanceledException) as cancelled:
        transact(backend, [put("ranged", "p2", 2), add("ranged", "p1", 5), delete("flat", "f1"),
                           put("ranged", "p3", 9, new_only=True)])
    assert [r["Code"] for r in reasons(cancelled.value.description)] == ["None", "None", "None",
                                                                          "ConditionalCheckFailed"]
    assert contents(backend) == before  # the new item gone, the update undone, the deleted item back


def test_all_old_returns_the_item_as_it_was(transact: Transact) -> None:
    backend = new_backend()
    transact(backend, [put("flat", "f1", 7)])
    with pytest.raises(TransactionCanceledException) as cancelled:
        transact(backend, [add("flat", "f1", 1, if_v=8, all_old=True)])
    assert reasons(cancelled.value.description) == [{
        "Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
        "Item": {"pk": {"S": "f1"}, "v": {"N": "7"}}}]


def test_an_update_in_place_is_undone_when_a_later_item_fails(transact: Transact) -> None:
    backend = new_backend()
    transact(backend, [put("ranged", "p1", 1), put("ranged", "p2", 1)])
    transact(backend, [add("ranged", "p1", 3)])
    with pytest.raises(TransactionCanceledException):
        transact(backend, [add("ranged", "p1", 100), check("ranged", "p2", 2)])
    item = backend.get_item("ranged", key("ranged", "p1"))
    assert item is not None and item.to_json()["Attributes"]["n"] == {"N": "3"}


def test_a_validation_error_aborts_at_once_and_undoes_earlier_items(transact: Transact) -> None:
    backend = new_backend()
    with pytest.raises(MultipleTransactionsException):
        transact(backend, [put("flat", "f1", 1), put("flat", "f2", 1), add("flat", "f1", 1)])
    assert contents(backend) == {"ranged": [], "flat": []}


def test_a_successful_transaction_applies_every_item(transact: Transact) -> None:
    backend = new_backend()
    transact(backend, [put("ranged", "p1", 1), put("ranged", "p1", 2, sk="B"), put("flat", "f1", 1),
                       put("flat", "f2", 1)])
    transact(backend, [check("flat", "f2", 1), delete("ranged", "p1", must_exist=True), add("flat", "f1", 4)])
    assert contents(backend) == {
        "ranged": [json.dumps({"Attributes": {"pk": {"S": "p1"}, "sk": {"S": "B"}, "v": {"N": "2"}}},
                              sort_keys=True)],
        "flat": [json.dumps({"Attributes": {"n": {"N": "4"}, "pk": {"S": "f1"}, "v": {"N": "1"}}}, sort_keys=True),
                 json.dumps({"Attributes": {"pk": {"S": "f2"}, "v": {"N": "1"}}}, sort_keys=True)],
    }


def test_a_transaction_copies_no_table_and_leaves_no_items_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cause of the slowdown and of the leak, asserted directly: moto as released deep-copies each named
    table per item naming it, and keeps every copied Item in ``Item.instances_tracked``."""
    moto_patches.apply()
    backend = new_backend()
    for i in range(300):
        backend.put_item("ranged", {**key("ranged", f"p{i}"), "v": {"N": "1"}})
    copied_tables: list[str] = []
    real_deepcopy = copy.deepcopy

    def counting_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, Table):
            copied_tables.append(value.name)
        return real_deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting_deepcopy)
    gc.collect()
    items_before = sum(1 for obj in gc.get_objects() if isinstance(obj, Item))
    for i in range(20):
        backend.transact_write_items([add("ranged", f"p{i}", 1), put("ranged", f"new{i}", 1, new_only=True)])
    with pytest.raises(TransactionCanceledException):
        backend.transact_write_items([add("ranged", "p1", 1), put("ranged", "p2", 1, new_only=True)])
    gc.collect()
    items_after = sum(1 for obj in gc.get_objects() if isinstance(obj, Item))
    assert copied_tables == []
    # 20 new items stay; moto as released would keep ~2 x 300 copies per transaction.
    assert items_after - items_before <= 25


def test_items_and_queued_messages_are_not_kept_by_motos_model_registry() -> None:
    from moto.sqs.models import Message

    moto_patches.apply()
    backend = new_backend()
    tracked_items, tracked_messages = len(Item.instances_tracked), len(Message.instances_tracked)
    for i in range(50):
        backend.put_item("flat", {"pk": {"S": f"f{i}"}, "v": {"N": "1"}})
        backend.update_item("flat", {"pk": {"S": f"f{i}"}}, "SET v = :v", {}, {":v": {"N": "2"}})
        Message(f"m{i}", "body")
    assert (len(Item.instances_tracked), len(Message.instances_tracked)) == (tracked_items, tracked_messages)
    assert backend.get_item("flat", {"pk": {"S": "f49"}}).to_json()["Attributes"]["v"] == {"N": "2"}


def with_stream(backend: DynamoDBBackend) -> DynamoDBBackend:
    backend.update_table_streams(backend.get_table("flat"), {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    return backend


def stream_records(backend: DynamoDBBackend) -> list[tuple[str, str]]:
    shard = backend.get_table("flat").stream_shard
    assert shard is not None
    return [(record.record["eventName"], json.dumps(record.record["dynamodb"].get("NewImage"), sort_keys=True))
            for record in shard.items]


def test_a_cancelled_transaction_leaves_no_stream_record_and_a_committed_one_leaves_one_per_write(
        transact: Transact) -> None:
    # The outbox relay reads the state table's stream: a record from a cancelled transaction would publish an event
    # whose change never happened.
    backend = with_stream(new_backend())
    transact(backend, [put("flat", "f1", 1), put("ranged", "p1", 1)])
    with pytest.raises(TransactionCanceledException):
        transact(backend, [put("flat", "f2", 1), add("flat", "f4", 1), add("flat", "f1", 1, if_v=5)])
    assert [name for name, _ in stream_records(backend)] == ["INSERT"]
    transact(backend, [add("flat", "f1", 2), put("flat", "f3", 3)])
    assert [name for name, _ in stream_records(backend)] == ["INSERT", "MODIFY", "INSERT"]


# --- differential: random transaction sequences, moto's method vs the patched one --------------------------------

TABLES = st.sampled_from(["ranged", "flat"])
PKS = st.sampled_from(["a", "b", "c"])
OPS = st.one_of(
    st.builds(lambda t, pk, v, new: put(t, pk, v, new_only=new), TABLES, PKS, st.integers(0, 2), st.booleans()),
    st.builds(lambda t, pk, n, cond, old: add(t, pk, n, if_v=cond, all_old=old),
              TABLES, PKS, st.integers(1, 3), st.none() | st.integers(0, 2), st.booleans()),
    st.builds(lambda t, pk, must: delete(t, pk, must_exist=must), TABLES, PKS, st.booleans()),
    st.builds(check, TABLES, PKS, st.integers(0, 2)),
    st.just({"Put": {"TableName": "missing", "Item": {"pk": {"S": "x"}}}}),
    st.just({"Update": {"TableName": "flat", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = :nope"}}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(OPS, min_size=1, max_size=5), min_size=1, max_size=6))
def test_the_patched_method_behaves_as_motos_own(transactions: list[list[dict[str, Any]]]) -> None:
    released, patched = with_stream(new_backend()), with_stream(new_backend())
    for items in transactions:
        assert outcome(PATCHED, patched, items) == outcome(ORIGINAL, released, items)
        assert contents(patched) == contents(released)
        assert stream_records(patched) == stream_records(released)
