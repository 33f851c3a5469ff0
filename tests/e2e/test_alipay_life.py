"""Alipay payments' whole life over HTTP: create → the payer pays at the sandbox → signed notify → webhook →
refund (synchronous at Alipay, then its notify) → webhook; duplicates, reordering, forgeries and rotations
harmless; a new account live by configuration alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ledger import merchant_payable_account
from chalicelib.storage import config_repo, ledger_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from infra.local.provision.alipay import register
from sandbox.alipay import AlipaySandbox
from sandbox.alipay.crypto import AlipayKey, canonical
from tests.helpers import wait_for

BEIJING_OFFSET = timedelta(hours=8)


@pytest.fixture
def alipay(channel_account):
    local = channel_account("alipay")
    yield local
    requests.delete(f"{local.sandbox_url}/_sandbox/faults", timeout=10)


def pay(local, attempt_id: str, **extra) -> dict:
    response = requests.post(f"{local.sandbox_url}/_sandbox/pay", json={"out_trade_no": attempt_id, **extra}, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json()["order"])


def arm(local, fault: str, **options) -> None:
    response = requests.post(f"{local.sandbox_url}/_sandbox/faults", json={"fault": fault, **options}, timeout=10)
    assert response.status_code == 200, response.text


def deliveries(local, attempt_id: str) -> list[dict]:
    answer = requests.get(f"{local.sandbox_url}/_sandbox/deliveries", params={"out_trade_no": attempt_id}, timeout=10)
    return list(answer.json()["attempts"])


def status_of(merchant, payment: dict) -> str:
    return str(merchant.get(f"/v1/payments/{payment['id']}")["status"])


def make_sync_due(key: dict[str, str]) -> None:
    client("dynamodb").update_item(
        TableName=state_repo.state_table(), Key=to_item(key), UpdateExpression="SET sync_due_at = :past",
        ExpressionAttributeValues={":past": {"S": iso(utcnow() - timedelta(seconds=1))}})


def refund(merchant, payment: dict, amount: int, number: str) -> str:
    response = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                             {"amount": amount, "merchant_refund_no": number, "reason": "test"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def signed_notify(key: AlipayKey, fields: dict[str, str]) -> bytes:
    """A notify signed the way Alipay signs payment notifies (V1: sign and sign_type left out)."""
    return urlencode({**fields, "sign": key.sign(canonical(fields, ("sign", "sign_type")))}).encode()


def post_notify(stack, account_id: str, body: bytes) -> requests.Response:
    return requests.post(f"{stack.api_url}/callbacks/alipay/{account_id}", data=body, timeout=10,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def test_qr_payment_from_creation_to_full_refund(stack, alipay, merchant, drain):
    payment = merchant.create_payment(method="alipay.qr", amount=8888, description="Green tea")
    assert payment["status"] == "pending" and payment["action"]["type"] == "qr_code"
    assert payment["action"]["qr_code"].startswith(f"{alipay.sandbox_url}/qr/")
    scanned = requests.get(payment["action"]["qr_code"], timeout=10)  # the payer scans: the trade now exists
    assert scanned.status_code == 200 and "88.88" in scanned.text

    pay(alipay, payment["attempt_id"])
    paid = wait_for(lambda: (p := merchant.get(f"/v1/payments/{payment['id']}"))["status"] == "succeeded" and p)
    assert paid["amount_captured"] == 8888
    # The hub answered exactly "success" (a first try that timed out on a loaded machine is retried and deduped).
    answered = wait_for(lambda: [d for d in deliveries(alipay, payment["attempt_id"]) if d["delivered"]])
    assert answered[0]["status_code"] == 200
    drain()
    assert wait_for(lambda: "payment.succeeded" in stack.receiver.types_for(payment["id"]))

    partial = refund(merchant, payment, 888, "r1")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{partial}")["status"] == "succeeded", timeout_s=15)
    rest = refund(merchant, payment, 8000, "r2")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{rest}")["status"] == "succeeded", timeout_s=15)
    drain()
    assert wait_for(lambda: "refund.succeeded" in stack.receiver.types_for(rest))

    # Alipay now reports the trade TRADE_CLOSED (fully refunded) in the refund's notify: it must not close anything.
    closed = wait_for(lambda: [d for d in deliveries(alipay, payment["attempt_id"])
                               if d["trade_status"] == "TRADE_CLOSED" and d["delivered"]], timeout_s=10)
    assert closed[0]["event_type"] == "refund"
    after = merchant.get(f"/v1/payments/{payment['id']}")
    assert (after["status"], after["amount_refunded"], after["amount_refund_pending"]) == ("succeeded", 8888, 0)
    assert state_repo.get_attempt(payment["attempt_id"]).status == "succeeded"
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == 0
    assert all(d["delivered"] for d in deliveries(alipay, payment["attempt_id"]))


def test_page_payment_opened_in_the_browser(stack, alipay, merchant, drain):
    payment = merchant.create_payment(method="alipay.page", amount=1999, description="Tea set",
                                      return_url="https://shop.example/return")
    action = payment["action"]
    assert action["type"] == "redirect_url"
    signed = dict(parse_qsl(urlsplit(action["url"]).query))
    assert (signed["method"], signed["sign_type"]) == ("alipay.trade.page.pay", "RSA2")
    content = json.loads(signed["biz_content"])
    assert (content["out_trade_no"], content["total_amount"]) == (payment["attempt_id"], "19.99")
    # Before the payer opens the page, Alipay has no such trade: the payment stays pending, not closed.
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()
    assert status_of(merchant, payment) == "pending"

    cashier = requests.get(action["url"], timeout=10)
    assert cashier.status_code == 200 and "19.99" in cashier.text
    pay(alipay, payment["attempt_id"])
    wait_for(lambda: status_of(merchant, payment) == "succeeded")


def test_app_payment_paid_through_its_action(stack, alipay, merchant):
    payment = merchant.create_payment(method="alipay.app", amount=300, description="Refill")
    assert payment["action"]["type"] == "app_params"
    order = dict(parse_qsl(payment["action"]["order_string"]))
    assert order["method"] == "alipay.trade.app.pay" and order["sign"]
    # The payer's Alipay app submits the order string; /_sandbox/pay plays that step when given the action.
    pay(alipay, payment["attempt_id"], action=payment["action"])
    wait_for(lambda: status_of(merchant, payment) == "succeeded")


def test_duplicate_notifies_make_one_success(stack, alipay, merchant, drain):
    payment = merchant.create_payment(method="alipay.qr", amount=4321)
    arm(alipay, "duplicate_callback", copies=8)
    pay(alipay, payment["attempt_id"])
    wait_for(lambda: len([d for d in deliveries(alipay, payment["attempt_id"]) if d["delivered"]]) >= 8, timeout_s=20)
    drain()
    assert status_of(merchant, payment) == "succeeded"
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1
    events = [e for e in merchant.get("/v1/events")["data"] if e["data"]["id"] == payment["id"]]
    assert [e["type"] for e in events] == ["payment.succeeded"]


def test_out_of_order_notifies_are_harmless(stack, alipay, merchant, drain):
    """The payment's notify is held back until after its refund's: status sync learns the payment first."""
    payment = merchant.create_payment(method="alipay.qr", amount=650)
    arm(alipay, "out_of_order", delay_s=20)
    pay(alipay, payment["attempt_id"])
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()
    assert status_of(merchant, payment) == "succeeded"
    refund_id = refund(merchant, payment, 650, "ooo")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    late = wait_for(lambda: [d for d in deliveries(alipay, payment["attempt_id"])
                             if d["event_type"] == "payment" and d["delivered"]], timeout_s=15)
    assert late[0]["trade_status"] == "TRADE_SUCCESS"  # acknowledged, changes nothing
    drain()
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1 and len(ledger_repo.journals_for(refund_id)) == 1
    assert sorted(e["type"] for e in merchant.get("/v1/events")["data"]) == ["payment.succeeded", "refund.succeeded"]
    assert status_of(merchant, payment) == "succeeded"


@pytest.mark.parametrize("fault", ["forged", "tampered"])
def test_forged_and_tampered_notifies_are_rejected(stack, alipay, merchant, fault):
    payment = merchant.create_payment(method="alipay.qr", amount=777)
    arm(alipay, fault)
    pay(alipay, payment["attempt_id"])
    rows = wait_for(lambda: [d for d in deliveries(alipay, payment["attempt_id"]) if d["delivered"]]
                    and deliveries(alipay, payment["attempt_id"]), timeout_s=15)
    first = next(r for r in rows if r["attempt"] == 1)
    assert not first["delivered"] and first["status_code"] == 400  # answered "fail": Alipay sends again
    assert any(r["attempt"] >= 2 and r["delivered"] for r in rows)  # the genuine re-send is applied
    wait_for(lambda: status_of(merchant, payment) == "succeeded")


def test_a_notify_signed_by_anyone_else_changes_nothing(stack, alipay, merchant):
    payment = merchant.create_payment(method="alipay.qr", amount=555)
    fields = {"notify_type": "trade_status_sync", "notify_id": "forged-1", "notify_time": "2024-05-20 12:00:00",
              "app_id": "2021004100000001", "seller_id": "2088102000000001", "charset": "utf-8", "sign_type": "RSA2",
              "out_trade_no": payment["attempt_id"], "trade_no": "2024052022001400000000000001",
              "trade_status": "TRADE_SUCCESS", "total_amount": "5.55", "gmt_payment": "2024-05-20 12:00:00"}
    answer = post_notify(stack, alipay.account_id, signed_notify(AlipayKey.generate("RSA2"), fields))
    assert answer.text != "success"
    unsigned = post_notify(stack, alipay.account_id, urlencode(fields).encode())
    assert unsigned.text != "success"
    assert status_of(merchant, payment) == "pending" and state_repo.get_attempt(payment["attempt_id"]).status == "pending"


def test_trade_closed_after_payment_never_closes_the_attempt(stack, alipay, merchant):
    """A TRADE_CLOSED notify that shows the trade was paid (a full refund made elsewhere) keeps the payment paid."""
    payment = merchant.create_payment(method="alipay.qr", amount=1200)
    order = pay(alipay, payment["attempt_id"])
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    key = alipay.sandbox.alipay_keys["RSA2"]
    fields = {"notify_type": "trade_status_sync", "notify_id": "closed-after-refund", "notify_time": "2024-05-20 12:00:00",
              "app_id": "2021004100000001", "seller_id": "2088102000000001", "charset": "utf-8", "sign_type": "RSA2",
              "out_trade_no": payment["attempt_id"], "trade_no": order["trade_no"], "trade_status": "TRADE_CLOSED",
              "total_amount": "12.00", "gmt_payment": order["send_pay_date"], "gmt_close": order["send_pay_date"],
              "refund_fee": "12.00", "gmt_refund": order["send_pay_date"] + ".123"}
    assert post_notify(stack, alipay.account_id, signed_notify(key, fields)).text == "success"
    assert status_of(merchant, payment) == "succeeded"
    assert state_repo.get_attempt(payment["attempt_id"]).status == "succeeded"


def test_unpaid_trade_closed_by_the_payer_failing_closes_the_payment(stack, alipay, merchant, drain):
    payment = merchant.create_payment(method="alipay.qr", amount=400)
    pay(alipay, payment["attempt_id"], result="fail")
    wait_for(lambda: status_of(merchant, payment) == "closed")
    drain()
    assert wait_for(lambda: "payment.closed" in stack.receiver.types_for(payment["id"]))


def test_lost_notify_is_recovered_by_a_query_and_close_of_a_paid_trade_is_refused(stack, alipay, merchant, drain):
    payment = merchant.create_payment(method="alipay.qr", amount=901)
    arm(alipay, "no_callback")
    pay(alipay, payment["attempt_id"])
    assert status_of(merchant, payment) == "pending"
    make_sync_due(records.attempt_key(payment["attempt_id"]))
    drain()
    assert status_of(merchant, payment) == "succeeded"
    unpaid = merchant.create_payment(method="alipay.qr", amount=902)
    closed = merchant.call("POST", f"/v1/payments/{unpaid['id']}/close")
    assert closed.status_code == 200, closed.text
    assert status_of(merchant, unpaid) == "closed"


def test_a_new_account_goes_live_by_configuration_alone(stack, alipay, merchant, drain):
    second = register(alipay.sandbox_url, account_id="alipay-second", sign_type="SM2", appid="2021004100000002",
                      merchant_id="2088102000000002", priority=1)
    config_repo.put_channel_account(*second)
    try:
        payment = merchant.create_payment(method="alipay.qr", amount=321)
        assert state_repo.get_attempt(payment["attempt_id"]).account_id == "alipay-second"
        order = pay(alipay, payment["attempt_id"], app_id="2021004100000002")
        assert order["app_id"] == "2021004100000002"
        wait_for(lambda: status_of(merchant, payment) == "succeeded")  # an SM2-signed notify, verified
        refund_id = refund(merchant, payment, 321, "sm2")
        drain()
        wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    finally:
        config_repo.put_channel_account(second[0].model_copy(update={"enabled": False}), None)
    after = merchant.create_payment(method="alipay.qr", amount=322)
    assert state_repo.get_attempt(after["attempt_id"]).account_id == alipay.account_id


def test_alipay_key_rotation_with_overlap(stack, merchant, drain):
    """Alipay replaces its key: notifies signed with the new key fail until the account lists it next to the
    old one; then both verify; once the old key is removed, what it signs is refused."""
    box = AlipaySandbox(retry_scale=0.002)
    url = box.start()
    config, secrets = register(url, account_id="alipay-rotation", appid="2021004100000009",
                               merchant_id="2088102000000009", priority=1)
    config_repo.put_channel_account(config, secrets)
    try:
        payment = merchant.create_payment(method="alipay.qr", amount=1000)
        old_key = box.alipay_keys["RSA2"]
        rotated = requests.post(f"{url}/_sandbox/alipay-keys/rotate", json={"sign_type": "RSA2"}, timeout=10).json()
        new_id, new_key = rotated["RSA2"]["alipay_key_id"], rotated["RSA2"]["alipay_public_key"]
        requests.post(f"{url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]}, timeout=10)
        wait_for(lambda: any(not d["delivered"] for d in requests.get(f"{url}/_sandbox/deliveries", timeout=10).json()[
            "attempts"]), timeout_s=10)
        assert status_of(merchant, payment) == "pending"  # signed by a key the account does not list yet

        both = {**secrets["alipay_public_keys"], new_id: new_key}
        config_repo.put_channel_account(config, {**secrets, "alipay_public_keys": both})
        wait_for(lambda: status_of(merchant, payment) == "succeeded", timeout_s=15)  # Alipay's re-send verifies

        fields = {"notify_type": "trade_status_sync", "notify_id": "old-key", "notify_time": "2024-05-20 12:00:00",
                  "app_id": "2021004100000009", "seller_id": "2088102000000009", "charset": "utf-8",
                  "sign_type": "RSA2", "out_trade_no": payment["attempt_id"], "trade_no": "2024052022001400000000000009",
                  "trade_status": "TRADE_SUCCESS", "total_amount": "10.00", "gmt_payment": "2024-05-20 12:00:00"}
        assert post_notify(stack, "alipay-rotation", signed_notify(old_key, fields)).text == "success"  # overlap
        config_repo.put_channel_account(config, {**secrets, "alipay_public_keys": {new_id: new_key}})
        assert post_notify(stack, "alipay-rotation", signed_notify(old_key, fields)).text != "success"
        assert post_notify(stack, "alipay-rotation", signed_notify(box.alipay_keys["RSA2"], fields)).text == "success"
    finally:
        config_repo.put_channel_account(config.model_copy(update={"enabled": False}), None)
        box.stop()


def test_statement_of_the_day_lists_what_moved(stack, alipay, merchant, drain):
    from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary
    from chalicelib.channels.registry import adapter

    payment = merchant.create_payment(method="alipay.qr", amount=2500)
    pay(alipay, payment["attempt_id"])
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    refund_id = refund(merchant, payment, 500, "st")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    day = (datetime.now(UTC) + BEIJING_OFFSET).date().isoformat()
    account = config_repo.channel_account(alipay.account_id)
    channel = adapter("alipay")
    items = list(channel.parse_statement(account, channel.fetch_statement(account, day)))
    rows = {(r.kind, r.object_id): r for r in items if isinstance(r, StatementRow)}
    assert rows[(StatementKind.PAYMENT, payment["attempt_id"])].amount.minor == 2500
    assert rows[(StatementKind.REFUND, refund_id)].amount.minor == 500
    assert rows[(StatementKind.REFUND, refund_id)].attempt_id == payment["attempt_id"]
    assert isinstance(items[-1], StatementSummary)


def test_refund_queries_find_the_trade_from_the_hubs_records(stack, alipay, merchant, drain):
    """Alipay's refund query needs the trade: the adapter looks the refund's attempt up in the hub's records; a
    repeated refund request (same out_request_no) moves no money and is settled by that query."""
    from chalicelib.channels.base import RefundOutcome, RefundRequest
    from chalicelib.channels.registry import adapter
    from chalicelib.domain.money import Money

    payment = merchant.create_payment(method="alipay.qr", amount=700)
    pay(alipay, payment["attempt_id"])
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    refund_id = refund(merchant, payment, 300, "q1")
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    account = config_repo.channel_account(alipay.account_id)
    channel = adapter("alipay")
    found = channel.query_refund(account, refund_id, Money(300, "CNY"))
    assert (found.outcome, found.amount) == (RefundOutcome.SUCCEEDED, Money(300, "CNY"))
    assert channel.query_refund(account, "re_not_ours", Money(300, "CNY")).outcome is RefundOutcome.NOT_FOUND
    again = channel.refund(account, RefundRequest(refund_id=refund_id, attempt_id=payment["attempt_id"],
                                                  channel_transaction_id=None, amount=Money(300, "CNY"),
                                                  attempt_amount=Money(700, "CNY"), reason=None, notify_url=""))
    assert again.outcome is RefundOutcome.SUCCEEDED
    order = requests.get(f"{alipay.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()["order"]
    assert order["refunded_fen"] == 300 and len(order["refunds"]) == 1
