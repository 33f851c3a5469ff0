"""``stripe.checkout``: Stripe's own hosted payment page (a Checkout Session) over HTTP. Create -> the payer pays on
the sandbox's page at the session's url -> the signed ``checkout.session.completed`` webhook -> succeeded ->
refund through the intent the session made; the create is idempotent at Stripe; a close expires the session (and
finds a paid one paid); the hosted checkout's switch away from an unpaid session expires it at Stripe."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from typing import Any

import pytest
import requests

from chalicelib.domain.ledger import merchant_payable_account
from chalicelib.storage import ledger_repo, state_repo
from tests.channel_money import taken
from tests.helpers import wait_for

RETURN_URL = "https://shop.example/stripe/return"


@pytest.fixture(scope="module")
def stripe(channel_account):
    return channel_account("stripe")


@pytest.fixture(autouse=True)
def clear_faults(stripe):
    yield
    requests.delete(f"{stripe.sandbox_url}/_sandbox/faults", timeout=10)


def checkout_payment(merchant: Any, **overrides: Any) -> dict[str, Any]:
    return dict(merchant.create_payment(**{"method": "stripe.checkout", "currency": "USD", "amount": 2500,
                                           "return_url": RETURN_URL, **overrides}))


def session_id_of(payment: dict[str, Any]) -> str:
    return str(payment["action"]["url"]).rsplit("/", 1)[-1]


def session_at_sandbox(stripe: Any, session_id: str) -> Any:
    found = stripe.sandbox.checkout.for_payer(session_id)
    assert found is not None, session_id
    return found


def pay_on_stripes_page(url: str) -> requests.Response:
    """The payer on Stripe's page: it shows the amount; "Pay" sends the browser back to the success_url."""
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "Pay" in page.text
    return requests.post(url, data={"result": "pay"}, allow_redirects=False, timeout=10)


def deliveries(stripe: Any, attempt_id: str, event_type: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{stripe.sandbox_url}/_sandbox/deliveries",
                          params={"out_trade_no": attempt_id, "event_type": event_type}, timeout=10).json()
    return list(answer["attempts"])


def status_of(merchant: Any, payment: dict[str, Any]) -> str:
    return str(merchant.get(f"/v1/payments/{payment['id']}")["status"])


def test_checkout_session_from_creation_to_refund(stack, stripe, merchant, drain):
    payment = checkout_payment(merchant)
    assert payment["status"] == "pending"
    assert payment["action"]["type"] == "redirect_url"
    assert re.fullmatch(rf"{re.escape(stripe.sandbox_url)}/c/pay/cs_test_\w+", payment["action"]["url"])
    session = session_at_sandbox(stripe, session_id_of(payment))
    assert (session.amount_total, session.currency, session.client_reference_id) == (2500, "usd", payment["attempt_id"])
    assert session.intent_metadata == {"attempt_id": payment["attempt_id"]}

    # Only checkout.session.completed may tell the hub: the intent's own event is held back.
    requests.post(f"{stripe.sandbox_url}/_sandbox/faults", json={"fault": "no_callback",
                                                                "event_type": "payment_intent.succeeded"}, timeout=10)
    back = pay_on_stripes_page(payment["action"]["url"])
    assert (back.status_code, back.headers["Location"]) == (303, RETURN_URL)
    wait_for(lambda: status_of(merchant, payment) == "succeeded", timeout_s=15)
    assert [d["status_code"] for d in deliveries(stripe, payment["attempt_id"], "checkout.session.completed")] == [200]
    paid = merchant.get(f"/v1/payments/{payment['id']}")
    assert paid["amount_captured"] == 2500
    drain()
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1

    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 700, "merchant_refund_no": "r1", "reason": "requested_by_customer"})
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund_id}")["status"] == "succeeded", timeout_s=15)
    after = merchant.get(f"/v1/payments/{payment['id']}")
    assert (after["amount_refunded"], after["amount_refund_pending"]) == (700, 0)
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "USD")) == -(2500 - 700)
    intent_id = session_at_sandbox(stripe, session_id_of(payment)).payment_intent
    assert taken("stripe", stripe.sandbox, 2500)[payment["attempt_id"]] == (2500, 700)
    assert [r.payment_intent for r in stripe.sandbox.state.refunds.values()
            if r.metadata.get("refund_id") == refund_id] == [intent_id]


def test_the_session_is_created_under_the_attempts_idempotency_key(stripe, merchant):
    payment = checkout_payment(merchant, amount=1300)
    log = requests.get(f"{stripe.sandbox_url}/_sandbox/requests", timeout=10).json()
    entries = log["requests"] if isinstance(log, dict) else log
    creates = [e for e in entries if e["path"] == "/v1/checkout/sessions" and e["method"] == "POST"
               and e["idempotency_key"] == f"payhub:{payment['attempt_id']}:checkout"]
    assert len(creates) == 1 and creates[0]["status"] == 200


