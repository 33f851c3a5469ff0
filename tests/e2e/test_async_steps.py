"""SQS consumers: partial batch failures are reported per message, poison messages end in the DLQ, and a
message delivered twice does its work once."""

from __future__ import annotations

import json

import requests

from chalicelib.config.settings import settings
from chalicelib.storage.aws import client
from functions import refund_worker, webhook_worker
from infra.local import workers
from tests.helpers import wait_for


def sqs_event(*bodies: str) -> dict:
    return {"Records": [{"messageId": f"m{n}", "receiptHandle": f"h{n}", "body": body, "attributes": {},
                         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:ap-east-1:123456789012:q", "awsRegion": "ap-east-1"}
                        for n, body in enumerate(bodies)]}


def test_only_the_failed_message_of_a_batch_is_reported(stack, merchant, drain):
    payment = merchant.create_payment()
    merchant.call("POST", f"/v1/payments/{payment['id']}/close")
    event_id = merchant.get("/v1/events")["data"][0]["id"]
    result = webhook_worker.handler(sqs_event(json.dumps({"event_id": event_id}), "not json",
                                              json.dumps({"event_id": "evt_missing"})), None)
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == ["m1", "m2"]
    assert merchant.get(f"/v1/events/{event_id}")["delivery_status"] == "delivered"


def test_a_message_delivered_twice_does_its_work_once(stack, merchant, drain):
    payment = merchant.create_payment(amount=600)
    requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]}, timeout=10)
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 600, "merchant_refund_no": "once"}).json()
    message = json.dumps({"command": "refund.submit", "object_id": refund["id"]})
    first = refund_worker.handler(sqs_event(message), None)
    second = refund_worker.handler(sqs_event(message), None)
    assert first["batchItemFailures"] == second["batchItemFailures"] == []
    order = requests.get(f"{stack.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()
    assert len(order["refunds"]) == 1
    drain()


def test_poison_message_ends_in_the_dead_letter_queue(stack, monkeypatch):
    monkeypatch.setattr(workers, "RETRY_VISIBILITY_S", 0)
    sqs = client("sqs")
    names = settings().names
    url = sqs.get_queue_url(QueueName=names.queue("refunds"))["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=names.dead_letter_queue("refunds"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"command": "refund.explode", "object_id": "re_x"}))
    for _ in range(20):
        workers.poll_once("refunds")
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["command"] for m in dead] == ["refund.explode"]


def test_a_duplicated_webhook_message_cannot_start_a_second_retry_chain(stack, merchant, drain, monkeypatch):
    from chalicelib.service import webhooks

    monkeypatch.setattr(webhooks, "RETRY_DELAYS_S", (900,) * 7)  # the retry stays queued during this test
    stack.receiver.fail_next(merchant.webhook_url, 1)
    payment = merchant.create_payment()
    merchant.call("POST", f"/v1/payments/{payment['id']}/close")
    drain()
    event = merchant.get("/v1/events")["data"][0]
    assert (event["delivery_status"], event["delivery_attempts"]) == ("retrying", 1)
    # The same first-attempt message again (SQS at-least-once, or the outbox sweep republishing it):
    assert webhooks.deliver(event["id"], attempt=1) == "superseded"
    assert len(merchant.get(f"/v1/events/{event['id']}")["deliveries"]) == 1
    # A manual redelivery is recorded without touching the automatic schedule, and marks it delivered.
    assert webhooks.deliver(event["id"], manual=True) == "delivered"
    after = merchant.get(f"/v1/events/{event['id']}")
    assert (after["delivery_status"], after["delivery_attempts"], len(after["deliveries"])) == ("delivered", 1, 2)
    assert webhooks.deliver(event["id"], attempt=2) == "already_delivered"
