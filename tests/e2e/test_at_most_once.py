"""Charging at most once, on every channel, with faults injected at each boundary of a create.

For every order the invariant is judged from the channel sandbox's own books, never from the hub's records:

    money taken at the channel  =  money the hub recorded  +  money given back as orphan refunds

and no order is ever charged twice (no second order of the same amount at the channel under another id).

The boundaries: the intent write throttled before the channel is asked; the final write throttled after the
channel answered; the process killed right after the channel call (no final write, no stored idempotent answer);
two requests racing for one order number; and money under an id the hub never recorded (an orphan).
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from chalicelib.channels.base import CreateRequest, Payer
from chalicelib.channels.registry import adapter
from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ids import new_id
from chalicelib.domain.money import Money
from chalicelib.service.refunds import submit_refund
from chalicelib.service.routing import account_or_error, callback_url
from chalicelib.storage import idempotency, ledger_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from chalicelib.storage.transaction import Transaction
from functions import edge
from payhub_cli.main import main as payhub
from tests import channel_money
from tests.helpers import wait_for

# (channel, create body); the Stripe card is charged by the create itself (a saved payment method, no 3-D Secure).
CASES: list[tuple[str, dict[str, Any]]] = [
    ("wechatpay", {"method": "wechat.native", "currency": "CNY"}),
    ("alipay", {"method": "alipay.qr", "currency": "CNY"}),
    ("unionpay", {"method": "unionpay.quickpass", "currency": "CNY"}),
    ("ecny", {"method": "ecny.wallet", "currency": "CNY"}),
    ("stripe", {"method": "stripe.card", "currency": "USD", "payment_method": "pm_card_visa",
                "return_url": "https://shop.example/back"}),
    ("paypal", {"method": "paypal.wallet", "currency": "USD", "return_url": "https://shop.example/back"}),
]
IDS = [c[0] for c in CASES]
CHARGED_AT_CREATE = {"stripe"}
# UnionPay answers a repeated create "duplicate transaction" and never gives the tn again: the hub closes that order
# and moves the payment to a new attempt, so the retry's attempt id differs and the channel holds two orders.
REPLACED_ON_RETRY = {"unionpay"}


class Killed(Exception):
    """Stands for the process dying at this point: nothing after it runs in this request."""


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                       "TransactWriteItems")


@contextmanager
def fault_on_commit(matches: Callable[[Transaction], bool], error: Exception) -> Iterator[list[int]]:
    """The next transaction ``matches`` picks raises ``error`` instead of committing (once)."""
    real = Transaction.commit
    fired: list[int] = []

    def commit(self: Transaction) -> None:
        if not fired and matches(self):
            fired.append(1)
            raise error
        real(self)

    Transaction.commit = commit  # type: ignore[method-assign]
    try:
        yield fired
    finally:
        Transaction.commit = real  # type: ignore[method-assign]


def is_intent(tx: Transaction) -> bool:
    return "order_no" in tx._labels and "payment" in tx._labels


def is_final_write(tx: Transaction) -> bool:
    return tx._labels[:2] == ["attempt", "payment"] and all("Update" in item for item in tx._items)


@pytest.fixture
def case(request, stack, channel_account, merchant):
    channel, body = request.param
    # WeChat: the stack's own account (a second account on the one sandbox merchant would re-register its key).
    account = channel_account(channel, **({} if channel == "wechatpay" else
                                          {"account_id": f"{channel}-once", "merchant_ids": (merchant.merchant_id,)}))
    amount = 10_000 + secrets.randbelow(80_000)  # unique per test: the channel's books are read by amount
    order = {"merchant_order_no": f"once{uuid.uuid4().hex[:16]}", "amount": amount, "description": "at most once",
             **body}
    return Case(channel, account, merchant, order)


class Case:
    def __init__(self, channel: str, account: Any, merchant: Any, order: dict[str, Any]) -> None:
        self.channel, self.account, self.merchant, self.order = channel, account, merchant, order
        self.amount = order["amount"]

    def create(self, key: str) -> Any:
        return self.merchant.call("POST", "/v1/payments", self.order, idempotency_key=key)

    def payment(self) -> dict[str, Any]:
        return self.merchant.get(f"/v1/payments?merchant_order_no={self.order['merchant_order_no']}")

    def pay(self, payment_id: str, drain: Callable[[], Any]) -> None:
        """The payer pays (for a card charged at create, the money already moved)."""
        if self.channel not in CHARGED_AT_CREATE:
            assert payhub(["sandbox", "pay", payment_id, "--wait", "0"]) == 0
        drain()
        wait_for(lambda: self.payment()["status"] == "succeeded", timeout_s=20)

    def assert_same_order_at_channel(self, first: dict[str, Any], retried: dict[str, Any]) -> None:
        """A retry is the same payment; at the channel, the same order (or the first one closed, unpaid)."""
        assert retried["id"] == first["id"]
        books = self.at_channel()
        if self.channel in REPLACED_ON_RETRY:
            assert retried["attempt_id"] != first["attempt_id"] and len(books) == 2
            assert books[channel_money.channel_id(self.channel, first["attempt_id"])] == (0, 0)
            assert state_repo.get_attempt(first["attempt_id"]).status == "closed"  # type: ignore[union-attr]
        else:
            assert retried["attempt_id"] == first["attempt_id"] and len(books) == 1

    def at_channel(self) -> channel_money.Money:
        return channel_money.taken(self.channel, self.account.sandbox, self.amount)

    def assert_invariant(self, *, orphan_ids: frozenset[str] = frozenset()) -> None:
        """Taken at the channel = recorded by the hub + refunded as orphans; never two charges."""
        books = self.at_channel()
        charged = {our_id: money for our_id, money in books.items() if money[0] > 0}
        merchant_charges = {i: m for i, m in charged.items() if channel_money.our_attempt(self.channel, i)
                            not in orphan_ids}
        assert len(merchant_charges) <= 1, f"charged twice at {self.channel}: {charged}"
        found = self.merchant.call("GET", f"/v1/payments?merchant_order_no={self.order['merchant_order_no']}")
        payment = found.json() if found.status_code == 200 else {"amount_captured": 0, "amount_refunded": 0}
        recorded = payment["amount_captured"] - payment["amount_refunded"]
        taken_for_order = sum(m[0] - m[1] for m in merchant_charges.values())
        assert taken_for_order == recorded, (books, payment)
        for our_id in orphan_ids:
            taken, given_back = books[channel_money.channel_id(self.channel, our_id)]
            assert taken == given_back == self.amount, books


def make_due_now(attempt_id: str) -> None:
    """Status sync's next look is due now (it is otherwise due FIRST_QUERY_S after the intent)."""
    client("dynamodb").update_item(TableName=state_repo.state_table(), Key=to_item(records.attempt_key(attempt_id)),
                                   UpdateExpression="SET sync_due_at = :now",
                                   ExpressionAttributeValues={":now": {"S": iso(utcnow())}})


