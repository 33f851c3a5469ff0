"""PayPalAdapter requests and answers over a fake transport: OAuth and the token cache, orders, capture (confirm),
query, close, refunds, refund queries and error mapping."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from paypal_kit import (
    API,
    NOW,
    FakeTransport,
    MapReferences,
    capture,
    json_response,
    make_kit,
    order,
    refund,
    token_response,
)

from chalicelib.channels.base import (
    ConfirmRequest,
    CreateRequest,
    Payer,
    PaymentOutcome,
    RefundOutcome,
    RefundRequest,
)
from chalicelib.channels.paypal import PayPalAdapter
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

KIT = make_kit()
ACCOUNT = KIT.account()
ORDER_ID = "5O190127TN364715T"
USD10 = Money(1000, "USD")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):  # noqa: ANN204
        return self.now


def make(transport: FakeTransport, references: MapReferences | None = None, clock: Clock | None = None) -> PayPalAdapter:
    return PayPalAdapter(transport, clock=clock or Clock(), references=references or MapReferences({"att_test0001": ORDER_ID}))


def create_request(amount: Money = USD10, return_url: str | None = "https://shop.example/return?o=9") -> CreateRequest:
    return CreateRequest(attempt_id="att_test0001", method="paypal.wallet", amount=amount, description="Green tea",
                         notify_url="https://hub.example/callbacks/paypal/pp", expires_at=NOW + timedelta(hours=2),
                         payer=Payer(), return_url=return_url)


# -- OAuth -------------------------------------------------------------------------------------------------------


def test_create_gets_a_token_with_client_credentials_then_posts_the_order():
    transport = FakeTransport([token_response(), json_response(201, order("CREATED"))])
    result = make(transport).create(ACCOUNT, create_request())
    token_request, create = transport.requests
    assert token_request.url == f"{API}/v1/oauth2/token" and token_request.body == b"grant_type=client_credentials"
    client_id, secret = base64.b64decode(token_request.headers["Authorization"].removeprefix("Basic ")).decode().split(":")
    assert (client_id, secret) == (ACCOUNT.secrets.get("client_id").reveal(), ACCOUNT.secrets.get("client_secret").reveal())
    assert create.method == "POST" and create.url == f"{API}/v2/checkout/orders"
    assert create.headers["Authorization"] == "Bearer A21AAtest-token"
    assert create.headers["PayPal-Request-Id"] == "att_test0001-create"
    body = json.loads(create.body)
    assert body["intent"] == "CAPTURE"
    unit = body["purchase_units"][0]
    assert (unit["reference_id"], unit["custom_id"], unit["invoice_id"]) == ("att_test0001",) * 3
    assert unit["amount"] == {"currency_code": "USD", "value": "10.00"}
    context = body["application_context"]
    assert context["return_url"] == "https://shop.example/return?o=9"
    assert context["cancel_url"] == "https://shop.example/return?o=9&paypal=cancel"
    assert result.channel_order_ref == ORDER_ID
    assert result.action.type == "redirect_url"
    assert result.action.params["url"] == f"https://www.sandbox.paypal.com/checkoutnow?token={ORDER_ID}"


def test_the_token_is_cached_until_near_expiry_then_renewed():
    clock = Clock()
    transport = FakeTransport([token_response(expires_in=3600), json_response(201, order("CREATED")),
                               json_response(201, order("CREATED")),
                               token_response(token="A21AAsecond"), json_response(201, order("CREATED"))])
    paypal = make(transport, clock=clock)
    paypal.create(ACCOUNT, create_request())
    clock.now = NOW + timedelta(minutes=50)  # 10 minutes left: still good
    paypal.create(ACCOUNT, create_request())
    clock.now = NOW + timedelta(minutes=56)  # inside the 5-minute margin: renew
    paypal.create(ACCOUNT, create_request())
    urls = [r.url.removeprefix(API) for r in transport.requests]
    assert urls == ["/v1/oauth2/token", "/v2/checkout/orders", "/v2/checkout/orders", "/v1/oauth2/token",
                    "/v2/checkout/orders"]
    assert transport.requests[-1].headers["Authorization"] == "Bearer A21AAsecond"


def test_a_rotated_client_secret_gets_its_own_token():
    transport = FakeTransport([token_response(), json_response(201, order("CREATED")),
                               token_response(token="A21AAother"), json_response(201, order("CREATED"))])
    paypal = make(transport)
    paypal.create(ACCOUNT, create_request())
    paypal.create(KIT.account(secrets={"client_secret": "rotated-secret"}), create_request())
    assert [r.url.endswith("/oauth2/token") for r in transport.requests] == [True, False, True, False]


def test_a_401_renews_the_token_and_retries_once_then_gives_up():
    transport = FakeTransport([token_response(), json_response(401, {"name": "AUTHENTICATION_FAILURE"}),
                               token_response(token="A21AAfresh"), json_response(201, order("CREATED"))])
    make(transport).create(ACCOUNT, create_request())
    assert transport.requests[-1].headers["Authorization"] == "Bearer A21AAfresh"
    failing = FakeTransport([token_response(), json_response(401, {"name": "AUTHENTICATION_FAILURE"}),
                             token_response(), json_response(401, {"name": "AUTHENTICATION_FAILURE"})])
    with pytest.raises(ChannelError) as caught:
        make(failing).create(ACCOUNT, create_request())
    assert not caught.value.refused and not caught.value.retryable


def test_a_refused_client_is_reported_without_the_secret():
    refused = {"error": "invalid_client", "error_description": "Client Authentication failed"}
    transport = FakeTransport([json_response(401, refused)])
    with pytest.raises(ChannelError) as caught:
        make(transport).create(ACCOUNT, create_request())
    assert caught.value.channel_code == "invalid_client"
    assert ACCOUNT.secrets.get("client_secret").reveal() not in str(caught.value)


# -- create ------------------------------------------------------------------------------------------------------


def test_zero_decimal_currencies_are_sent_whole():
    transport = FakeTransport([token_response(), json_response(201, order("CREATED", currency="JPY", value="1500"))])
    make(transport).create(ACCOUNT, create_request(Money(1500, "JPY")))
    assert transport.json_body(1)["purchase_units"][0]["amount"] == {"currency_code": "JPY", "value": "1500"}


def test_amounts_paypal_cannot_express_are_refused_before_any_request():
    transport = FakeTransport()
    with pytest.raises(InvalidRequest):
        make(transport).create(ACCOUNT, create_request(Money(1050, "TWD")))  # TWD 10.50: PayPal takes no decimals
    with pytest.raises(InvalidRequest):
        make(transport).create(ACCOUNT, create_request(Money(100, "KRW")))
    assert transport.requests == []


def test_without_a_return_url_no_urls_are_sent_and_other_methods_are_refused():
    transport = FakeTransport([token_response(), json_response(201, order("CREATED"))])
    make(transport).create(ACCOUNT, create_request(return_url=None))
    assert "return_url" not in transport.json_body(1)["application_context"]
    with pytest.raises(InvalidRequest):
        make(FakeTransport()).create(ACCOUNT, CreateRequest("att_x", "wechat.native", USD10, "x", "u", NOW, Payer()))


@pytest.mark.parametrize("answer", [order("CREATED") | {"links": []}, order("CREATED") | {"id": "att_not_paypal"}])
def test_an_order_answer_without_id_or_approve_link_is_an_error(answer):
    with pytest.raises(ChannelError):
        make(FakeTransport([token_response(), json_response(201, answer)])).create(ACCOUNT, create_request())


@pytest.mark.parametrize(("status", "retryable", "refused"), [(500, True, False), (503, True, False), (429, True, False),
                                                               (422, False, True), (400, False, True), (403, False, False)])
def test_error_mapping(status, retryable, refused):
    answer = json_response(status, {"name": "X", "message": "m", "debug_id": "d1", "details": [{"issue": "SOME_ISSUE"}]})
    with pytest.raises(ChannelError) as caught:
        make(FakeTransport([token_response(), answer])).create(ACCOUNT, create_request())
    assert (caught.value.retryable, caught.value.refused, caught.value.channel_code) == (retryable, refused, "SOME_ISSUE")


# -- query, confirm, close ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "outcome"), [
    (order("CREATED"), PaymentOutcome.PENDING),
    (order("APPROVED"), PaymentOutcome.REQUIRES_CONFIRMATION),
    (order("COMPLETED", captures=[capture("COMPLETED")]), PaymentOutcome.SUCCEEDED),
    (order("COMPLETED", captures=[capture("PENDING")]), PaymentOutcome.PROCESSING),
    (order("COMPLETED", captures=[capture("DECLINED")]), PaymentOutcome.FAILED),
    (order("COMPLETED", captures=[capture("DECLINED", capture_id="AAAAAAAAAA"), capture("COMPLETED")]),
     PaymentOutcome.SUCCEEDED),
    (order("COMPLETED"), PaymentOutcome.PENDING),  # completed but no capture shown: not proof of money
    (order("VOIDED"), PaymentOutcome.CLOSED),
])
def test_query_gets_the_order_named_by_the_attempt(answer, outcome):
    transport = FakeTransport([token_response(), json_response(200, answer)])
    status = make(transport).query(ACCOUNT, "att_test0001", USD10)
    assert transport.requests[1].method == "GET" and transport.requests[1].url == f"{API}/v2/checkout/orders/{ORDER_ID}"
    assert status.outcome is outcome
    if outcome is PaymentOutcome.SUCCEEDED:
        assert status.channel_transaction_id == "2GG279541U471931P" and status.amount == USD10


def test_query_by_paypal_order_id_and_not_found_cases():
    transport = FakeTransport([token_response(), json_response(200, order("CREATED"))])
    make(transport, MapReferences()).query(ACCOUNT, ORDER_ID, USD10)
    assert transport.requests[1].url.endswith(ORDER_ID)
    assert make(FakeTransport(), MapReferences()).query(ACCOUNT, "att_unknown", USD10).outcome is PaymentOutcome.NOT_FOUND
    gone = FakeTransport([token_response(), json_response(404, {"name": "RESOURCE_NOT_FOUND",
                                                                "details": [{"issue": "INVALID_RESOURCE_ID"}]})])
    assert make(gone).query(ACCOUNT, "att_test0001", USD10).outcome is PaymentOutcome.NOT_FOUND


def confirm_request() -> ConfirmRequest:
    return ConfirmRequest(attempt_id="att_test0001", method="paypal.wallet", channel_order_ref=ORDER_ID, amount=USD10,
                          notify_url="https://hub.example/cb")


def test_confirm_captures_with_a_stable_request_id():
    transport = FakeTransport([token_response(), json_response(201, order("COMPLETED", captures=[capture()])),
                               json_response(201, order("COMPLETED", captures=[capture()]))])
    paypal = make(transport)
    first, second = paypal.confirm(ACCOUNT, confirm_request()), paypal.confirm(ACCOUNT, confirm_request())
    captures = transport.requests[1:]
    assert [r.url for r in captures] == [f"{API}/v2/checkout/orders/{ORDER_ID}/capture"] * 2
    assert {r.headers["PayPal-Request-Id"] for r in captures} == {"att_test0001-capture"}
    assert first.status.outcome is second.status.outcome is PaymentOutcome.SUCCEEDED
    assert first.status.channel_transaction_id == "2GG279541U471931P" and first.action is None


def test_confirm_of_an_already_captured_order_answers_the_current_status():
    already = json_response(422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_ALREADY_CAPTURED"}]})
    transport = FakeTransport([token_response(), already, json_response(200, order("COMPLETED", captures=[capture()]))])
    result = make(transport).confirm(ACCOUNT, confirm_request())
    assert result.status.outcome is PaymentOutcome.SUCCEEDED
    assert transport.requests[-1].method == "GET"


def test_confirm_before_approval_answers_pending_and_the_approve_link_again():
    not_approved = json_response(422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_NOT_APPROVED"}]})
    transport = FakeTransport([token_response(), not_approved, json_response(200, order("CREATED"))])
    result = make(transport).confirm(ACCOUNT, confirm_request())
    assert result.status.outcome is PaymentOutcome.PENDING
    assert result.action is not None and result.action.type == "redirect_url"


def test_confirm_passes_other_refusals_on():
    declined = json_response(422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "INSTRUMENT_DECLINED"}]})
    with pytest.raises(ChannelError) as caught:
        make(FakeTransport([token_response(), declined])).confirm(ACCOUNT, confirm_request())
    assert caught.value.refused and caught.value.channel_code == "INSTRUMENT_DECLINED"


@pytest.mark.parametrize("answer", [order("CREATED"), order("APPROVED"), order("VOIDED"),
                                    order("COMPLETED", captures=[capture("DECLINED")])])
def test_close_of_an_uncaptured_order_succeeds_without_writing(answer):
    transport = FakeTransport([token_response(), json_response(200, answer)])
    make(transport).close(ACCOUNT, "att_test0001")
    assert [r.method for r in transport.requests] == ["POST", "GET"]  # the token, then only a read


@pytest.mark.parametrize("status", ["COMPLETED", "PENDING", "PARTIALLY_REFUNDED"])
def test_close_of_a_captured_order_is_orderpaid(status):
    transport = FakeTransport([token_response(), json_response(200, order("COMPLETED", captures=[capture(status)]))])
    with pytest.raises(ChannelError) as caught:
        make(transport).close(ACCOUNT, "att_test0001")
    assert caught.value.channel_code == "ORDERPAID"


def test_close_of_an_order_paypal_does_not_know_succeeds():
    make(FakeTransport(), MapReferences()).close(ACCOUNT, "att_never_created")
    gone = FakeTransport([token_response(), json_response(404, {"name": "RESOURCE_NOT_FOUND"})])
    make(gone).close(ACCOUNT, "att_test0001")


# -- refunds --------------------------------------------------------------------------------------------------------


def refund_request(capture_id: str | None = "2GG279541U471931P", amount: Money = Money(200, "USD")) -> RefundRequest:
    return RefundRequest(refund_id="re_test0001", attempt_id="att_test0001", channel_transaction_id=capture_id,
                         amount=amount, attempt_amount=USD10, reason="one cup missing", notify_url="https://hub.example/cb")


@pytest.mark.parametrize(("status", "outcome"), [("COMPLETED", RefundOutcome.SUCCEEDED), ("PENDING", RefundOutcome.PROCESSING),
                                                  ("FAILED", RefundOutcome.FAILED), ("CANCELLED", RefundOutcome.FAILED),
                                                  ("SOMETHING_NEW", RefundOutcome.PROCESSING)])
def test_refund_posts_to_the_capture_with_our_id(status, outcome):
    transport = FakeTransport([token_response(), json_response(201, refund(status))])
    result = make(transport).refund(ACCOUNT, refund_request())
    sent = transport.requests[1]
    assert sent.url == f"{API}/v2/payments/captures/2GG279541U471931P/refund"
    assert sent.headers["PayPal-Request-Id"] == "re_test0001-refund"
    assert json.loads(sent.body) == {"amount": {"currency_code": "USD", "value": "2.00"}, "invoice_id": "re_test0001",
                                     "custom_id": "re_test0001", "note_to_payer": "one cup missing"}
    assert result.outcome is outcome and result.channel_refund_id == "1JU08902781691411"


def test_refund_without_a_known_capture_finds_it_in_the_order():
    transport = FakeTransport([token_response(), json_response(200, order("COMPLETED", captures=[capture()])),
                               json_response(201, refund())])
    make(transport).refund(ACCOUNT, refund_request(capture_id=None))
    assert transport.requests[2].url.endswith("/v2/payments/captures/2GG279541U471931P/refund")


def test_refund_refusals_are_refused():
    exceeded = json_response(422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "REFUND_AMOUNT_EXCEEDED"}]})
    with pytest.raises(ChannelError) as caught:
        make(FakeTransport([token_response(), exceeded])).refund(ACCOUNT, refund_request())
    assert caught.value.refused and caught.value.channel_code == "REFUND_AMOUNT_EXCEEDED"


def test_query_refund_by_the_stored_paypal_refund_id():
    refs = MapReferences({"att_test0001": ORDER_ID}, refunds={"re_test0001": ("att_test0001", "1JU08902781691411")})
    transport = FakeTransport([token_response(), json_response(200, refund("COMPLETED"))])
    status = make(transport, refs).query_refund(ACCOUNT, "re_test0001", Money(200, "USD"))
    assert transport.requests[1].url == f"{API}/v2/payments/refunds/1JU08902781691411"
    assert status.outcome is RefundOutcome.SUCCEEDED and status.amount == Money(200, "USD")


def test_query_refund_falls_back_to_the_orders_refund_list_by_our_id():
    refs = MapReferences({"att_test0001": ORDER_ID}, refunds={"re_test0001": ("att_test0001", None)})
    listed = order("COMPLETED", captures=[capture("PARTIALLY_REFUNDED")], refunds=[refund("PENDING")])
    transport = FakeTransport([token_response(), json_response(200, listed), json_response(200, refund("PENDING"))])
    status = make(transport, refs).query_refund(ACCOUNT, "re_test0001", Money(200, "USD"))
    assert status.outcome is RefundOutcome.PROCESSING
    assert transport.requests[2].url.endswith("/v2/payments/refunds/1JU08902781691411")


def test_query_refund_not_found_cases():
    refs = MapReferences({"att_test0001": ORDER_ID}, refunds={"re_test0001": ("att_test0001", None)})
    unlisted = FakeTransport([token_response(), json_response(200, order("COMPLETED", captures=[capture()]))])
    assert make(unlisted, refs).query_refund(ACCOUNT, "re_test0001", USD10).outcome is RefundOutcome.NOT_FOUND
    assert make(FakeTransport(), MapReferences()).query_refund(ACCOUNT, "re_other", USD10).outcome is RefundOutcome.NOT_FOUND


def test_the_account_secrets_never_appear_in_reprs():
    text = repr(ACCOUNT) + repr(ACCOUNT.secrets)
    assert ACCOUNT.secrets.get("client_secret").reveal() not in text


# -- the references the hub passes: used as given, the hub's records are not read -----------------------------------


class NoLookupReferences:
    """A references port that fails the test if the adapter reads the hub's records although it was given the id."""

    def order_id(self, attempt_id: str) -> str | None:
        raise AssertionError(f"order_id({attempt_id}) looked up although channel_order_ref was given")

    def capture_id(self, attempt_id: str) -> str | None:
        raise AssertionError(f"capture_id({attempt_id}) looked up although channel_order_ref was given")

    def refund(self, refund_id: str) -> Any:
        raise AssertionError(f"refund({refund_id}) looked up although its references were given")


