"""Failover in create, end to end against the WeChat Pay sandbox with its injected faults, judged by the
sandbox's own books: a pre-order that times out is sent once more under the same order number, then the first
order is closed at the channel and the payment moves to the backup account; the payer is charged once."""

from __future__ import annotations

import secrets
import time

import pytest
import requests

from chalicelib.routing import health as health_mod
from chalicelib.routing.health import BreakerPolicy, Health
from chalicelib.routing.rules import RoutingRules
from chalicelib.storage import config_repo, state_repo
from payhub_cli.main import main as payhub
from tests import channel_money
from tests.e2e.routing_kit import account_of, wechat_accounts
from tests.helpers import make_merchant, wait_for

NATIVE_PATH = "/v3/pay/transactions/native"


@pytest.fixture
def breaker():
    tracker = Health(BreakerPolicy(min_calls=2, failure_rate=0.5, cooldown_s=300, cache_s=0, flush_s=0))
    health_mod.use(tracker)
    yield tracker
    health_mod.use(None)


@pytest.fixture
def faults(stack):
    def arm(mode: str, count: int, path_prefix: str, **options: object) -> None:
        answer = requests.post(f"{stack.sandbox_url}/_sandbox/faults", timeout=10,
                               json={"mode": mode, "count": count, "path_prefix": path_prefix, **options})
        assert answer.status_code == 200, answer.text

    yield arm
    requests.delete(f"{stack.sandbox_url}/_sandbox/faults", timeout=10)


def _setup(stack):
    merchant = make_merchant(stack)
    primary, backup = wechat_accounts(stack, merchant.merchant_id, "wx-primary", "wx-backup")
    config_repo.put_routing(merchant.merchant_id, RoutingRules.model_validate({
        "rules": [{"rule_id": "native", "methods": ["wechat.native"], "candidates": [
            {"account_id": primary, "priority": 1}, {"account_id": backup, "priority": 2}]}],
        "failover": {"create_timeout_ms": 400}}))
    return merchant, primary, backup


def _order(amount: int) -> dict:
    return {"merchant_order_no": f"fo{secrets.token_hex(8)}", "amount": amount, "currency": "CNY",
            "description": "failover", "method": "wechat.native"}


def _mchid(account_id: str) -> str:
    account = config_repo.channel_account(account_id)
    assert account is not None
    return account.setting("mchid")


def test_a_create_that_times_out_twice_fails_over_and_the_payer_is_charged_once(stack, faults, breaker, drain):
    merchant, primary, backup = _setup(stack)
    amount = 100_000 + secrets.randbelow(800_000)  # unique: the sandbox's books are read by amount
    faults("timeout", 2, NATIVE_PATH, delay_s=1.5)  # the first try and its retry; the backup's create goes through
    started = time.monotonic()
    order = _order(amount)
    created = merchant.call("POST", "/v1/payments", order, idempotency_key="fo-1")
    assert created.status_code == 201, created.text
    elapsed = time.monotonic() - started
    print(f"failover create answered in {elapsed:.3f} s")
    assert elapsed < 6  # two 0.4 s cut-offs, a query, a close and the backup's create
    payment = created.json()
    assert account_of(payment) == backup and payment["action"]["type"] == "qr_code"

    # the first attempt: sent twice under one order number, closed at the channel, closed in the hub, audited
    attempts = [a for a in _attempts(payment["id"]) if a.attempt_id != payment["attempt_id"]]
    assert len(attempts) == 1
    first = attempts[0]
    assert first.account_id == primary and first.status == "closed"
    at_channel = requests.get(f"{stack.sandbox_url}/_sandbox/orders/{first.attempt_id}",
                         params={"mchid": _mchid(primary)}, timeout=10).json()["order"]
    assert at_channel["trade_state"] == "CLOSED", at_channel
    trail = _audit(first.attempt_id)
    assert trail and trail[0]["source"] == "failover" and backup in trail[0]["reason"]

    # the payer pays what they were shown; the closed first order cannot be paid any more
    assert payhub(["sandbox", "pay", payment["id"], "--wait", "5"]) == 0
    drain()
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded", timeout_s=15)
    late = requests.post(f"{stack.sandbox_url}/_sandbox/pay", timeout=10,
                         json={"out_trade_no": first.attempt_id, "mchid": _mchid(primary)})
    assert late.status_code != 200

    # judged by the sandbox's books: one order at each account, one charge, equal to what the hub recorded
    books = channel_money.taken("wechatpay", stack.sandbox, amount)
    assert books == {first.attempt_id: (0, 0), payment["attempt_id"]: (amount, 0)}, books
    recorded = merchant.get(f"/v1/payments/{payment['id']}")
    assert recorded["amount_captured"] == amount

    # the same request again (same Idempotency-Key) is the same payment, on the backup, with no new order
    again = merchant.call("POST", "/v1/payments", order, idempotency_key="fo-1")
    assert again.status_code == 201 and again.json()["id"] == payment["id"], again.text
    assert channel_money.taken("wechatpay", stack.sandbox, amount) == books