# --- the boundaries ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS, indirect=True)
def test_intent_write_throttled_before_the_channel_call(case, drain):
    with fault_on_commit(is_intent, throttled()) as fired:
        refused = case.create("k-before")
    assert fired and refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] and refused.json()["error"]["code"] == "temporarily_unavailable"
    assert case.at_channel() == {}  # the channel was never asked
    created = case.create("k-before")
    assert created.status_code == 201, created.text
    case.pay(created.json()["id"], drain)
    case.assert_invariant()


@pytest.mark.parametrize("case", CASES, ids=IDS, indirect=True)
def test_final_write_throttled_after_the_channel_call(case, drain):
    with fault_on_commit(is_final_write, throttled()) as fired:
        refused = case.create("k-final")
    assert fired and refused.status_code == 503, refused.text
    intent = case.payment()
    assert intent["status"] in ("pending", "succeeded") and intent["attempt_id"]
    retried = case.create("k-final")  # the same request again: same payment, same id at the channel
    assert retried.status_code == 201, retried.text
    case.assert_same_order_at_channel(intent, retried.json())
    case.pay(intent["id"], drain)
    case.assert_invariant()


@pytest.mark.parametrize("case", CASES, ids=IDS, indirect=True)
def test_process_killed_after_the_channel_call_then_retried(case, drain, monkeypatch):
    monkeypatch.setattr(edge, "_settle", lambda lock, response: None)  # a dead process stores no answer either
    with fault_on_commit(is_final_write, Killed("process died")):
        died = case.create("k-killed")
    assert died.status_code == 500
    monkeypatch.undo()
    intent = case.payment()
    in_flight = case.create("k-killed")  # its lock is still held by the dead request
    assert in_flight.status_code == 409 and in_flight.json()["error"]["code"] == "idempotency_in_flight"
    monkeypatch.setattr(idempotency, "LOCK_TIMEOUT_S", -5)  # ...until the lock times out
    retried = case.create("k-killed")
    assert retried.status_code == 201, retried.text
    case.assert_same_order_at_channel(intent, retried.json())
    case.pay(retried.json()["id"], drain)
    case.assert_invariant()


