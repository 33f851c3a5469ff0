"""Transaction outcomes as DynamoDB reports them, with botocore's Stubber (no I/O)."""

from __future__ import annotations

import pytest
from botocore.stub import ANY, Stubber

from chalicelib.storage.aws import client
from chalicelib.storage.transaction import Transaction, TransactionConflict


@pytest.fixture
def stubbed(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "ap-east-1"}.items():
        monkeypatch.setenv(name, value)
    with Stubber(client("dynamodb")) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _tx() -> Transaction:
    tx = Transaction()
    tx.put_new("first", "t", {"pk": "a", "sk": "b"})
    tx.put_new("second", "t", {"pk": "c", "sk": "d"})
    return tx


def _cancelled(stub: Stubber, *codes: str) -> None:
    stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException",
                          response_meta={}, modeled_fields={"CancellationReasons": [{"Code": c} for c in codes]})


def test_failed_condition_names_the_items(stubbed):
    _cancelled(stubbed, "None", "ConditionalCheckFailed")
    with pytest.raises(TransactionConflict) as caught:
        _tx().commit()
    assert caught.value.failed_labels == ["second"]


def test_collision_with_another_transaction_is_retried(stubbed):
    _cancelled(stubbed, "TransactionConflict", "None")
    _cancelled(stubbed, "None", "TransactionConflict")
    stubbed.add_response("transact_write_items", {})
    _tx().commit()


def test_collisions_that_never_clear_surface(stubbed):
    for _ in range(5):
        _cancelled(stubbed, "TransactionConflict", "None")
    with pytest.raises(Exception) as caught:
        _tx().commit()
    assert not isinstance(caught.value, TransactionConflict)


def test_every_commit_carries_a_client_request_token(stubbed):
    stubbed.add_response("transact_write_items", {}, expected_params={
        "TransactItems": _tx()._items, "ClientRequestToken": ANY})
    _tx().commit()
