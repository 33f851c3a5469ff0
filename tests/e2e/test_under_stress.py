"""Duplicates, races and crashes between steps: the payment's state, the ledger and the merchant's events
stay exact."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
import requests

from chalicelib.channels.base import PaymentOutcome, PaymentStatus
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ids import event_id
from chalicelib.domain.ledger import merchant_payable_account
from chalicelib.service.outcomes import apply_attempt_status
from chalicelib.storage import ledger_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from infra.functions import STREAM_RETRIES
from infra.local import workers
from tests.helpers import make_merchant, wait_for


def arm(stack, mode: str, **options) -> None:
    response = requests.post(f"{stack.sandbox_url}/_sandbox/faults", json={"mode": mode, **options}, timeout=10)
    assert response.status_code in (200, 201), response.text


def pay_at_sandbox(stack, attempt_id: str) -> None:
    response = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": attempt_id}, timeout=10)
    assert response.status_code == 200, response.text


def deliveries(stack, attempt_id: str) -> list[dict]:
    answer = requests.get(f"{stack.sandbox_url}/_sandbox/deliveries", params={"out_trade_no": attempt_id},
                          timeout=10).json()
    return list(answer["attempts"])


def make_sync_due(key: dict[str, str]) -> None:
    """Skip the backoff wait: the item becomes due for the next status-sync sweep now."""
    client("dynamodb").update_item(
        TableName=state_repo.state_table(), Key=to_item(key), UpdateExpression="SET sync_due_at = :past",
        ExpressionAttributeValues={":past": {"S": iso(utcnow() - timedelta(seconds=1))}})


def journals_of(attempt_id: str) -> list[dict]:
    return ledger_repo.journals_for(attempt_id)


@pytest.fixture(autouse=True)
def clear_faults(stack):
    yield
    requests.delete(f"{stack.sandbox_url}/_sandbox/faults", timeout=10)


def test_duplicate_callbacks_make_one_transition_one_posting_one_event(stack, merchant, drain):
    payment = merchant.create_payment(amount=4321)
    arm(stack, "duplicate_callback", copies=50)
    pay_at_sandbox(stack, payment["attempt_id"])
    wait_for(lambda: len([d for d in deliveries(stack, payment["attempt_id"]) if d["delivered"]]) >= 50, timeout_s=30)
    drain()
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"
    assert len(journals_of(payment["attempt_id"])) == 1
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == -4321
    events = [e for e in merchant.get("/v1/events")["data"] if e["data"]["id"] == payment["id"]]
    assert [e["type"] for e in events] == ["payment.succeeded"]
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])


def test_fifty_concurrent_applications_of_one_success_apply_once(stack, merchant):
    """The core race: 50 workers apply the same success at the same instant (callbacks and status sync alike)."""
    payment = merchant.create_payment(amount=999)
    arm(stack, "no_callback")
    pay_at_sandbox(stack, payment["attempt_id"])
    status = PaymentStatus(PaymentOutcome.SUCCEEDED, "SUCCESS", channel_transaction_id="4200000000000001")
    barrier = threading.Barrier(50)
    results: list[str] = []

    def apply() -> None:
        barrier.wait()
        results.append(str(apply_attempt_status(payment["attempt_id"], status, source="race_test")))

    threads = [threading.Thread(target=apply) for _ in range(50)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results.count("applied") == 1
    assert set(results) <= {"applied", "no_change"}
    assert len(journals_of(payment["attempt_id"])) == 1
    stored = state_repo.get_payment(payment["id"])
    assert (stored.status, stored.amount_captured, stored.version) == ("succeeded", 999, 1)
    assert [e["type"] for e in merchant.get("/v1/events")["data"]] == ["payment.succeeded"]


def test_concurrent_refunds_never_exceed_the_captured_amount(stack, merchant, drain):
    payment = merchant.create_payment(amount=1000)
    pay_at_sandbox(stack, payment["attempt_id"])
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    barrier = threading.Barrier(12)
    answers: list[requests.Response] = []

    def refund(n: int) -> None:
        barrier.wait()
        answers.append(merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                                     {"amount": 300, "merchant_refund_no": f"r{n}"}))

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == 3, codes
    assert all(a.json()["error"]["code"] == "refund_exceeds_captured" for a in answers if a.status_code == 422)
    drain()
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["amount_refunded"] == 900, timeout_s=15)
    last = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 100, "merchant_refund_no": "x"})
    assert last.status_code == 201
    over = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 1, "merchant_refund_no": "y"})
    assert over.status_code == 422
    dup = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 1, "merchant_refund_no": "x"})
    assert dup.status_code in (409, 422)


def test_lost_callback_after_channel_success_is_repaired_by_status_sync(stack, merchant, drain):
    """The channel took the money, but the hub never heard (crash, lost callback): status sync finds it."""
    payment = merchant.create_payment(amount=2500)
    arm(stack, "no_callback")
    pay_at_sandbox(stack, payment["attempt_id"])
    drain()
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "pending"
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()
    repaired = merchant.get(f"/v1/payments/{payment['id']}")
    assert (repaired["status"], repaired["amount_captured"]) == ("succeeded", 2500)
    assert len(journals_of(payment["attempt_id"])) == 1
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])
    assert "sync_shard" not in state_repo.get_item(records.attempt_key(payment["attempt_id"]))


def test_an_event_the_relay_cannot_send_is_published_by_the_outbox_sweep(stack, merchant, drain, monkeypatch):
    """SQS refuses the relay's webhook batches through every retry the stream mapping allows: the stream moves
    on, the event is still in the outbox index, and the sweep publishes it once it is older than its grace."""
    from chalicelib.storage import outbox
    from functions import sweeps

    drain()
    payment = merchant.create_payment(amount=700)
    real_send_entries = outbox._send_entries
    refused: list[str] = []

    def refusing(topic, entries):
        if topic == "webhooks":
            refused.extend(event.event_id for _, event in entries)
            return {sequence for sequence, _ in entries}
        return real_send_entries(topic, entries)

    monkeypatch.setattr(outbox, "_send_entries", refusing)
    pay_at_sandbox(stack, payment["attempt_id"])
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    drain()
    evt = event_id(payment["id"], "payment.succeeded")
    assert refused.count(evt) == 1 + STREAM_RETRIES  # the first try and every retry, then the stream moved on
    monkeypatch.setattr(outbox, "_send_entries", real_send_entries)
    drain()
    assert stack.receiver.types_for(payment["id"]) == []  # still younger than the sweep's grace period
    monkeypatch.setattr(sweeps, "OUTBOX_GRACE_S", 0)
    drain()
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])


def test_expired_payment_is_closed_at_the_channel_and_locally(stack, merchant, drain):
    payment = merchant.create_payment()
    past = iso(utcnow() - timedelta(seconds=5))
    client("dynamodb").update_item(TableName=state_repo.state_table(),
                                   Key=to_item(records.attempt_key(payment["attempt_id"])),
                                   UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={
                                       ":past": {"S": past}})
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "closed"
    order = requests.get(f"{stack.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()
    assert "CLOSED" in str(order)
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.closed"])


def test_close_racing_a_payment_records_the_success(stack, merchant, drain):
    """Payer pays, callback lost, merchant closes: the channel refuses to close a paid order, the hub learns."""
    payment = merchant.create_payment(amount=1234)
    arm(stack, "no_callback")
    pay_at_sandbox(stack, payment["attempt_id"])
    closed = merchant.call("POST", f"/v1/payments/{payment['id']}/close")
    assert closed.status_code == 200
    assert closed.json()["status"] == "succeeded"


@pytest.mark.parametrize("policy", ["refund", "accept"])
def test_success_arriving_for_a_closed_payment_loses_no_money(stack, drain, policy):
    merchant = make_merchant(stack, late_success_policy=policy)
    payment = merchant.create_payment(amount=5000)
    arm(stack, "no_callback")
    pay_at_sandbox(stack, payment["attempt_id"])
    # The hub closed the attempt (e.g. it expired and the close raced the payer): locally closed, paid at the channel.
    apply_attempt_status(payment["attempt_id"], PaymentStatus(PaymentOutcome.CLOSED, "CLOSED"), source="test")
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "closed"
    # The success shows up later, here through status sync (a late callback takes the same path).
    client("dynamodb").update_item(TableName=state_repo.state_table(),
                                   Key=to_item(records.attempt_key(payment["attempt_id"])),
                                   UpdateExpression="SET sync_shard = :s, sync_due_at = :d, #st = :pending",
                                   ExpressionAttributeNames={"#st": "status"},
                                   ExpressionAttributeValues={":s": {"S": "0"}, ":d": {"S": iso(utcnow())},
                                                              ":pending": {"S": "closed"}})
    status = PaymentStatus(PaymentOutcome.SUCCEEDED, "SUCCESS")
    assert str(apply_attempt_status(payment["attempt_id"], status, source="late_callback")) == "applied"
    drain()
    after = merchant.get(f"/v1/payments/{payment['id']}")
    assert after["amount_captured"] == 5000
    assert len(journals_of(payment["attempt_id"])) == 1
    audit, _ = state_repo.query("pk = :pk", {":pk": f"AUDIT#{payment['attempt_id']}"})
    if policy == "accept":
        assert after["status"] == "succeeded"
        assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))
        assert any(a["reason"] == "late_success_accepted" for a in audit)
    else:
        assert after["status"] == "closed"
        wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["amount_refunded"] == 5000, timeout_s=15)
        assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == 0
        assert any(a["reason"] == "late_success_refunded" for a in audit)


@pytest.mark.parametrize("fault", ["forged_callback", "tampered_callback", "stale_callback"])
def test_forged_tampered_and_stale_callbacks_are_rejected_and_logged(stack, merchant, drain, caplog, fault,
                                                                    published_metrics):
    caplog.set_level(logging.WARNING, logger="chalicelib.service.callbacks")
    payment = merchant.create_payment()
    arm(stack, fault)
    pay_at_sandbox(stack, payment["attempt_id"])
    # The spoiled first delivery is refused; WeChat-style, the channel re-sends a good copy, which is applied.
    rows = wait_for(lambda: [d for d in deliveries(stack, payment["attempt_id"]) if d["attempt"] >= 2 and d["delivered"]]
                    and deliveries(stack, payment["attempt_id"]), timeout_s=15)
    first = next(r for r in rows if r["attempt"] == 1)
    assert not first["delivered"] and first["status_code"] in (400, 401)
    assert any("callback rejected" in r.getMessage() for r in caplog.records)
    assert any(getattr(r, "security_event", None) == "callback_rejected" for r in caplog.records)
    assert published_metrics.values("PayHub/Security", "callback_rejected", Stage="local")  # what the alarm watches
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"


def test_replayed_callback_for_another_account_is_rejected(stack, merchant):
    body = b'{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{}}'
    response = requests.post(f"{stack.api_url}/callbacks/wechatpay/no-such-account", data=body,
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code >= 400
    unsigned = requests.post(f"{stack.api_url}/callbacks/wechatpay/{stack.account_id}", data=body,
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert unsigned.status_code >= 400


def test_channel_news_with_another_amount_is_never_applied(stack, merchant, caplog):
    from chalicelib.domain.money import Money

    payment = merchant.create_payment(amount=1000)
    wrong = PaymentStatus(PaymentOutcome.SUCCEEDED, "SUCCESS", amount=Money(1, "CNY"))
    assert str(apply_attempt_status(payment["attempt_id"], wrong, source="status_sync")) == "mismatch"
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "pending"
    assert journals_of(payment["attempt_id"]) == []
    assert any(getattr(r, "alert", None) == "amount_mismatch" for r in caplog.records)


def test_a_refund_left_pending_is_resubmitted_by_status_sync(stack, merchant, drain, monkeypatch):
    """The refund's worker message was lost (e.g. dead-lettered during a long channel outage)."""
    from chalicelib.storage import outbox

    payment = merchant.create_payment(amount=900)
    pay_at_sandbox(stack, payment["attempt_id"])
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    drain()
    real_send_entries = outbox._send_entries
    # SQS took the submit command (the relay marks it published) and then lost it.
    monkeypatch.setattr(outbox, "_send_entries", lambda topic, entries: set() if topic == "refunds"
                        else real_send_entries(topic, entries))
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 900, "merchant_refund_no": "lost"}).json()
    drain()
    monkeypatch.setattr(outbox, "_send_entries", real_send_entries)
    assert "outbox_shard" not in state_repo.get_item(records.event_key(event_id(refund["id"], "refund.submit")))
    drain()
    assert merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "pending"
    make_sync_due(records.refund_key(refund["id"]))
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "succeeded", timeout_s=15)