# Sandboxes whose payer can pay an order by its number alone (the merchant never got the QR code or form, but
# the channel's own app can still find it), and the card Stripe charged at create.
PAID_WITHOUT_THE_ANSWER = [c for c in CASES if c[0] in ("wechatpay", "unionpay", "ecny", "stripe")]


@pytest.mark.parametrize("case", PAID_WITHOUT_THE_ANSWER, ids=[c[0] for c in PAID_WITHOUT_THE_ANSWER], indirect=True)
def test_process_killed_and_never_retried_the_money_is_still_recorded(case, drain, monkeypatch):
    """The merchant gave up, but the channel had the order and money moved: the callback or status sync finds it
    under the recorded intent, and the payment succeeds."""
    monkeypatch.setattr(edge, "_settle", lambda lock, response: None)
    with fault_on_commit(is_final_write, Killed("process died")):
        assert case.create("k-gone").status_code == 500
    monkeypatch.undo()
    intent = case.payment()
    if case.channel not in CHARGED_AT_CREATE:
        assert payhub(["sandbox", "pay", intent["id"], "--wait", "0"]) == 0
    make_due_now(intent["attempt_id"])
    drain()
    wait_for(lambda: case.payment()["status"] == "succeeded", timeout_s=20)
    case.assert_invariant()


@pytest.mark.parametrize("case", [c for c in CASES if c[0] not in CHARGED_AT_CREATE],
                         ids=[c[0] for c in CASES if c[0] not in CHARGED_AT_CREATE], indirect=True)
def test_process_killed_never_retried_nor_paid_is_closed_at_the_channel_when_it_expires(case, drain, monkeypatch):
    monkeypatch.setattr(edge, "_settle", lambda lock, response: None)
    with fault_on_commit(is_final_write, Killed("process died")):
        assert case.create("k-expired").status_code == 500
    monkeypatch.undo()
    intent = case.payment()
    past = iso(utcnow() - timedelta(seconds=1))
    for key in (records.attempt_key(intent["attempt_id"]), records.payment_key(intent["id"])):
        client("dynamodb").update_item(TableName=state_repo.state_table(), Key=to_item(key),
                                       UpdateExpression="SET expires_at = :past",
                                       ExpressionAttributeValues={":past": {"S": past}})
    make_due_now(intent["attempt_id"])
    drain()
    wait_for(lambda: case.payment()["status"] == "closed", timeout_s=20)
    case.assert_invariant()
    books = case.at_channel()
    assert list(books.values()) == [(0, 0)]  # the order the channel made is there, and no money moved