def no_lookup(transport: FakeTransport) -> PayPalAdapter:
    return PayPalAdapter(transport, clock=Clock(), references=NoLookupReferences())


def test_query_and_close_use_the_given_order_id():
    paid = json_response(200, order("COMPLETED", captures=[capture()]))
    transport = FakeTransport([token_response(), paid, paid])
    paypal = no_lookup(transport)
    assert paypal.query(ACCOUNT, "att_test0001", USD10, channel_order_ref=ORDER_ID).outcome is PaymentOutcome.SUCCEEDED
    with pytest.raises(ChannelError) as caught:
        paypal.close(ACCOUNT, "att_test0001", channel_order_ref=ORDER_ID)
    assert caught.value.channel_code == "ORDERPAID"
    assert [r.url for r in transport.requests[1:]] == [f"{API}/v2/checkout/orders/{ORDER_ID}"] * 2


def test_query_refund_uses_the_given_paypal_refund_id():
    transport = FakeTransport([token_response(), json_response(200, refund("COMPLETED"))])
    status = no_lookup(transport).query_refund(ACCOUNT, "re_test0001", Money(200, "USD"), attempt_id="att_test0001",
                                               channel_refund_id="1JU08902781691411", channel_order_ref=ORDER_ID)
    assert status.outcome is RefundOutcome.SUCCEEDED
    assert [r.url for r in transport.requests[1:]] == [f"{API}/v2/payments/refunds/1JU08902781691411"]