def test_verified_callback_with_another_amount_is_acknowledged_not_applied(stack, merchant, caplog):
    payment = merchant.create_payment(amount=1000)
    # Our record and the channel's disagree (a bug or tampering upstream): the hub holds 999.
    client("dynamodb").update_item(TableName=state_repo.state_table(),
                                   Key=to_item(records.attempt_key(payment["attempt_id"])),
                                   UpdateExpression="SET amount = :wrong", ExpressionAttributeValues={
                                       ":wrong": {"N": "999"}})
    pay_at_sandbox(stack, payment["attempt_id"])
    rows = wait_for(lambda: [d for d in deliveries(stack, payment["attempt_id"]) if d["delivered"]])
    assert rows[0]["status_code"] == 204 and len(rows) == 1  # acknowledged: the channel stops retrying
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "pending"
    assert journals_of(payment["attempt_id"]) == []
    assert any(getattr(r, "alert", None) == "amount_mismatch" for r in caplog.records)


def test_channel_5xx_on_create_keeps_the_intent_and_the_same_key_resumes_it(stack, merchant):
    """The hub cannot know whether a create the channel answered 5xx took effect, so its record stays (status sync
    asks the channel about it) and only a retry of the same request may use the order number: under the same ids."""
    arm(stack, "error_5xx", path_prefix="/v3/pay/transactions")
    body = {"merchant_order_no": "o5xx" + merchant.merchant_id[-8:], "amount": 100, "currency": "CNY",
            "description": "x", "method": "wechat.native"}
    response = merchant.call("POST", "/v1/payments", body, idempotency_key="create-5xx")
    assert response.status_code == 503 and response.json()["error"]["code"] == "channel_unavailable"
    assert response.headers["Retry-After"] == "2"
    recorded = merchant.get(f"/v1/payments?merchant_order_no={body['merchant_order_no']}")
    assert recorded["status"] == "pending" and recorded["action"] is None
    other = merchant.call("POST", "/v1/payments", body)  # another request may not take the order number
    assert other.status_code == 409 and other.json()["error"]["code"] == "duplicate_merchant_order_no"
    retried = merchant.call("POST", "/v1/payments", body, idempotency_key="create-5xx")
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] == recorded["id"] and retried.json()["attempt_id"] == recorded["attempt_id"]
    assert retried.json()["action"]["type"] == "qr_code"
    assert len(stack.sandbox.state.orders_named(recorded["attempt_id"], None)) == 1