@pytest.mark.parametrize("case", CASES, ids=IDS, indirect=True)
def test_two_requests_racing_for_one_order_number(case, drain):
    answers: list[Any] = []
    start = threading.Barrier(4)

    def send(key: str) -> None:
        start.wait()
        answers.append(case.create(key))

    threads = [threading.Thread(target=send, args=(key,)) for key in ("k-a", "k-b", "k-a", "k-c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(a.status_code for a in answers)
    created = [a for a in answers if a.status_code == 201]
    assert created and codes.count(409) >= 2, [a.text for a in answers]
    assert len({a.json()["id"] for a in created}) == 1
    assert all(a.json()["error"]["code"] in ("duplicate_merchant_order_no", "idempotency_in_flight")
               for a in answers if a.status_code == 409)
    assert len(case.at_channel()) == 1
    case.pay(created[0].json()["id"], drain)
    case.assert_invariant()


@pytest.mark.parametrize("case", CASES, ids=IDS, indirect=True)
def test_a_definite_refusal_withdraws_the_intent(case, drain, monkeypatch):
    """The channel said no: nothing moved, nothing is left half-written, the order number is free again."""
    from chalicelib.domain.errors import ChannelError

    real = adapter(case.channel).create

    def refuse(account, request):
        raise ChannelError("declined by the channel", channel_code="REFUSED", refused=True)

    monkeypatch.setattr(type(adapter(case.channel)), "create", lambda self, account, request: refuse(account, request))
    refused = case.create("k-refused")
    assert refused.status_code == 502 and refused.json()["error"]["code"] == "channel_error"
    missing = case.merchant.call("GET", f"/v1/payments?merchant_order_no={case.order['merchant_order_no']}")
    assert missing.status_code == 404
    monkeypatch.setattr(type(adapter(case.channel)), "create", lambda self, account, request: real(account, request))
    assert case.create("k-after-refusal").status_code == 201


# --- orphans --------------------------------------------------------------------------------------------------------


def make_orphan(case: Case) -> str:
    """An order at the channel under a hub-shaped id the hub never recorded, as an older release (one that called the
    channel before writing) could leave behind; the payer pays it."""
    attempt_id = new_id("att")
    account = account_or_error(case.account.account_id)
    body = case.order
    created = adapter(case.channel).create(account, CreateRequest(
        attempt_id=attempt_id, method=body["method"], amount=Money(case.amount, body["currency"]),
        description="orphan", notify_url=callback_url(settings().public_base_url, case.channel, account.account_id),
        expires_at=utcnow().replace(microsecond=0) + timedelta(hours=1), payer=Payer(),
        return_url=body.get("return_url"), payment_method=body.get("payment_method"), requested_at=utcnow()))
    if case.channel not in CHARGED_AT_CREATE:
        channel_money.pay_at_sandbox(case.channel, case.account.sandbox_url, attempt_id, created, account=account,
                                     amount=Money(case.amount, body["currency"]))
    return attempt_id


@pytest.mark.parametrize("case", CASES, ids=IDS, indirect=True)
def test_orphan_money_is_found_and_refunded(case, drain):
    orphan = make_orphan(case)
    wait_for(lambda: state_repo.get_attempt(orphan) is not None or (drain() and False), timeout_s=20)
    drain()  # the refund worker sends the automatic refund; the channel settles it

    def refunded() -> bool:
        drain()
        taken, given_back = case.at_channel()[channel_money.channel_id(case.channel, orphan)]
        return taken == given_back == case.amount

    wait_for(refunded, timeout_s=30, every_s=0.3)
    case.assert_invariant(orphan_ids=frozenset({orphan}))
    attempt = state_repo.get_attempt(orphan)
    assert attempt is not None and attempt.merchant_id == "hub_orphans"

    def recorded_as_refunded() -> bool:
        drain()
        payment = state_repo.get_payment(attempt.payment_id)
        return payment is not None and (payment.amount_captured, payment.amount_refunded) == (case.amount, case.amount)

    wait_for(recorded_as_refunded, timeout_s=30, every_s=0.3)
    journals = ledger_repo.journals_for(orphan)
    assert len(journals) == 1  # the capture; the refund's journal is under the refund's id
    refund_id = state_repo.get_item(records.refund_no_key(attempt.payment_id, f"auto:{orphan}"))["refund_id"]
    assert len(ledger_repo.journals_for(refund_id)) == 1
    audits = client("dynamodb").query(TableName=state_repo.state_table(), KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": f"AUDIT#{orphan}"}})["Items"]
    assert {a["reason"]["S"] for a in audits} >= {"orphan_adopted", "late_success_refunded"}, json.dumps(audits)


# --- answers lost after the work was done (the same key always gets the same object back) ------------------------


@contextmanager
def answer_not_stored() -> Iterator[list[int]]:
    """The idempotency store throttles the write of the next answer (once)."""
    real = idempotency.complete
    fired: list[int] = []

    def complete(lock, response):
        if not fired:
            fired.append(1)
            raise throttled()
        real(lock, response)

    idempotency.complete = complete  # type: ignore[assignment]
    try:
        yield fired
    finally:
        idempotency.complete = real  # type: ignore[assignment]


def test_a_create_whose_stored_answer_is_gone_is_answered_again_on_retry(stack, merchant):
    """A create stores its answer in its final transaction, so the two cannot part; but a stored answer can still
    be gone (it expired after 25 h, or an operator cleared it): the retry finds its payment by the order number's
    claim and answers it again, instead of 409 duplicate_merchant_order_no."""
    body = {"merchant_order_no": f"lost{uuid.uuid4().hex[:12]}", "amount": 4321, "currency": "CNY",
            "description": "answer lost", "method": "wechat.native"}
    first = merchant.call("POST", "/v1/payments", body, idempotency_key="k-lost")
    assert first.status_code == 201, first.text
    client("dynamodb").delete_item(TableName=settings().names.idempotency_table,
                                   Key={"pk": {"S": f"{merchant.merchant_id}#k-lost"}})
    retried = merchant.call("POST", "/v1/payments", body, idempotency_key="k-lost")
    assert retried.status_code == 201, retried.text  # not 409 duplicate_merchant_order_no
    assert retried.json()["id"] == first.json()["id"] and retried.json()["action"] == first.json()["action"]
    assert len(stack.sandbox.state.orders_named(first.json()["attempt_id"], None)) == 1
    changed = merchant.call("POST", "/v1/payments", {**body, "amount": 4322}, idempotency_key="k-lost")
    assert changed.status_code == 422 and changed.json()["error"]["code"] == "idempotency_key_reused"


def test_a_create_writes_its_two_transactions_and_nothing_else(stack, merchant, monkeypatch):
    """The record before the channel call and the final one, each carrying the Idempotency-Key's part."""
    writes: list[str] = []
    real = Transaction.commit

    def commit(self: Transaction) -> None:
        writes.append("+".join(self._labels))
        real(self)

    monkeypatch.setattr(Transaction, "commit", commit)
    monkeypatch.setattr(idempotency, "begin", lambda *a: writes.append("begin"))
    monkeypatch.setattr(idempotency, "complete", lambda *a: writes.append("complete"))
    created = merchant.create_payment(amount=1234)
    assert created["action"]["type"] == "qr_code"
    assert writes == ["order_no+payment+attempt+idempotency", "attempt+payment+idempotency"]


def test_a_refund_whose_answer_was_not_stored_is_answered_again_on_retry(stack, merchant, drain):
    payment = merchant.create_payment(amount=900)
    assert requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]},
                         timeout=10).status_code == 200
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    refund = {"amount": 900, "merchant_refund_no": "R-lost"}
    path = f"/v1/payments/{payment['id']}/refunds"
    with answer_not_stored():
        first = merchant.call("POST", path, refund, idempotency_key="r-lost")
    assert first.status_code == 201, first.text
    retried = merchant.call("POST", path, refund, idempotency_key="r-lost")
    assert retried.status_code == 201, retried.text  # the whole amount is reserved by this very refund
    assert retried.json()["id"] == first.json()["id"]
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{first.json()['id']}")["status"] == "succeeded", timeout_s=15)
    assert channel_money.taken("wechatpay", stack.sandbox, 900)[payment["attempt_id"]] == (900, 900)


