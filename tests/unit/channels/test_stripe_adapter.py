"""StripeAdapter through a fake transport: what is sent (form, key, version, idempotency keys), amounts in
Stripe's units, status mapping, errors, confirm/close/refund/query paths."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stripe_kit import (
    API,
    NOW,
    NOW_TS,
    SECRET_KEY,
    FakeTransport,
    error,
    form,
    intent,
    make_account,
    ok,
    query,
    refund,
)

from chalicelib.channels.base import (
    ConfirmRequest,
    CreateRequest,
    Payer,
    PaymentOutcome,
    RefundOutcome,
    RefundRequest,
)
from chalicelib.channels.stripe import StripeAdapter
from chalicelib.channels.stripe.amounts import (
    STRIPE_CURRENCIES,
    THREE_DECIMAL,
    WHOLE_TWO_DECIMAL,
    ZERO_DECIMAL,
    from_wire,
    stripe_exponent,
    to_wire,
)
from chalicelib.channels.stripe.client import encode_params
from chalicelib.channels.stripe.states import (
    INTENT_STATUSES,
    REFUND_STATUSES,
    payment_outcome,
    payment_status,
    refund_outcome,
)
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState
from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money, exponent


def _create(**overrides: Any) -> CreateRequest:
    values: dict[str, Any] = {
        "attempt_id": "att_test1", "method": "stripe.card", "amount": Money(1000, "USD"), "description": "Green tea",
        "notify_url": "https://hub.example/callbacks/stripe/stripe-test", "expires_at": NOW + timedelta(minutes=30),
        "payer": Payer(), "return_url": "https://shop.example/return",
    }
    values.update(overrides)
    return CreateRequest(**values)


def _headers_ok(request, *, post: bool) -> None:
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert request.headers["Stripe-Version"] == "2024-06-20"
    if post:
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert request.headers["Idempotency-Key"]
    else:
        assert "Idempotency-Key" not in request.headers and request.body == b""


# -- amounts ----------------------------------------------------------------------------------------------------


def test_stripe_exponents_differ_from_iso_where_stripe_says_so() -> None:
    assert [stripe_exponent(c) for c in ("USD", "JPY", "KRW", "BHD", "KWD", "ISK", "UGX")] == [2, 0, 0, 3, 3, 2, 2]
    assert to_wire(Money(500, "ISK")) == 50_000  # 500 krónur, sent as a two-decimal value
    assert to_wire(Money(500, "JPY")) == 500
    assert to_wire(Money(1230, "BHD")) == 1230
    with pytest.raises(ValueError, match="last"):
        to_wire(Money(1234, "KWD"))
    with pytest.raises(ValueError):
        to_wire(Money(100, "LYD"))  # not a Stripe presentment currency
    with pytest.raises(ValueError):
        from_wire(50_001, "isk")


@given(st.sampled_from(sorted(STRIPE_CURRENCIES)), st.integers(min_value=0, max_value=10**12))
def test_wire_conversion_round_trips_for_every_stripe_currency(currency: str, minor: int) -> None:
    money = Money(minor, currency)
    if currency in THREE_DECIMAL and minor % 10:
        with pytest.raises(ValueError):
            to_wire(money)
        return
    wire = to_wire(money)
    assert from_wire(wire, currency.lower()) == money
    # The wire amount always means the same major amount as the ISO minor units do.
    assert wire * 10 ** exponent(currency) == minor * 10 ** stripe_exponent(currency)
    if currency in ZERO_DECIMAL:
        assert wire == minor
    if currency in WHOLE_TWO_DECIMAL:
        assert wire % 100 == 0


@given(st.sampled_from(sorted(SUPPORTED_CURRENCIES)), st.integers(min_value=0, max_value=10**9))
def test_from_wire_never_invents_precision(currency: str, wire: int) -> None:
    if currency not in STRIPE_CURRENCIES:
        with pytest.raises(ValueError):
            from_wire(wire, currency.lower())
        return
    try:
        money = from_wire(wire, currency.lower())
    except ValueError:
        assert currency in WHOLE_TWO_DECIMAL and wire % 100
        return
    assert (currency in THREE_DECIMAL and wire % 10) or to_wire(money) == wire


@pytest.mark.parametrize("bad", [True, 1.5, "100", -1, None])
def test_from_wire_refuses_non_integers(bad: Any) -> None:
    with pytest.raises(ValueError):
        from_wire(bad, "usd")


# -- state mapping ----------------------------------------------------------------------------------------------


def test_intent_status_mapping_is_exhaustive_and_unknown_is_pending() -> None:
    documented = {"requires_payment_method", "requires_confirmation", "requires_action", "processing",
                  "requires_capture", "canceled", "succeeded"}
    assert set(INTENT_STATUSES) == documented
    assert payment_outcome("something_new") is PaymentOutcome.PENDING
    assert payment_outcome("requires_payment_method") is PaymentOutcome.PENDING
    # A decline the payer can retry in Stripe.js (automatic confirmation) is not a failure yet...
    assert payment_outcome("requires_payment_method", has_payment_error=True) is PaymentOutcome.PENDING
    # ...one only the hub could retry (manual confirmation) is, cancelled or not.
    assert payment_outcome("requires_payment_method", has_payment_error=True,
                           manual_confirmation=True) is PaymentOutcome.FAILED
    assert payment_outcome("canceled", has_payment_error=True, manual_confirmation=True) is PaymentOutcome.FAILED
    assert payment_outcome("canceled", has_payment_error=True) is PaymentOutcome.CLOSED
    assert payment_outcome("requires_payment_method", manual_confirmation=True) is PaymentOutcome.PENDING
    assert payment_outcome("requires_confirmation") is PaymentOutcome.REQUIRES_CONFIRMATION
    assert payment_outcome("succeeded") is PaymentOutcome.SUCCEEDED


def test_refund_status_mapping_is_exhaustive_and_unknown_is_processing() -> None:
    assert set(REFUND_STATUSES) == {"pending", "requires_action", "succeeded", "failed", "canceled"}
    assert refund_outcome("whatever") is RefundOutcome.PROCESSING
    assert refund_outcome("failed") is RefundOutcome.FAILED


# -- requests ---------------------------------------------------------------------------------------------------


def test_form_encoding_nests_keys_and_indexes_lists() -> None:
    encoded = encode_params({"amount": 5, "confirm": True, "metadata": {"attempt_id": "att_1"},
                             "payment_method_types": ["card"], "skip": None})
    assert encoded == "amount=5&confirm=true&metadata%5Battempt_id%5D=att_1&payment_method_types%5B0%5D=card"


def test_create_without_payment_method_returns_stripe_js_params() -> None:
    transport = FakeTransport([ok(intent("requires_payment_method"))])
    result = StripeAdapter(transport).create(make_account(), _create())
    [sent] = transport.requests
    _headers_ok(sent, post=True)
    assert (sent.method, sent.url) == ("POST", f"{API}/v1/payment_intents")
    assert sent.headers["Idempotency-Key"] == "payhub:att_test1:create"
    assert form(sent) == {"amount": "1000", "currency": "usd", "description": "Green tea",
                          "payment_method_types[0]": "card", "metadata[attempt_id]": "att_test1"}
    assert result.channel_order_ref == "pi_3PkitIntent000001"
    assert result.action.type == "app_params"
    assert result.action.params["client_secret"] == "pi_3PkitIntent000001_secret_abc"
    assert result.action.params["publishable_key"] == "pk_test_kit"


def test_create_with_payment_method_confirms_manually_and_returns_the_3ds_redirect() -> None:
    redirect = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.stripe.com/3ds/x",
                                                               "return_url": "https://shop.example/return"}}
    transport = FakeTransport([ok(intent("requires_action", amount=500, currency="jpy", next_action=redirect))])
    result = StripeAdapter(transport).create(make_account(), _create(payment_method="pm_card_threeDSecure2Required",
                                                                     amount=Money(500, "JPY")))
    sent = form(transport.requests[0])
    assert sent["payment_method"] == "pm_card_threeDSecure2Required"
    assert (sent["confirm"], sent["confirmation_method"], sent["return_url"]) == (
        "true", "manual", "https://shop.example/return")
    assert (sent["amount"], sent["currency"]) == ("500", "jpy")
    assert (result.action.type, result.action.params) == ("three_ds", {"redirect_url": "https://hooks.stripe.com/3ds/x"})


def test_create_with_payment_method_needs_a_return_url() -> None:
    with pytest.raises(InvalidRequest, match="return_url"):
        StripeAdapter(FakeTransport()).create(make_account(), _create(payment_method="pm_card_visa", return_url=None))


@pytest.mark.parametrize("overrides", [
    {"amount": Money(1234, "BHD")}, {"amount": Money(100, "IQD")}, {"method": "wechat.native"},
    {"payment_method": "card_123"}, {"attempt_id": "att'; DROP"},
])
def test_create_refuses_what_stripe_cannot_take_before_calling(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        StripeAdapter(FakeTransport()).create(make_account(), _create(**overrides))


def test_decline_at_create_is_a_definite_refusal() -> None:
    declined = error(402, "card_error", "card_declined", "Your card was declined.", decline_code="generic_decline",
                     payment_intent=intent("requires_payment_method"))
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport([declined])).create(make_account(), _create(payment_method="pm_card_chargeDeclined"))
    assert (caught.value.refused, caught.value.retryable, caught.value.channel_code) == (True, False, "generic_decline")


@pytest.mark.parametrize(("response", "retryable", "refused"), [
    (error(500, "api_error"), True, False),
    (error(503, "api_error", **{}), True, False),
    (error(429, "invalid_request_error", "rate_limit"), True, False),
    (error(409, "idempotency_error", "idempotency_key_in_use"), True, False),
    (error(400, "idempotency_error"), False, False),
    (error(400, "invalid_request_error", "parameter_missing"), False, True),
    (error(401, "invalid_request_error", "api_key_invalid", "Invalid API Key provided: sk_test_****1234"), False, False),
    (ok({"error": {"type": "api_error"}}, 500, **{"stripe-should-retry": "false"}), False, False),
])
def test_error_mapping(response, retryable: bool, refused: bool) -> None:
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport([response])).create(make_account(), _create())
    assert (caught.value.retryable, caught.value.refused) == (retryable, refused)
    assert "sk_test_" not in caught.value.message.replace("sk_test_***", "")


def test_non_json_answer_is_a_channel_error() -> None:
    from chalicelib.channels.base import HttpResponse

    with pytest.raises(ChannelError):
        StripeAdapter(FakeTransport([HttpResponse(200, {}, b"<html>")])).create(make_account(), _create())


# -- when the money moved --------------------------------------------------------------------------------------


def test_paid_at_is_when_stripe_made_the_charge() -> None:
    expanded = intent("succeeded", latest_charge={"id": "ch_1", "created": NOW_TS - 90, "status": "succeeded"})
    assert payment_status(expanded, paid_at=NOW).paid_at == NOW - timedelta(seconds=90)
    legacy = intent("succeeded", charges={"object": "list", "data": [
        {"id": "ch_0", "created": NOW_TS - 600, "status": "failed"},
        {"id": "ch_1", "created": NOW_TS - 300, "status": "succeeded"}]})
    assert payment_status(legacy).paid_at == NOW - timedelta(seconds=300)
    # A webhook's intent names its charge only by id: the event's time is the best there is.
    assert payment_status(intent("succeeded", latest_charge="ch_1"), paid_at=NOW).paid_at == NOW
    assert payment_status(intent("succeeded", latest_charge="ch_1")).paid_at is None
    assert payment_status(intent("processing", latest_charge={"id": "ch_1", "created": NOW_TS})).paid_at is None


# -- query and close --------------------------------------------------------------------------------------------

PI = "pi_3PkitIntent000001"


def _search(*found: dict[str, Any]) -> Any:
    return ok({"object": "search_result", "data": list(found), "has_more": False})


def _no_lookup(request) -> Any:
    raise AssertionError(f"searched or listed ({request.url}) although the intent id was given")


def _by_id(answer: Any) -> list[Any]:
    """A transport script that answers the read by id and fails the test on any search or list."""
    def read(request) -> Any:
        if "/search" in request.url or request.url.split("?")[0].endswith("/v1/payment_intents"):
            return _no_lookup(request)
        return answer
    return [read]


def test_query_reads_the_given_intent_by_id_with_its_charge_and_never_searches() -> None:
    charge = {"id": "ch_kit", "object": "charge", "created": NOW_TS - 3600, "status": "succeeded"}
    transport = FakeTransport(_by_id(ok(intent("succeeded", latest_charge=charge))))
    status = StripeAdapter(transport).query(make_account(), "att_test1", Money(1000, "USD"), channel_order_ref=PI)
    [sent] = transport.requests
    _headers_ok(sent, post=False)
    assert sent.url.split("?")[0] == f"{API}/v1/payment_intents/{PI}"
    assert query(sent) == {"expand[0]": "latest_charge"}
    assert status.outcome is PaymentOutcome.SUCCEEDED and status.channel_transaction_id == PI
    assert status.paid_at == NOW - timedelta(hours=1)  # when Stripe charged the card, not when we asked


def test_query_by_id_sees_what_search_does_not_yet() -> None:
    """The Search API lags (an intent paid a second ago may be listed as unpaid, or not at all): by id it cannot."""
    transport = FakeTransport(_by_id(ok(intent("processing"))))
    status = StripeAdapter(transport).query(make_account(), "att_test1", Money(1000, "USD"), channel_order_ref=PI)
    assert status.outcome is PaymentOutcome.PROCESSING


def test_query_by_id_of_an_intent_stripe_does_not_have_is_not_found_and_of_another_attempt_an_error() -> None:
    missing = FakeTransport([error(404, "invalid_request_error", "resource_missing", "No such payment_intent")])
    status = StripeAdapter(missing).query(make_account(), "att_test1", Money(1000, "USD"), channel_order_ref=PI)
    assert status.outcome is PaymentOutcome.NOT_FOUND
    other = FakeTransport([ok(intent(attempt_id="att_other"))])
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(other).query(make_account(), "att_test1", Money(1000, "USD"), channel_order_ref=PI)
    assert caught.value.channel_code == "ATTEMPT_MISMATCH"


def test_query_without_an_intent_id_searches_then_reads_the_found_intent_by_id() -> None:
    stale = intent("requires_payment_method")  # the search index still shows the old status
    transport = FakeTransport([_search(stale), ok(intent("succeeded"))])
    status = StripeAdapter(transport).query(make_account(), "att_test1", Money(1000, "USD"))
    search, read = transport.requests
    assert search.url.startswith(f"{API}/v1/payment_intents/search?")
    assert query(search)["query"] == "metadata['attempt_id']:'att_test1'"
    assert read.url.split("?")[0] == f"{API}/v1/payment_intents/{PI}"
    assert status.outcome is PaymentOutcome.SUCCEEDED


def test_query_without_an_intent_id_falls_back_to_listing_when_search_has_not_caught_up() -> None:
    other = {**intent(), "id": "pi_other", "metadata": {"attempt_id": "att_other"}}
    transport = FakeTransport([
        _search(),
        ok({"object": "list", "data": [other], "has_more": True}),
        ok({"object": "list", "data": [intent("succeeded")], "has_more": False}),
        ok(intent("succeeded")),
    ])
    status = StripeAdapter(transport).query(make_account(), "att_test1", Money(1000, "USD"))
    assert status.outcome is PaymentOutcome.SUCCEEDED
    assert query(transport.requests[2])["starting_after"] == "pi_other"


def test_query_of_an_unknown_attempt_is_not_found() -> None:
    transport = FakeTransport([error(400, "invalid_request_error", message="Search is not available"),
                               ok({"object": "list", "data": [], "has_more": False})])
    assert StripeAdapter(transport).query(make_account(), "att_x", Money(1, "USD")).outcome is PaymentOutcome.NOT_FOUND


def test_close_cancels_the_live_intent_found_by_id() -> None:
    """The intent search would miss (just created) is live: close must cancel it at Stripe, not call it closed."""
    transport = FakeTransport([*_by_id(ok(intent("requires_payment_method"))), ok(intent("canceled"))])
    StripeAdapter(transport).close(make_account(), "att_test1", channel_order_ref=PI)
    read, cancel = transport.requests
    assert read.url.split("?")[0] == f"{API}/v1/payment_intents/{PI}"
    assert cancel.url == f"{API}/v1/payment_intents/{PI}/cancel"
    assert cancel.headers["Idempotency-Key"] == "payhub:att_test1:cancel"
    assert form(cancel) == {"cancellation_reason": "abandoned"}


def test_close_of_a_paid_intent_says_orderpaid() -> None:
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport(_by_id(ok(intent("succeeded"))))).close(make_account(), "att_test1",
                                                                               channel_order_ref=PI)
    assert caught.value.channel_code == "ORDERPAID"


def test_close_that_loses_the_race_to_the_payer_says_orderpaid() -> None:
    transport = FakeTransport([ok(intent("requires_action")),
                               error(400, "invalid_request_error", "payment_intent_unexpected_state"),
                               ok(intent("succeeded"))])
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(transport).close(make_account(), "att_test1", channel_order_ref=PI)
    assert caught.value.channel_code == "ORDERPAID"


def test_close_of_a_canceled_intent_or_one_stripe_says_it_does_not_have_is_done() -> None:
    StripeAdapter(FakeTransport([ok(intent("canceled"))])).close(make_account(), "att_test1", channel_order_ref=PI)
    missing = FakeTransport([error(404, "invalid_request_error", "resource_missing", "No such payment_intent")])
    StripeAdapter(missing).close(make_account(), "att_test1", channel_order_ref=PI)


def test_close_without_an_intent_id_never_takes_a_search_miss_for_closed() -> None:
    transport = FakeTransport([_search(), ok({"data": [], "has_more": False})])
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(transport).close(make_account(), "att_test1")
    assert caught.value.retryable and caught.value.channel_code == "resource_missing"


def test_close_without_an_intent_id_cancels_what_search_finds_after_reading_it() -> None:
    transport = FakeTransport([_search(intent("requires_action")), ok(intent("requires_action")), ok(intent("canceled"))])
    StripeAdapter(transport).close(make_account(), "att_test1")
    assert transport.requests[2].url == f"{API}/v1/payment_intents/{PI}/cancel"


def test_close_of_a_processing_intent_is_retryable() -> None:
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport([ok(intent("processing"))])).close(make_account(), "att_test1", channel_order_ref=PI)
    assert caught.value.retryable


# -- confirm ----------------------------------------------------------------------------------------------------


def _confirm_request(**overrides: Any) -> ConfirmRequest:
    values: dict[str, Any] = {"attempt_id": "att_test1", "method": "stripe.card",
                              "channel_order_ref": "pi_3PkitIntent000001", "amount": Money(1000, "USD"),
                              "notify_url": "https://hub.example/cb", "return_url": "https://shop.example/return"}
    values.update(overrides)
    return ConfirmRequest(**values)


def test_confirm_after_3ds_confirms_with_an_idempotency_key() -> None:
    transport = FakeTransport([ok(intent("requires_confirmation")), ok(intent("succeeded"))])
    result = StripeAdapter(transport).confirm(make_account(), _confirm_request())
    read, confirm = transport.requests
    assert read.url == f"{API}/v1/payment_intents/pi_3PkitIntent000001?expand%5B0%5D=latest_charge"
    assert confirm.url == f"{API}/v1/payment_intents/pi_3PkitIntent000001/confirm"
    assert confirm.headers["Idempotency-Key"] == "payhub:att_test1:confirm"
    assert form(confirm) == {"return_url": "https://shop.example/return", "expand[0]": "latest_charge"}
    assert result.status.outcome is PaymentOutcome.SUCCEEDED and result.action is None


def test_confirm_of_a_second_round_moves_to_the_next_key_when_stripe_replays_the_first() -> None:
    transport = FakeTransport([ok(intent("requires_confirmation")),
                               ok(intent("requires_action"), **{"idempotent-replayed": "true"}),
                               ok(intent("requires_confirmation")), ok(intent("succeeded"))])
    result = StripeAdapter(transport).confirm(make_account(), _confirm_request())
    keys = [r.headers.get("Idempotency-Key") for r in transport.requests]
    assert keys == [None, "payhub:att_test1:confirm", None, "payhub:att_test1:confirm:2"]
    assert result.status.outcome is PaymentOutcome.SUCCEEDED


def test_confirm_when_already_done_only_reports() -> None:
    transport = FakeTransport([ok(intent("succeeded"))])
    assert StripeAdapter(transport).confirm(make_account(), _confirm_request()).status.outcome is PaymentOutcome.SUCCEEDED
    assert len(transport.requests) == 1


def test_confirm_while_the_payer_still_has_to_authenticate_returns_the_challenge_again() -> None:
    redirect = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://3ds.example/c"}}
    result = StripeAdapter(FakeTransport([ok(intent("requires_action", next_action=redirect))])).confirm(
        make_account(), _confirm_request())
    assert result.status.outcome is PaymentOutcome.PENDING
    assert result.action is not None and result.action.params == {"redirect_url": "https://3ds.example/c"}


DECLINE = {"type": "card_error", "code": "card_declined"}


def test_confirm_declined_cancels_the_intent_before_it_reports_the_failure() -> None:
    manual = {"confirmation_method": "manual"}
    failed = intent("requires_payment_method", last_payment_error=DECLINE, **manual)
    canceled = intent("canceled", last_payment_error=DECLINE, cancellation_reason="abandoned", **manual)
    transport = FakeTransport([ok(intent("requires_confirmation", **manual)), error(402, "card_error", "card_declined"),
                               ok(failed), ok(canceled)])
    result = StripeAdapter(transport).confirm(make_account(), _confirm_request())
    assert result.status.outcome is PaymentOutcome.FAILED
    assert result.status.raw_status == "requires_payment_method:card_declined"
    cancel = transport.requests[3]
    assert cancel.url == f"{API}/v1/payment_intents/{PI}/cancel"
    assert cancel.headers["Idempotency-Key"] == "payhub:att_test1:cancel"  # the same key as close: one cancel
    assert form(cancel) == {"cancellation_reason": "abandoned"}


def test_confirm_never_reports_a_decline_it_could_not_cancel() -> None:
    failed = intent("requires_payment_method", last_payment_error=DECLINE, confirmation_method="manual")
    down = FakeTransport([ok(failed), error(500, "api_error")])
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(down).confirm(make_account(), _confirm_request())
    assert caught.value.retryable
    raced = FakeTransport([ok(failed), error(400, "invalid_request_error", "payment_intent_unexpected_state"),
                           ok(intent("succeeded", confirmation_method="manual"))])
    assert StripeAdapter(raced).confirm(make_account(), _confirm_request()).status.outcome is PaymentOutcome.SUCCEEDED


def test_a_stripe_js_decline_stays_pending_while_the_payer_may_try_another_card() -> None:
    declined = intent("requires_payment_method", last_payment_error=DECLINE, confirmation_method="automatic")
    transport = FakeTransport([ok(declined)])
    result = StripeAdapter(transport).confirm(make_account(), _confirm_request())
    assert result.status.outcome is PaymentOutcome.PENDING
    assert result.status.raw_status == "requires_payment_method:card_declined"
    assert len(transport.requests) == 1  # nothing cancelled: the payer may still pay it
    status = StripeAdapter(FakeTransport([ok(declined)])).query(make_account(), "att_test1", Money(1000, "USD"),
                                                                channel_order_ref=PI)
    assert status.outcome is PaymentOutcome.PENDING


def test_confirm_captures_an_authorisation() -> None:
    transport = FakeTransport([ok(intent("requires_capture")), ok(intent("succeeded"))])
    StripeAdapter(transport).confirm(make_account(), _confirm_request())
    capture = transport.requests[1]
    assert capture.url.endswith("/capture") and capture.headers["Idempotency-Key"] == "payhub:att_test1:capture"
    assert form(capture) == {"amount_to_capture": "1000", "expand[0]": "latest_charge"}


def test_confirm_refuses_an_intent_of_another_attempt_and_a_missing_intent() -> None:
    with pytest.raises(ChannelError, match="attempt"):
        StripeAdapter(FakeTransport([ok(intent(attempt_id="att_other"))])).confirm(make_account(), _confirm_request())
    with pytest.raises(InvalidState):
        StripeAdapter(FakeTransport()).confirm(make_account(), _confirm_request(channel_order_ref=""))


# -- refunds ----------------------------------------------------------------------------------------------------


def _refund_request(**overrides: Any) -> RefundRequest:
    values: dict[str, Any] = {"refund_id": "re_ourRefund1", "attempt_id": "att_test1",
                              "channel_transaction_id": "pi_3PkitIntent000001", "amount": Money(300, "USD"),
                              "attempt_amount": Money(1000, "USD"), "reason": "requested_by_customer",
                              "notify_url": "https://hub.example/cb"}
    values.update(overrides)
    return RefundRequest(**values)


def test_refund_request_and_pending_answer() -> None:
    transport = FakeTransport([ok(refund("pending"))])
    status = StripeAdapter(transport).refund(make_account(), _refund_request())
    [sent] = transport.requests
    _headers_ok(sent, post=True)
    assert sent.headers["Idempotency-Key"] == "payhub:re_ourRefund1:refund"
    assert form(sent) == {"payment_intent": "pi_3PkitIntent000001", "amount": "300",
                          "metadata[refund_id]": "re_ourRefund1", "metadata[attempt_id]": "att_test1",
                          "reason": "requested_by_customer"}
    assert status.outcome is RefundOutcome.PROCESSING and status.channel_refund_id == "re_3PkitRefund00001"


def test_refund_keeps_free_text_reasons_to_itself_and_finds_the_intent_when_needed() -> None:
    transport = FakeTransport([_search(intent()), ok(refund("succeeded"))])
    StripeAdapter(transport).refund(make_account(), _refund_request(channel_transaction_id=None, reason="broken cup"))
    assert "reason" not in form(transport.requests[1])


def test_refund_over_the_remaining_amount_is_refused() -> None:
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport([error(400, "invalid_request_error", "amount_too_large")])).refund(
            make_account(), _refund_request())
    assert caught.value.refused


def test_query_refund_lists_and_matches_our_refund_id() -> None:
    someone_else = {**refund(), "id": "re_other", "metadata": {"refund_id": "re_notOurs"}}
    transport = FakeTransport([ok({"object": "list", "data": [someone_else], "has_more": True}),
                               ok({"object": "list", "data": [refund("failed", failure_reason="declined")],
                                   "has_more": False})])
    status = StripeAdapter(transport).query_refund(make_account(), "re_ourRefund1", Money(300, "USD"))
    assert status.outcome is RefundOutcome.FAILED and status.raw_status == "failed:declined"
    assert query(transport.requests[1]) == {"limit": "100", "starting_after": "re_other"}


def test_query_refund_reads_the_given_stripe_refund_by_id_and_never_lists() -> None:
    def read(request) -> Any:
        assert request.url == f"{API}/v1/refunds/re_3PkitRefund00001", "listed although the refund id was given"
        return ok(refund("succeeded"))

    transport = FakeTransport([read])
    status = StripeAdapter(transport).query_refund(make_account(), "re_ourRefund1", Money(300, "USD"),
                                                   attempt_id="att_test1", channel_refund_id="re_3PkitRefund00001",
                                                   channel_order_ref=PI)
    assert status.outcome is RefundOutcome.SUCCEEDED and status.channel_refund_id == "re_3PkitRefund00001"
    assert len(transport.requests) == 1


def test_query_refund_by_id_checks_it_is_ours_and_a_missing_one_is_not_found() -> None:
    theirs = FakeTransport([ok({**refund(), "metadata": {"refund_id": "re_notOurs"}})])
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(theirs).query_refund(make_account(), "re_ourRefund1", Money(300, "USD"),
                                           channel_refund_id="re_3PkitRefund00001")
    assert caught.value.channel_code == "REFUND_MISMATCH"
    missing = FakeTransport([error(404, "invalid_request_error", "resource_missing", "No such refund")])
    assert StripeAdapter(missing).query_refund(make_account(), "re_ourRefund1", Money(300, "USD"),
                                               channel_refund_id="re_3PkitRefund00001").outcome is RefundOutcome.NOT_FOUND


def test_query_refund_without_stripes_id_lists_only_the_given_intents_refunds() -> None:
    transport = FakeTransport([ok({"object": "list", "data": [refund("pending")], "has_more": False})])
    status = StripeAdapter(transport).query_refund(make_account(), "re_ourRefund1", Money(300, "USD"),
                                                   attempt_id="att_test1", channel_order_ref=PI)
    assert status.outcome is RefundOutcome.PROCESSING
    assert query(transport.requests[0]) == {"payment_intent": PI, "limit": "100"}


def test_refund_takes_the_intent_from_the_attempts_channel_order_ref_without_searching() -> None:
    transport = FakeTransport([ok(refund("pending"))])
    StripeAdapter(transport).refund(make_account(), _refund_request(channel_transaction_id=None, channel_order_ref=PI))
    [sent] = transport.requests
    assert sent.url == f"{API}/v1/refunds" and form(sent)["payment_intent"] == PI


def test_query_refund_unknown_is_not_found() -> None:
    transport = FakeTransport([ok({"object": "list", "data": [], "has_more": False})])
    assert StripeAdapter(transport).query_refund(make_account(), "re_x", Money(1, "USD")).outcome is RefundOutcome.NOT_FOUND


# -- credentials ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "settings"), [
    ({"secret_key": "pk_test_notasecret"}, {}),
    ({"webhook_secrets": ["not_a_whsec"]}, {}),
    ({}, {"merchant_id": "1234"}),
    ({}, {"livemode": "true"}),  # a test key cannot serve a live account
])
def test_misconfigured_accounts_are_refused(overrides: dict[str, Any], settings: dict[str, str]) -> None:
    with pytest.raises((ValueError, KeyError)):
        StripeAdapter(FakeTransport()).create(make_account(**overrides, **settings), _create())


def test_secrets_never_appear_in_reprs() -> None:
    account = make_account()
    assert SECRET_KEY not in repr(account) and SECRET_KEY not in repr(account.secrets)


# -- answers must be about what was asked (Stripe's answers are authenticated by TLS, not signed) ---------------


@pytest.mark.parametrize("answer", [
    intent("requires_payment_method", attempt_id="att_someone_else"),  # another attempt's intent
    intent("requires_payment_method", amount=1),  # our attempt, another amount
    intent("requires_payment_method", currency="eur"),
])
def test_create_answer_for_another_attempt_or_amount_is_refused(answer: dict[str, Any]) -> None:
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport([ok(answer)])).create(make_account(), _create())
    assert caught.value.channel_code in ("ATTEMPT_MISMATCH", "AMOUNT_MISMATCH") and not caught.value.refused


def test_query_answer_for_another_intent_does_not_succeed_the_attempt() -> None:
    paid_elsewhere = {**intent("succeeded"), "id": "pi_3PkitIntentOTHER1"}
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport([ok(paid_elsewhere)])).query(
            make_account(), "att_test1", Money(1000, "USD"), channel_order_ref="pi_3PkitIntent000001")
    assert caught.value.channel_code == "ATTEMPT_MISMATCH"


def test_confirm_answer_for_another_attempt_does_not_succeed_it() -> None:
    transport = FakeTransport([ok(intent("requires_confirmation")), ok(intent("succeeded", attempt_id="att_other"))])
    request = ConfirmRequest(attempt_id="att_test1", method="stripe.card", channel_order_ref="pi_3PkitIntent000001",
                             amount=Money(1000, "USD"), notify_url="https://hub.example/cb", inputs={})
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(transport).confirm(make_account(), request)
    assert caught.value.channel_code == "ATTEMPT_MISMATCH"


@pytest.mark.parametrize("answer", [
    refund("succeeded", refund_id="re_someoneElse"),
    refund("succeeded", amount=1000),
    refund("succeeded", payment_intent="pi_3PkitIntentOTHER1"),
])
def test_refund_answer_for_another_refund_is_refused(answer: dict[str, Any]) -> None:
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport([ok(answer)])).refund(make_account(), _refund_request())
    assert caught.value.channel_code == "REFUND_MISMATCH" and not caught.value.refused