def test_refund_whose_answer_timed_out_is_retried_and_done_once(stack, merchant, drain):
    """The channel took the refund but the hub never saw the answer: the retry is deduplicated by our refund id."""
    payment = merchant.create_payment(amount=400)
    pay_at_sandbox(stack, payment["attempt_id"])
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    arm(stack, "timeout", path_prefix="/v3/refund/domestic/refunds", delay_s=12)
    arm(stack, "no_callback")  # only the retried request can tell the hub what happened
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 400, "merchant_refund_no": "slow"}).json()
    drain()  # the first try times out (retryable): the message becomes visible again shortly
    assert merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "pending"
    time.sleep(workers.RETRY_VISIBILITY_S + 0.5)
    drain()  # the retry sends the same out_refund_no; the channel answers with the refund it already has
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "succeeded", timeout_s=20)
    order = requests.get(f"{stack.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()
    assert len(order["refunds"]) == 1 and order["refunded_fen"] == 400
    assert merchant.get(f"/v1/payments/{payment['id']}")["amount_refunded"] == 400


def test_out_of_order_callbacks_are_harmless(stack, merchant, drain):
    """The refund's callback arrives before the payment's own (held back by the channel)."""
    payment = merchant.create_payment(amount=650)
    arm(stack, "out_of_order", delay_s=20)
    pay_at_sandbox(stack, payment["attempt_id"])
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()  # status sync learns the payment succeeded while its callback is still held
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 650, "merchant_refund_no": "ooo"}).json()
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "succeeded", timeout_s=15)
    held = wait_for(lambda: [d for d in deliveries(stack, payment["attempt_id"])
                             if d["event_type"] == "TRANSACTION.SUCCESS" and d["delivered"]], timeout_s=15)
    assert held[0]["status_code"] == 204  # the late payment callback is acknowledged and changes nothing
    drain()
    assert len(journals_of(payment["attempt_id"])) == 1 and len(journals_of(refund["id"])) == 1
    assert sorted(e["type"] for e in merchant.get("/v1/events")["data"]) == ["payment.succeeded", "refund.succeeded"]
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == 0


def test_late_callback_is_applied_when_it_comes(stack, merchant):
    payment = merchant.create_payment(amount=320)
    arm(stack, "late_callback", delay_s=1.5)
    pay_at_sandbox(stack, payment["attempt_id"])
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "pending"
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