def test_query_refund_without_its_paypal_id_searches_the_given_order():
    listed = order("COMPLETED", captures=[capture("PARTIALLY_REFUNDED")], refunds=[refund("PENDING")])
    transport = FakeTransport([token_response(), json_response(200, listed), json_response(200, refund("COMPLETED"))])
    status = no_lookup(transport).query_refund(ACCOUNT, "re_test0001", Money(200, "USD"), attempt_id="att_test0001",
                                               channel_order_ref=ORDER_ID)
    assert status.outcome is RefundOutcome.SUCCEEDED
    assert transport.requests[1].url == f"{API}/v2/checkout/orders/{ORDER_ID}"
    assert transport.requests[2].url == f"{API}/v2/payments/refunds/1JU08902781691411"


def test_refund_without_a_capture_id_reads_the_given_order():
    transport = FakeTransport([token_response(), json_response(200, order("COMPLETED", captures=[capture()])),
                               json_response(201, refund())])
    request = replace(refund_request(capture_id=None), channel_order_ref=ORDER_ID)
    no_lookup(transport).refund(ACCOUNT, request)
    assert transport.requests[1].url == f"{API}/v2/checkout/orders/{ORDER_ID}"
    assert transport.requests[2].url.endswith("/v2/payments/captures/2GG279541U471931P/refund")


