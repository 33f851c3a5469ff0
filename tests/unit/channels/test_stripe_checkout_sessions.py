"""``stripe.checkout`` through a fake transport: the Checkout Session create (form, key), its answer checked, the
session's states mapped, close = expire (a paid one answers ORDERPAID), and the signed ``checkout.session.*`` events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from stripe_kit import API, NOW, WHSEC, FakeTransport, callback, error, event, form, intent, make_account, ok
from stripe_kit import stripe_signature as signed

from chalicelib.channels.base import CreateRequest, Payer, PaymentOutcome
from chalicelib.channels.stripe import StripeAdapter
from chalicelib.channels.stripe.checkout import create_params
from chalicelib.domain.errors import CallbackRejected, ChannelError, InvalidRequest
from chalicelib.domain.money import Money

SESSION_ID = "cs_test_a1KitSession0001"
PAGE = "https://checkout.stripe.example/c/pay/cs_test_a1KitSession0001"


def _create(**overrides: Any) -> CreateRequest:
    values: dict[str, Any] = {
        "attempt_id": "att_test1", "method": "stripe.checkout", "amount": Money(1000, "USD"),
        "description": "Green tea", "notify_url": "https://hub.example/callbacks/stripe/stripe-test",
        "expires_at": NOW + timedelta(minutes=10), "payer": Payer(), "return_url": "https://hub.example/back"}
    values.update(overrides)
    return CreateRequest(**values)


def session(status: str = "open", payment_status: str = "unpaid", *, attempt_id: str = "att_test1",
            **fields: Any) -> dict[str, Any]:
    return {"id": SESSION_ID, "object": "checkout.session", "amount_total": 1000, "currency": "usd",
            "status": status, "payment_status": payment_status, "metadata": {"attempt_id": attempt_id},
            "client_reference_id": attempt_id, "payment_intent": "pi_3PkitIntent000001" if status == "complete" else None,
            "url": PAGE if status == "open" else None, **fields}


def test_create_opens_a_session_under_the_attempts_key_and_redirects_to_it() -> None:
    transport = FakeTransport([ok(session())])
    result = StripeAdapter(transport).create(make_account(), _create())
    [sent] = transport.requests
    assert (sent.method, sent.url) == ("POST", f"{API}/v1/checkout/sessions")
    assert sent.headers["Idempotency-Key"] == "payhub:att_test1:checkout"
    body = form(sent)
    assert {k: body[k] for k in ("mode", "line_items[0][price_data][unit_amount]", "line_items[0][price_data][currency]",
                                 "line_items[0][quantity]", "success_url", "cancel_url", "client_reference_id",
                                 "metadata[attempt_id]", "payment_intent_data[metadata][attempt_id]")} == {
        "mode": "payment", "line_items[0][price_data][unit_amount]": "1000",
        "line_items[0][price_data][currency]": "usd", "line_items[0][quantity]": "1",
        "success_url": "https://hub.example/back", "cancel_url": "https://hub.example/back",
        "client_reference_id": "att_test1", "metadata[attempt_id]": "att_test1",
        "payment_intent_data[metadata][attempt_id]": "att_test1"}
    # A 10-minute attempt still asks for the shortest expiry Stripe allows (30 minutes); the hub expires it itself.
    assert int(body["expires_at"]) >= int((NOW + timedelta(minutes=30)).timestamp())
    assert (result.channel_order_ref, result.action.type, result.action.params["url"]) == (SESSION_ID, "redirect_url",
                                                                                           PAGE)


def test_expiry_is_kept_within_what_stripe_accepts() -> None:
    long = create_params(_create(expires_at=NOW + timedelta(days=3)), now=NOW)
    assert long["expires_at"] == int((NOW + timedelta(hours=23, minutes=59)).timestamp())
    within = create_params(_create(expires_at=NOW + timedelta(hours=2)), now=NOW)
    assert within["expires_at"] == int((NOW + timedelta(hours=2)).timestamp())


@pytest.mark.parametrize(("answer", "code"), [
    (session(attempt_id="att_other"), "ATTEMPT_MISMATCH"),
    (session(amount_total=999), "AMOUNT_MISMATCH"),
])
def test_a_session_answer_about_something_else_is_refused(answer: dict[str, Any], code: str) -> None:
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport([ok(answer)])).create(make_account(), _create())
    assert caught.value.channel_code == code


@pytest.mark.parametrize(("change", "param"), [({"return_url": None}, "return_url"),
                                               ({"payment_method": "pm_card_visa"}, "payment_method")])
def test_bad_create_input_names_the_field(change: dict[str, Any], param: str) -> None:
    transport = FakeTransport()
    with pytest.raises(InvalidRequest) as caught:
        StripeAdapter(transport).create(make_account(), _create(**change))
    assert caught.value.param == param and not transport.requests


@pytest.mark.parametrize(("answer", "outcome"), [
    (session("open"), PaymentOutcome.PENDING),
    (session("expired"), PaymentOutcome.CLOSED),
])
def test_an_unpaid_session_is_read_by_its_id(answer: dict[str, Any], outcome: PaymentOutcome) -> None:
    transport = FakeTransport([ok(answer)])
    status = StripeAdapter(transport).query(make_account(), "att_test1", Money(1000, "USD"), channel_order_ref=SESSION_ID)
    assert status.outcome is outcome
    assert transport.requests[0].url == f"{API}/v1/checkout/sessions/{SESSION_ID}"


def test_a_paid_session_answers_with_its_intent() -> None:
    transport = FakeTransport([ok(session("complete", "paid")), ok(intent("succeeded"))])
    status = StripeAdapter(transport).query(make_account(), "att_test1", Money(1000, "USD"), channel_order_ref=SESSION_ID)
    assert (status.outcome, status.channel_transaction_id) == (PaymentOutcome.SUCCEEDED, "pi_3PkitIntent000001")
    assert transport.requests[1].url.startswith(f"{API}/v1/payment_intents/pi_3PkitIntent000001")


def test_close_expires_an_open_session() -> None:
    transport = FakeTransport([ok(session("open")), ok(session("expired"))])
    StripeAdapter(transport).close(make_account(), "att_test1", channel_order_ref=SESSION_ID)
    expire = transport.requests[1]
    assert (expire.method, expire.url) == ("POST", f"{API}/v1/checkout/sessions/{SESSION_ID}/expire")
    assert expire.headers["Idempotency-Key"] == "payhub:att_test1:expire"


def test_close_of_a_paid_session_answers_paid_without_expiring() -> None:
    transport = FakeTransport([ok(session("complete", "paid"))])
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(transport).close(make_account(), "att_test1", channel_order_ref=SESSION_ID)
    assert caught.value.channel_code == "ORDERPAID" and len(transport.requests) == 1


def test_close_racing_the_payer_answers_paid() -> None:
    """Read open, then the payer pays, then the expire is refused: the session is read again and found paid."""
    transport = FakeTransport([ok(session("open")), error(400, "invalid_request_error", "checkout_session_unexpected_state"),
                               ok(session("complete", "paid"))])
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(transport).close(make_account(), "att_test1", channel_order_ref=SESSION_ID)
    assert caught.value.channel_code == "ORDERPAID"


def test_signed_completed_event_is_a_success_with_the_intent() -> None:
    body = event("checkout.session.completed", session("complete", "paid"))
    [note] = StripeAdapter(FakeTransport()).verify_and_parse_notification(make_account(), callback(body, signed(body, [WHSEC])))
    assert (note.object_id, note.payment.outcome, note.payment.channel_transaction_id) == (
        "att_test1", PaymentOutcome.SUCCEEDED, "pi_3PkitIntent000001")
    assert note.payment.amount == Money(1000, "USD")


def test_expired_event_closes_and_a_foreign_session_is_ignored() -> None:
    body = event("checkout.session.expired", session("expired"))
    [note] = StripeAdapter(FakeTransport()).verify_and_parse_notification(make_account(), callback(body, signed(body, [WHSEC])))
    assert note.payment.outcome is PaymentOutcome.CLOSED
    foreign = event("checkout.session.completed", {**session("complete", "paid"), "metadata": {}})
    assert StripeAdapter(FakeTransport()).verify_and_parse_notification(
        make_account(), callback(foreign, signed(foreign, [WHSEC]))) == []


def test_a_tampered_completed_event_is_rejected() -> None:
    body = event("checkout.session.completed", session("complete", "paid"))
    header = signed(body, [WHSEC])
    with pytest.raises(CallbackRejected):
        StripeAdapter(FakeTransport()).verify_and_parse_notification(
            make_account(), callback(body.replace(b"1000", b"9000"), header))