def test_a_forged_session_completed_event_is_rejected(stack, stripe, merchant):
    payment = checkout_payment(merchant, amount=800)
    forged = {"id": "evt_forged_cs", "object": "event", "type": "checkout.session.completed", "livemode": False,
              "created": int(time.time()), "data": {"object": {
                  "id": session_id_of(payment), "object": "checkout.session", "amount_total": 800, "currency": "usd",
                  "status": "complete", "payment_status": "paid", "payment_intent": "pi_forged",
                  "metadata": {"attempt_id": payment["attempt_id"]}}}}
    body = json.dumps(forged).encode()
    stamp = int(time.time())
    signature = hmac.new(b"whsec_attacker", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    answer = requests.post(f"{stack.api_url}/callbacks/stripe/{stripe.account_id}", data=body, timeout=10, headers={
        "Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={signature}"})
    assert answer.status_code == 400
    assert status_of(merchant, payment) == "pending"


def test_closing_expires_an_open_session_and_finds_a_paid_one_paid(stripe, merchant):
    from chalicelib.service import status_sync

    unpaid = checkout_payment(merchant, amount=1400)
    status_sync.close_attempt(unpaid["attempt_id"], source="test")
    assert status_of(merchant, unpaid) == "closed"
    assert session_at_sandbox(stripe, session_id_of(unpaid)).status == "expired"
    assert requests.post(unpaid["action"]["url"], data={"result": "pay"}, allow_redirects=False,
                         timeout=10).status_code == 409  # nobody can pay it any more

    paid = checkout_payment(merchant, amount=1500)
    for event_type in ("payment_intent.succeeded", "checkout.session.completed"):  # the hub hears nothing
        requests.post(f"{stripe.sandbox_url}/_sandbox/faults", json={"fault": "no_callback", "event_type": event_type},
                      timeout=10)
    assert pay_on_stripes_page(paid["action"]["url"]).status_code == 303
    status_sync.close_attempt(paid["attempt_id"], source="test")  # the expire finds it paid: the success stands
    assert session_at_sandbox(stripe, session_id_of(paid)).status == "complete"
    assert status_of(merchant, paid) == "succeeded"


def test_switching_away_from_an_unpaid_stripe_session_expires_it(stack, stripe, merchant):
    from tests.e2e.test_checkout_sessions import Payer

    body = {"merchant_order_no": f"cs{uuid.uuid4().hex[:20]}", "amount": 2700, "currency": "CNY",
            "description": "Jasmine tea", "allowed_methods": ["stripe.checkout", "wechat.native"],
            "return_url": "https://shop.example/done", "locale": "en"}
    created = merchant.call("POST", "/v1/checkout_sessions", body)
    assert created.status_code == 201, created.text
    session = created.json()
    payer = Payer(session["url"])
    page = payer.page()
    assert 'value="stripe.checkout"' in page.text
    payer.choose("stripe.checkout")
    first = merchant.get(f"/v1/payments/{session['payment_id']}")
    stripe_url = first["action"]["url"]
    assert stripe_url.startswith(f"{stripe.sandbox_url}/c/pay/cs_test_") and stripe_url in payer.page().text
    payer.choose("wechat.native")  # the payer changes their mind before paying at Stripe
    second = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    assert second != first["attempt_id"]
    old = state_repo.get_attempt(first["attempt_id"])
    assert old is not None and str(old.status) == "closed"
    # Stripe's books: the session is expired, cannot be paid, and no money was taken for it.
    assert session_at_sandbox(stripe, session_id_of(first)).status == "expired"
    assert requests.post(stripe_url, data={"result": "pay"}, allow_redirects=False, timeout=10).status_code == 409
    assert first["attempt_id"] not in taken("stripe", stripe.sandbox, 2700)


def test_stripe_card_is_still_refused_on_the_hosted_page(merchant):
    body = {"merchant_order_no": f"cs{uuid.uuid4().hex[:20]}", "amount": 2700, "currency": "USD",
            "description": "Tea", "allowed_methods": ["stripe.checkout", "stripe.card"],
            "return_url": "https://shop.example/done"}
    answer = merchant.call("POST", "/v1/checkout_sessions", body)
    assert answer.status_code == 400, answer.text
    assert "allowed_methods.1" in answer.text and "stripe.card" in answer.text


def test_the_sandbox_control_pay_pays_an_open_session_like_the_payer(stripe, merchant):
    """``payhub sandbox pay`` (and the tests of other parts) pay by attempt id; for a session that is the page's Pay."""
    payment = checkout_payment(merchant, amount=1600)
    paid = requests.post(f"{stripe.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]}, timeout=10)
    assert paid.status_code == 200, paid.text
    assert paid.json()["checkout_session"]["status"] == "complete"
    wait_for(lambda: status_of(merchant, payment) == "succeeded", timeout_s=15)
