"""stripe-python (Stripe's official SDK) as the client of the Stripe sandbox, with its own default API version.

Create, retrieve, pay, cancel (Stripe's close), refund and refund retrieve go through ``StripeClient``; the
sandbox's webhooks are checked with ``stripe.Webhook.construct_event``, the function Stripe's docs tell merchants
to use. Only the API host is changed (``base_addresses``), which the SDK offers for exactly this.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe

from sandbox.stripe.server import StripeSandbox
from tests.conformance.receiver import Callback, Receiver


@pytest.fixture(scope="module")
def sandbox() -> Iterator[StripeSandbox]:
    box = StripeSandbox(retry_scale=0.01, refund_settle_s=0.05, event_delay_s=0.0)
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    box = Receiver((200, b""))
    yield box
    box.stop()


@pytest.fixture
def account(sandbox: StripeSandbox, receiver: Receiver) -> dict[str, Any]:
    registered = requests.post(f"{sandbox.base_url}/_sandbox/merchants", json={}, timeout=5).json()
    client = stripe.StripeClient(registered["secret_key"], base_addresses={"api": sandbox.base_url},
                                 max_network_retries=0)
    path = f"/stripe/{registered['merchant_id']}"
    endpoint = client.v1.webhook_endpoints.create(params={"url": receiver.url + path, "enabled_events": ["*"]})
    return {"client": client, "path": path, "secret": endpoint.secret, "id": registered["merchant_id"]}


def events_of(receiver: Receiver, path: str, event_type: str, object_id: str) -> Callback:
    def match(callback: Callback) -> bool:
        event = json.loads(callback.body)
        return callback.path == path and event["type"] == event_type and event["data"]["object"]["id"] == object_id
    return receiver.wait_for(match)[0]


def test_the_sdks_default_api_version_is_accepted(sandbox: StripeSandbox, account: dict[str, Any]) -> None:
    account["client"].v1.payment_intents.create(params={"amount": 100, "currency": "usd"})
    sent = requests.get(f"{sandbox.base_url}/_sandbox/requests", timeout=5).json()["requests"]
    versions = {entry["stripe_version"] for entry in sent if entry["status"] == 200}
    assert stripe.api_version in versions


def test_create_retrieve_pay_refund_cancel_with_webhooks_verified_by_the_sdk(
        sandbox: StripeSandbox, receiver: Receiver, account: dict[str, Any]) -> None:
    client: stripe.StripeClient = account["client"]
    intent = client.v1.payment_intents.create(params={
        "amount": 2500, "currency": "eur", "metadata": {"attempt_id": "att_conf_stripe_1"}})
    assert intent.status == "requires_payment_method" and intent.amount == 2500
    assert client.v1.payment_intents.retrieve(intent.id).id == intent.id

    paid = requests.post(f"{sandbox.base_url}/_sandbox/pay", json={"out_trade_no": "att_conf_stripe_1"}, timeout=5)
    assert paid.status_code == 200
    intent = client.v1.payment_intents.retrieve(intent.id)
    assert intent.status == "succeeded" and intent.amount_received == 2500

    succeeded = events_of(receiver, account["path"], "payment_intent.succeeded", intent.id)
    event = stripe.Webhook.construct_event(succeeded.body, succeeded.headers["Stripe-Signature"], account["secret"])
    assert event.type == "payment_intent.succeeded" and event.data.object.id == intent.id

    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 700})
    assert refund.amount == 700 and refund.status == "pending"  # the sandbox settles refunds a moment later
    updated = events_of(receiver, account["path"], "refund.updated", refund.id)
    refund_event = stripe.Webhook.construct_event(updated.body, updated.headers["Stripe-Signature"], account["secret"])
    assert refund_event.data.object.id == refund.id and refund_event.data.object.status == "succeeded"
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"

    unpaid = client.v1.payment_intents.create(params={"amount": 900, "currency": "eur"})
    assert client.v1.payment_intents.cancel(unpaid.id).status == "canceled"
    canceled = events_of(receiver, account["path"], "payment_intent.canceled", unpaid.id)
    stripe.Webhook.construct_event(canceled.body, canceled.headers["Stripe-Signature"], account["secret"])


def test_the_sdk_refuses_a_tampered_or_foreign_webhook(sandbox: StripeSandbox, receiver: Receiver,
                                                       account: dict[str, Any]) -> None:
    client: stripe.StripeClient = account["client"]
    intent = client.v1.payment_intents.create(params={"amount": 400, "currency": "usd"})
    client.v1.payment_intents.cancel(intent.id)
    callback = events_of(receiver, account["path"], "payment_intent.canceled", intent.id)
    header = callback.headers["Stripe-Signature"]
    tampered = callback.body.replace(b'"amount":400', b'"amount":401')
    assert tampered != callback.body
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, header, account["secret"])
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(callback.body, header, "whsec_" + "0" * 32)


def test_an_unpublished_api_version_is_refused_as_stripe_does(sandbox: StripeSandbox, account: dict[str, Any]) -> None:
    client = stripe.StripeClient(account["client"]._requestor.api_key, base_addresses={"api": sandbox.base_url},
                                 stripe_version="2024-07-01", max_network_retries=0)
    with pytest.raises(stripe.InvalidRequestError, match="Invalid Stripe API version: 2024-07-01"):
        client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})


def test_checkout_sessions_through_the_sdk(sandbox: StripeSandbox, account: dict[str, Any],
                                           receiver: Receiver) -> None:
    """Create (idempotent under the SDK's key), retrieve, pay on the page, the signed completed event, expire."""
    client = account["client"]
    params: dict[str, Any] = {
        "mode": "payment", "success_url": "https://shop.example/ok?cs={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cart", "client_reference_id": "att_sdk1",
        "metadata": {"attempt_id": "att_sdk1"}, "payment_intent_data": {"metadata": {"attempt_id": "att_sdk1"}},
        "line_items": [{"quantity": 2, "price_data": {"currency": "usd", "unit_amount": 450,
                                                      "product_data": {"name": "Tea"}}}]}
    session = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "sdk-cs-1"})
    again = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "sdk-cs-1"})
    assert again.id == session.id and (session.amount_total, session.status, session.url is not None) == (900, "open", True)
    paid = requests.post(session.url, data={"result": "pay"}, allow_redirects=False, timeout=5)
    assert paid.headers["Location"] == f"https://shop.example/ok?cs={session.id}"
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert client.v1.payment_intents.retrieve(done.payment_intent).metadata["attempt_id"] == "att_sdk1"
    callback = events_of(receiver, account["path"], "checkout.session.completed", session.id)
    event = stripe.Webhook.construct_event(callback.body, callback.headers["Stripe-Signature"],
                                           account["secret"])
    assert event.data.object.payment_intent == done.payment_intent
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)  # only an open session can be expired
    other = client.v1.checkout.sessions.create(params={**params, "client_reference_id": "att_sdk2"})
    assert client.v1.checkout.sessions.expire(other.id).status == "expired"