# --- refunds: the worker dies after the channel took the refund ---------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS, indirect=True)
def test_refund_worker_killed_after_the_channel_call_gives_back_once(case, drain):
    created = case.create("k-refund")
    assert created.status_code == 201, created.text
    case.pay(created.json()["id"], drain)
    refund = case.merchant.call("POST", f"/v1/payments/{created.json()['id']}/refunds",
                                {"amount": case.amount, "merchant_refund_no": "R1"})
    assert refund.status_code == 201, refund.text

    def after_refund_call(tx: Transaction) -> bool:  # the worker records the channel's answer to the refund
        return "refund" in tx._labels and "refund_no" not in tx._labels

    with fault_on_commit(after_refund_call, Killed("worker died")) as fired:
        drain()  # the refund worker sends the refund, then dies before recording the channel's answer
    assert fired
    for _ in range(3):  # SQS redelivers the message (and status sync would resubmit it)
        submit_refund(refund.json()["id"])
        drain()

    def settled() -> bool:
        drain()
        return case.merchant.get(f"/v1/refunds/{refund.json()['id']}")["status"] == "succeeded"

    wait_for(settled, timeout_s=30, every_s=0.3)
    books = case.at_channel()
    assert [m for m in books.values() if m[0]] == [(case.amount, case.amount)], books  # given back once
    case.assert_invariant()


def test_a_retry_after_the_channels_dedupe_window_does_not_ask_again(stack, merchant, monkeypatch):
    """Stripe forgets an Idempotency-Key after 24 h: a create sent again after that could charge again. Past the
    window (or past the attempt's expiry) a retry gets the payment as it stands; status sync owns the attempt."""
    from chalicelib.service import payments

    body = {"merchant_order_no": f"late{uuid.uuid4().hex[:12]}", "amount": 777, "currency": "CNY",
            "description": "late retry", "method": "wechat.native"}
    with fault_on_commit(is_final_write, throttled()):
        assert merchant.call("POST", "/v1/payments", body, idempotency_key="k-late").status_code == 503
    intent = merchant.get(f"/v1/payments?merchant_order_no={body['merchant_order_no']}")
    aged = iso(utcnow() - timedelta(seconds=payments.RESUME_WINDOW_S + 60))
    client("dynamodb").update_item(TableName=state_repo.state_table(),
                                   Key=to_item(records.attempt_key(intent["attempt_id"])),
                                   UpdateExpression="SET created_at = :aged", ExpressionAttributeValues={
                                       ":aged": {"S": aged}})
    calls: list[str] = []
    real = type(adapter("wechatpay")).create
    monkeypatch.setattr(type(adapter("wechatpay")), "create",
                        lambda self, account, request: calls.append(request.attempt_id) or real(self, account, request))
    retried = merchant.call("POST", "/v1/payments", body, idempotency_key="k-late")
    assert retried.status_code == 201 and retried.json()["id"] == intent["id"]
    assert calls == [] and retried.json()["action"] is None