# -- answers must be about what was asked (PayPal's answers are authenticated by TLS, not signed) ---------------

_PAID = [capture("COMPLETED")]


@pytest.mark.parametrize("answer", [
    order("CREATED", attempt_id="att_someoneElse"),
    order("CREATED", value="1.00"),
    order("CREATED", currency="EUR"),
])
def test_create_answer_for_another_attempt_or_amount_is_refused(answer: dict[str, Any]) -> None:
    with pytest.raises(ChannelError) as caught:
        make(FakeTransport([token_response(), json_response(201, answer)])).create(ACCOUNT, create_request())
    assert caught.value.channel_code in ("ORDER_MISMATCH", "AMOUNT_MISMATCH") and not caught.value.refused


@pytest.mark.parametrize("answer", [
    order("COMPLETED", order_id="9XK55512AB7730921", captures=_PAID),  # another order, paid
    order("COMPLETED", attempt_id="att_someoneElse", captures=_PAID),  # our order id, another attempt's content
])
def test_a_paid_order_that_is_not_ours_succeeds_nothing(answer: dict[str, Any]) -> None:
    transport = FakeTransport([token_response(), json_response(200, answer), json_response(201, answer),
                               json_response(200, answer)])
    adapter = make(transport)
    calls = (lambda: adapter.query(ACCOUNT, "att_test0001", USD10, channel_order_ref=ORDER_ID),
             lambda: adapter.confirm(ACCOUNT, confirm_request()),
             lambda: adapter.close(ACCOUNT, "att_test0001", channel_order_ref=ORDER_ID))
    for call in calls:
        with pytest.raises(ChannelError) as caught:
            call()
        assert caught.value.channel_code == "ORDER_MISMATCH" and not caught.value.refused


@pytest.mark.parametrize("answer", [refund("COMPLETED", our_id="re_someoneElse"),
                                    refund("COMPLETED", refund_id="7YX12345AB1234567")])
def test_a_refund_answer_that_is_not_ours_decides_nothing(answer: dict[str, Any]) -> None:
    transport = FakeTransport([token_response(), json_response(200, answer)])
    with pytest.raises(ChannelError) as caught:
        make(transport).query_refund(ACCOUNT, "re_test0001", Money(200, "USD"), channel_refund_id="1JU08902781691411")
    assert caught.value.channel_code == "REFUND_MISMATCH"
    if answer["id"] == "1JU08902781691411":  # the refund POST answers carry no id to compare, only ours
        with pytest.raises(ChannelError) as caught:
            make(FakeTransport([token_response(), json_response(201, answer)])).refund(ACCOUNT, refund_request())
        assert caught.value.channel_code == "REFUND_MISMATCH"
