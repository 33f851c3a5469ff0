"""A Stripe card payment's whole life over HTTP: create (3-D Secure redirect or Stripe.js params) -> the payer
at the sandbox -> confirm -> signed webhook -> merchant webhook -> refund -> refund webhook; duplicates, order
and forgeries harmless; a second account goes live by configuration alone."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
import requests

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ledger import merchant_payable_account
from chalicelib.storage import config_repo, ledger_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from tests.helpers import wait_for

RETURN_URL = "https://shop.example/stripe/return"


@pytest.fixture(scope="module")
def stripe(channel_account):
    return channel_account("stripe")


@pytest.fixture(autouse=True)
def clear_faults(stripe):
    yield
    requests.delete(f"{stripe.sandbox_url}/_sandbox/faults", timeout=10)


def sandbox(stripe, method: str, path: str, body: dict | None = None) -> requests.Response:
    return requests.request(method, f"{stripe.sandbox_url}{path}", json=body, timeout=10)


def pay(stripe, attempt_id: str, result: str = "success") -> dict:
    answer = sandbox(stripe, "POST", "/_sandbox/pay", {"out_trade_no": attempt_id, "result": result})
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["payment_intent"])


def arm(stripe, fault: str, **options) -> None:
    answer = sandbox(stripe, "POST", "/_sandbox/faults", {"fault": fault, **options})
    assert answer.status_code == 200, answer.text


def deliveries(stripe, attempt_id: str, event_type: str) -> list[dict]:
    answer = requests.get(f"{stripe.sandbox_url}/_sandbox/deliveries",
                          params={"out_trade_no": attempt_id, "event_type": event_type}, timeout=10).json()
    return list(answer["attempts"])


def card_payment(merchant, **overrides) -> dict:
    return merchant.create_payment(**{"method": "stripe.card", "currency": "USD", "amount": 2500,
                                      "return_url": RETURN_URL, **overrides})


def make_sync_due(attempt_id: str) -> None:
    client("dynamodb").update_item(
        TableName=state_repo.state_table(), Key=to_item(records.attempt_key(attempt_id)),
        UpdateExpression="SET sync_due_at = :past",
        ExpressionAttributeValues={":past": {"S": iso(utcnow() - timedelta(seconds=1))}})


def status_of(merchant, payment: dict) -> str:
    return str(merchant.get(f"/v1/payments/{payment['id']}")["status"])


def test_three_ds_payment_from_creation_to_refund(stack, stripe, merchant, drain):
    payment = card_payment(merchant, payment_method="pm_card_threeDSecure2Required")
    assert payment["status"] == "pending"
    assert payment["action"]["type"] == "three_ds"
    assert payment["action"]["redirect_url"].startswith(f"{stripe.sandbox_url}/three_d_secure/authenticate/pi_")

    assert pay(stripe, payment["attempt_id"])["status"] == "requires_confirmation"  # the payer passed 3-D Secure
    confirmed = merchant.call("POST", f"/v1/payments/{payment['id']}/confirm", {})
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["status"], confirmed.json()["amount_captured"]) == ("succeeded", 2500)

    # Stripe's payment_intent.succeeded arrives after the confirm: verified, a duplicate, harmless.
    wait_for(lambda: any(d["status_code"] == 200 for d in deliveries(stripe, payment["attempt_id"],
                                                                          "payment_intent.succeeded")))
    drain()
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1

    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 700, "merchant_refund_no": "r1", "reason": "requested_by_customer"})
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    drain()
    assert wait_for(lambda: "refund.succeeded" in stack.receiver.types_for(refund_id))
    after = merchant.get(f"/v1/payments/{payment['id']}")
    assert (after["amount_refunded"], after["amount_refund_pending"]) == (700, 0)
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "USD")) == -(2500 - 700)
    order = sandbox(stripe, "GET", f"/_sandbox/orders/{payment['attempt_id']}").json()
    assert [(r["amount"], r["metadata"]["refund_id"]) for r in order["refunds"]] == [(700, refund_id)]


def test_stripe_js_payment_is_paid_by_webhook(stack, stripe, merchant, drain):
    payment = card_payment(merchant, amount=1200)
    assert payment["action"]["type"] == "app_params"
    assert payment["action"]["client_secret"].startswith("pi_")
    assert payment["action"]["publishable_key"].startswith("pk_test_")
    pay(stripe, payment["attempt_id"])
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    drain()
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])


def test_payer_back_from_3ds_without_the_merchant_is_confirmed_by_status_sync(stripe, merchant, drain):
    payment = card_payment(merchant, payment_method="pm_card_threeDSecure2Required", amount=3100)
    pay(stripe, payment["attempt_id"])
    make_sync_due(payment["attempt_id"])
    drain()
    done = merchant.get(f"/v1/payments/{payment['id']}")
    assert (done["status"], done["amount_captured"]) == ("succeeded", 3100)
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1


def test_failed_challenge_fails_the_payment(stack, stripe, merchant, drain):
    payment = card_payment(merchant, payment_method="pm_card_threeDSecure2Required")
    pay(stripe, payment["attempt_id"], result="fail")
    failed = wait_for(lambda: (p := merchant.get(f"/v1/payments/{payment['id']}"))["status"] == "failed" and p)
    assert failed["failure_reason"] == "requires_payment_method:payment_intent_authentication_failure"


def test_card_without_3ds_succeeds_at_creation_and_a_decline_writes_nothing(stripe, merchant):
    payment = card_payment(merchant, payment_method="pm_card_visa", amount=990)
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    declined = merchant.call("POST", "/v1/payments", {
        "merchant_order_no": "declined-1", "amount": 990, "currency": "USD", "description": "x",
        "method": "stripe.card", "payment_method": "pm_card_chargeDeclined", "return_url": RETURN_URL})
    assert declined.status_code >= 400
    assert "declined" in declined.text
    assert merchant.call("GET", "/v1/payments?merchant_order_no=declined-1").status_code == 404


def test_duplicate_webhooks_make_one_success_one_journal_one_event(stack, stripe, merchant, drain):
    arm(stripe, "duplicate_callback", copies=8, event_type="payment_intent.succeeded")
    payment = card_payment(merchant, amount=4321)
    pay(stripe, payment["attempt_id"])
    wait_for(lambda: len([d for d in deliveries(stripe, payment["attempt_id"], "payment_intent.succeeded")
                          if d["delivered"]]) >= 8, timeout_s=20)
    drain()
    assert status_of(merchant, payment) == "succeeded"
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])


def test_out_of_order_webhooks_are_harmless(stack, stripe, merchant, drain):
    arm(stripe, "out_of_order", delay_s=20)
    payment = card_payment(merchant, amount=1500, payment_method="pm_card_visa")
    attempt = payment["attempt_id"]
    make_sync_due(attempt)  # the success webhook is held back: status sync learns of it instead
    drain()
    assert status_of(merchant, payment) == "succeeded"
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 1500, "merchant_refund_no": "o"})
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund.json()['id']}")["status"] == "succeeded", timeout_s=15)
    # The held payment_intent.succeeded went out after the refund's events, and changed nothing.
    wait_for(lambda: any(d["delivered"] for d in deliveries(stripe, attempt, "payment_intent.succeeded")))
    drain()
    final = merchant.get(f"/v1/payments/{payment['id']}")
    assert (final["status"], final["amount_refunded"]) == ("succeeded", 1500)
    assert len(ledger_repo.journals_for(attempt)) == 1
    assert stack.receiver.types_for(payment["id"]).count("payment.succeeded") == 1


def test_forged_webhooks_are_rejected_and_change_nothing(stack, stripe, merchant, drain, caplog):
    payment = card_payment(merchant, amount=800)
    forged = {"id": "evt_forged", "object": "event", "type": "payment_intent.succeeded", "livemode": False,
              "created": int(time.time()), "data": {"object": {
                  "id": "pi_forged", "object": "payment_intent", "amount": 800, "currency": "usd",
                  "status": "succeeded", "metadata": {"attempt_id": payment["attempt_id"]}}}}
    body = json.dumps(forged).encode()
    stamp = int(time.time())
    signature = hmac.new(b"whsec_attacker", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    answer = requests.post(f"{stack.api_url}/callbacks/stripe/{stripe.account_id}", data=body, timeout=10, headers={
        "Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={signature}"})
    assert answer.status_code == 400
    assert status_of(merchant, payment) == "pending"

    arm(stripe, "forged", event_type="payment_intent.succeeded")
    pay(stripe, payment["attempt_id"])
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    # The hub records the success while answering; the sandbox logs the delivery once the answer is back.
    first, *rest = wait_for(lambda: (found := deliveries(stripe, payment["attempt_id"], "payment_intent.succeeded"))
                            and found[-1]["status_code"] == 200 and found)
    assert (first["status_code"], first["fault"]) == (400, "forged")
    assert rest
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1


def test_a_second_account_goes_live_by_configuration_alone(stack, channel_account, merchant, drain):
    second = channel_account("stripe", account_id="stripe-second", priority=1)
    try:
        payment = card_payment(merchant, amount=2222)
        attempt = state_repo.get_attempt(payment["attempt_id"])
        assert attempt is not None and attempt.account_id == "stripe-second"
        pay(second, payment["attempt_id"])
        wait_for(lambda: status_of(merchant, payment) == "succeeded")
        drain()
        assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])
    finally:
        account = config_repo.channel_account("stripe-second")
        assert account is not None
        config_repo.put_channel_account(account.config.model_copy(update={"enabled": False}), None)


def test_a_stripe_js_decline_leaves_the_payment_open_for_another_card(stack, stripe, merchant, drain):
    """The payer's card is declined in Stripe.js: the intent still takes another card, so the payment stays pending
    (a FAILED here would turn the payer's second, successful card into a late success and a refund)."""
    payment = card_payment(merchant, amount=1900)
    declined = pay(stripe, payment["attempt_id"], result="fail")
    assert (declined["status"], declined["last_payment_error"]["code"]) == ("requires_payment_method", "card_declined")
    wait_for(lambda: any(d["status_code"] == 200 for d in deliveries(stripe, payment["attempt_id"],
                                                                          "payment_intent.payment_failed")))
    make_sync_due(payment["attempt_id"])
    drain()
    assert status_of(merchant, payment) == "pending"

    pay(stripe, payment["attempt_id"])  # another card
    wait_for(lambda: status_of(merchant, payment) == "succeeded")
    drain()
    final = merchant.get(f"/v1/payments/{payment['id']}")
    assert (final["amount_captured"], final["amount_refunded"], final["amount_refund_pending"]) == (1900, 0, 0)
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])


def test_closing_a_payment_cancels_its_live_intent_at_stripe(stripe, merchant):
    """Close reads the intent by its id (no search, which may not list a new intent yet) and cancels it: only then
    is the payment closed, and nobody can pay it any more."""
    payment = card_payment(merchant, amount=2100)
    pay(stripe, payment["attempt_id"], result="fail")  # declined, still payable with another card
    closed = merchant.call("POST", f"/v1/payments/{payment['id']}/close", {})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    order = sandbox(stripe, "GET", f"/_sandbox/orders/{payment['attempt_id']}").json()
    assert order["payment_intent"]["status"] == "canceled"
    again = sandbox(stripe, "POST", "/_sandbox/pay", {"out_trade_no": payment["attempt_id"], "result": "success"})
    assert again.status_code >= 400  # the payer cannot pay a cancelled intent
