"""The callback's request path makes one read and one transaction; publishing is the stream relay's.

A channel callback reads the attempt and its payment together (the attempt id names its payment) and commits
the transition with its outbox event in one transaction: no SQS call and no outbox update in the request.
The state table's stream carries the new event to the relay (functions/outbox_relay.py), which sends it and
marks it sent; the sweep is still there for what the relay could not send.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import requests

from chalicelib.config.cache import TtlCache
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ids import event_id
from chalicelib.storage import config_repo, outbox, records
from chalicelib.storage.aws import client
from chalicelib.storage.state_repo import get_item
from functions import callbacks as edge
from functions import outbox_relay, sweeps
from infra.local import workers
from tests.helpers import wait_for

_counting = threading.local()


@contextmanager
def aws_calls_of(function: Any, module: Any, name: str) -> Iterator[list[str]]:
    """Every AWS request ``module.name`` makes on the thread that runs it (the local API serves each request on
    a thread of its own, so nothing else the stack does is counted)."""
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        if getattr(_counting, "on", False):
            calls.append(f"{model.service_model.service_name}:{model.name}")

    def counted(*args: Any, **kwargs: Any) -> Any:
        _counting.on = True
        try:
            return function(*args, **kwargs)
        finally:
            _counting.on = False

    services = [client(service) for service in ("dynamodb", "sqs", "secretsmanager", "kms")]
    for service in services:
        service.meta.events.register("before-call.*.*", count)
    setattr(module, name, counted)
    try:
        yield calls
    finally:
        setattr(module, name, function)
        for service in services:
            service.meta.events.unregister("before-call.*.*", count)


def pay(stack: Any, attempt_id: str) -> None:
    response = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": attempt_id}, timeout=10)
    assert response.status_code == 200, response.text


def event_record(evt_id: str) -> dict[str, Any] | None:
    return get_item(records.event_key(evt_id))


def test_a_callback_reads_once_and_writes_once_and_publishes_nothing_itself(
        stack: Any, merchant: Any, drain: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    drain()  # what earlier tests left on the stream is relayed first
    # Warm, as deployed: the account, its keys and the merchant's settings are cached for a minute (the suite
    # reads them fresh every time); a first callback fills the cache.
    monkeypatch.setattr(config_repo, "_cache", TtlCache(ttl_s=300))
    first = merchant.create_payment(method="wechat.native", amount=1234)
    pay(stack, first["attempt_id"])
    wait_for(lambda: merchant.get(f"/v1/payments/{first['id']}")["status"] == "succeeded")
    payment = merchant.create_payment(method="wechat.native", amount=4321)
    assert payment["attempt_id"].startswith("att_" + payment["id"][4:])  # the attempt names its payment
    with aws_calls_of(edge.handle_callback, edge, "handle_callback") as made:
        pay(stack, payment["attempt_id"])
        wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    assert made == ["dynamodb:BatchGetItem", "dynamodb:TransactWriteItems"], made

    # The event is committed, not yet sent: it is in the outbox index until the relay has sent it.
    evt_id = event_id(payment["id"], "payment.succeeded")
    assert "outbox_shard" in (event_record(evt_id) or {})
    assert workers.poll_streams() >= 1
    assert "outbox_shard" not in (event_record(evt_id) or {"outbox_shard": "missing"})
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))


def test_the_relay_sends_each_topic_in_batches_and_marks_what_it_sent(stack: Any, merchant: Any, drain: Any) -> None:
    drain()
    payments = [merchant.create_payment(method="wechat.native", amount=1000 + n) for n in range(12)]
    for payment in payments:
        pay(stack, payment["attempt_id"])
    for payment in payments:
        wait_for(lambda p=payment: merchant.get(f"/v1/payments/{p['id']}")["status"] == "succeeded")
    sqs = client("sqs")
    sent: list[str] = []

    def count(model: Any, **_: Any) -> None:
        sent.append(model.name)

    sqs.meta.events.register("before-call.sqs.*", count)
    try:
        while workers.poll_streams():  # a poll reads up to 100 stream records; 12 payments wrote more
            pass
    finally:
        sqs.meta.events.unregister("before-call.sqs.*", count)
    # 12 events in batches of at most 10, over the polls it took: never one request per event.
    assert "SendMessage" not in sent and 2 <= sent.count("SendMessageBatch") <= 4, sent
    for payment in payments:
        assert "outbox_shard" not in event_record(event_id(payment["id"], "payment.succeeded"))  # type: ignore[operator]
    drain()
    for payment in payments:
        assert wait_for(lambda p=payment: "payment.succeeded" in stack.receiver.types_for(p["id"]))


def test_a_record_the_relay_could_not_send_is_retried_from_there(stack: Any, merchant: Any, drain: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    drain()
    payment = merchant.create_payment(method="wechat.native", amount=2468)
    pay(stack, payment["attempt_id"])
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    evt_id = event_id(payment["id"], "payment.succeeded")
    real = outbox.mark_published
    refused: list[str] = []

    def flaky(published_id: str) -> None:
        if published_id == evt_id and not refused:
            refused.append(published_id)
            raise ConnectionError("the table did not answer")
        real(published_id)

    monkeypatch.setattr(outbox, "mark_published", flaky)
    workers.poll_streams()  # sent, not marked: reported failed, so the stream is read again from that record
    assert refused == [evt_id] and "outbox_shard" in event_record(evt_id)  # type: ignore[operator]
    workers.poll_streams()
    assert "outbox_shard" not in event_record(evt_id)  # type: ignore[operator]
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))


def test_what_the_stream_gave_up_on_is_published_by_the_sweep(stack: Any, merchant: Any, drain: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    drain()
    payment = merchant.create_payment(method="wechat.native", amount=1357)
    pay(stack, payment["attempt_id"])
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    evt_id = event_id(payment["id"], "payment.succeeded")
    # The stream moves on (its retries exhausted): the records are read and dropped, nothing is sent.
    monkeypatch.setitem(workers.STREAM_CONSUMERS, "StateTable", "tests.e2e.test_outbox_relay.drop_everything")
    workers.poll_streams()
    monkeypatch.undo()
    assert "outbox_shard" in event_record(evt_id)  # type: ignore[operator]
    later = utcnow() + timedelta(seconds=sweeps.OUTBOX_GRACE_S + 1)
    monkeypatch.setattr(sweeps, "utcnow", lambda: later)
    assert sweeps.outbox_sweep({}, None)["published"] >= 1
    assert "outbox_shard" not in event_record(evt_id)  # type: ignore[operator]
    monkeypatch.undo()
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))


def drop_everything(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"batchItemFailures": []}


def test_the_relay_skips_what_is_not_a_new_outbox_item() -> None:
    image = {"pk": {"S": "PAY#pay_x"}, "sk": {"S": "PAYMENT"}, "status": {"S": "succeeded"}}
    event_image = {"event_id": {"S": "evt_x"}, "topic": {"S": "webhooks"}, "outbox_shard": {"S": "3"},
                   "outbox_created_at": {"S": iso(utcnow())}}
    skipped = [
        {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "1", "NewImage": event_image}},  # a delivery update
        {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "2", "NewImage": image}},  # not an outbox item
        {"eventName": "REMOVE", "dynamodb": {"SequenceNumber": "3"}},
    ]
    assert outbox.relay(skipped) is None
    assert outbox_relay.handler({"Records": skipped}, None) == {"batchItemFailures": []}
    assert json.loads(json.dumps(outbox_relay.handler({"Records": []}, None))) == {"batchItemFailures": []}