def test_a_payment_whose_first_order_cannot_be_closed_does_not_fail_over(stack, faults, breaker, drain):
    merchant, primary, backup = _setup(stack)
    amount = 100_000 + secrets.randbelow(800_000)
    faults("timeout", 2, NATIVE_PATH, delay_s=1.5)
    faults("error_5xx", 5, "/v3/pay/transactions/out-trade-no/")  # the query and the close fail: nothing confirmed
    order = _order(amount)
    refused = merchant.call("POST", "/v1/payments", order, idempotency_key="fo-2")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "channel_unavailable", refused.text
    books = channel_money.taken("wechatpay", stack.sandbox, amount)
    assert len(books) == 1 and all(money == (0, 0) for money in books.values())  # the backup was never asked
    payment = merchant.get(f"/v1/payments?merchant_order_no={order['merchant_order_no']}")
    assert account_of(payment) == primary and payment["status"] == "pending"  # status sync owns it


def test_an_open_breaker_sends_the_next_payment_straight_to_the_backup(stack, faults, breaker, drain):
    merchant, primary, backup = _setup(stack)
    faults("timeout", 2, NATIVE_PATH, delay_s=1.5)
    first = merchant.create_payment(amount=2000 + secrets.randbelow(1000))
    assert account_of(first) == backup
    assert breaker.view(primary).state == "open"  # two timed-out creates of two: the primary is down
    started = time.monotonic()
    second = merchant.create_payment(amount=3000 + secrets.randbelow(1000))
    assert account_of(second) == backup and time.monotonic() - started < 1.5  # no time lost on the primary
    assert [a.account_id for a in _attempts(second["id"])] == [backup]


def _attempts(payment_id: str) -> list:
    from chalicelib.storage.aws import client

    found = client("dynamodb").scan(TableName=state_repo.state_table(), FilterExpression="payment_id = :p AND sk = :s",
                                    ExpressionAttributeValues={":p": {"S": payment_id}, ":s": {"S": "ATTEMPT"}})
    attempts = [state_repo.get_attempt(i["attempt_id"]["S"]) for i in found["Items"]]
    return sorted((a for a in attempts if a is not None), key=lambda a: a.created_at)


def _audit(attempt_id: str) -> list[dict]:
    from chalicelib.storage.aws import client
    from chalicelib.storage.codec import from_item

    found = client("dynamodb").query(TableName=state_repo.state_table(), KeyConditionExpression="pk = :pk",
                                     ExpressionAttributeValues={":pk": {"S": f"AUDIT#{attempt_id}"}})
    return [from_item(i) for i in found["Items"]]


def test_a_merchant_without_rules_keeps_the_plain_create(stack, faults, breaker):
    """No rules, no failover: one call, the channel's own timeout, the intent left for status sync."""
    merchant = make_merchant(stack)
    (only,) = wechat_accounts(stack, merchant.merchant_id, "wx-plain")
    faults("error_5xx", 1, NATIVE_PATH)
    refused = merchant.call("POST", "/v1/payments", _order(5000 + secrets.randbelow(1000)))
    assert refused.status_code == 503, refused.text
    assert breaker.view(only).stats.calls == 1  # sent once, not retried
