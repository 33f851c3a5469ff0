"""ECNYAdapter through a fake gateway: what is signed and sent, how answers are verified, outcomes and errors."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from ecny_kit import (
    ATTEMPT,
    BASE_URL,
    MERCHANT_ID,
    MERCHANT_SERIAL,
    NOW,
    FakeGateway,
    make_kit,
    order,
    refund,
    seal,
)

from chalicelib.channels.base import (
    ConfirmRequest,
    CreateRequest,
    HttpRequest,
    Payer,
    PaymentOutcome,
    RefundOutcome,
    RefundRequest,
)
from chalicelib.channels.ecny import ECNYAdapter, signing
from chalicelib.channels.ecny.client import EXISTS_CODES, REFUSAL_CODES
from chalicelib.crypto.sm import sm2_verify
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState
from chalicelib.domain.money import Money

KIT = make_kit()
REFUND_ID = "re_01hz8k3m4n5p6q7r8s9t0v1w2x"
NOTIFY_URL = "https://hub.example/callbacks/ecny/ecny-test"


def _adapter(*handlers) -> tuple[ECNYAdapter, FakeGateway]:
    gateway = FakeGateway(list(handlers))
    return ECNYAdapter(gateway, clock=lambda: NOW), gateway


def _create_request(amount: Money = Money(8888, "CNY"), method: str = "ecny.wallet") -> CreateRequest:
    return CreateRequest(attempt_id=ATTEMPT, method=method, amount=amount, description="Green tea",
                         notify_url=NOTIFY_URL, expires_at=NOW + timedelta(minutes=30), payer=Payer(ip="203.0.113.9"))


def _preorder_answer(out_order_no: str = ATTEMPT, **changes) -> dict:
    answer = {"out_order_no": out_order_no, "order_no": "EO2024052012000012345678",
              "code_url": "https://ecny.pbank.example/c/EO2024052012000012345678",
              "order_info": seal("ECNYCASHIER.token", out_order_no=out_order_no, name="order_info"),
              "expire_time": "20240520123000"}
    answer.update(changes)
    return answer


def _assert_signed_by_us(request: HttpRequest, path: str) -> None:
    headers = request.headers
    assert request.method == "POST" and request.url == BASE_URL + path
    assert headers["X-ECNY-Merchant-Id"] == MERCHANT_ID and headers["X-ECNY-Serial"] == MERCHANT_SERIAL
    assert headers["X-ECNY-Timestamp"] == str(int(NOW.timestamp()))
    message = signing.request_message(path, headers["X-ECNY-Timestamp"], headers["X-ECNY-Nonce"], request.body)
    assert sm2_verify(KIT.merchant.public_hex, message, base64.b64decode(headers["X-ECNY-Signature"]))


def test_create_sends_a_signed_preorder_and_returns_a_qr_code_action() -> None:
    adapter, gateway = _adapter(KIT.success(_preorder_answer()))
    result = adapter.create(KIT.account(), _create_request())
    request = gateway.requests[0]
    _assert_signed_by_us(request, "/ecny/v1/orders")
    assert json.loads(request.body) == {
        "merchant_id": MERCHANT_ID, "out_order_no": ATTEMPT, "amount": "88.88", "currency": "CNY",
        "subject": "Green tea", "notify_url": NOTIFY_URL, "expire_time": "20240520123000", "scene": "WALLET",
        "client_ip": "203.0.113.9"}
    assert result.channel_order_ref == "EO2024052012000012345678"
    assert result.action.type == "qr_code"
    assert dict(result.action.params) == {"code_url": "https://ecny.pbank.example/c/EO2024052012000012345678",
                                          "order_info": "ECNYCASHIER.token"}


def test_the_path_prefix_of_the_base_url_is_part_of_the_signed_path() -> None:
    adapter, gateway = _adapter(KIT.success(_preorder_answer()))
    adapter.create(KIT.account(api_base_url="https://gw.bank.example/open/ecny-gw/"), _create_request())
    request = gateway.requests[0]
    assert request.url == "https://gw.bank.example/open/ecny-gw/ecny/v1/orders"
    message = signing.request_message("/open/ecny-gw/ecny/v1/orders", request.headers["X-ECNY-Timestamp"],
                                      request.headers["X-ECNY-Nonce"], request.body)
    assert sm2_verify(KIT.merchant.public_hex, message, base64.b64decode(request.headers["X-ECNY-Signature"]))


@pytest.mark.parametrize(("answer", "reason"), [
    (_preorder_answer(out_order_no="att_someone_else"), "another out_order_no"),
    (_preorder_answer(order_info=seal("x", out_order_no="att_other", name="order_info")), "order_info"),
    (_preorder_answer(order_info=seal("x", name="payer_wallet")), "order_info"),
    (_preorder_answer(code_url=""), "code_url"),
])
def test_a_preorder_answer_that_does_not_fit_our_order_is_an_error(answer: dict, reason: str) -> None:
    adapter, _ = _adapter(KIT.success(answer))
    with pytest.raises(ChannelError, match=reason):
        adapter.create(KIT.account(), _create_request())


@pytest.mark.parametrize(("request_", "param"), [
    (_create_request(Money(100, "USD")), "currency"), (_create_request(Money(0, "CNY")), "amount"),
    (_create_request(method="ecny.card"), "method"),
])
def test_invalid_creates_never_reach_the_bank(request_: CreateRequest, param: str) -> None:
    adapter, gateway = _adapter()
    with pytest.raises(InvalidRequest) as caught:
        adapter.create(KIT.account(), request_)
    assert caught.value.param == param and gateway.requests == []


# -- answers must be the bank's, for this request --------------------------------------------------------


def _query_with(handler):
    adapter, _ = _adapter(handler)
    return adapter.query(KIT.account(), ATTEMPT, Money(8888, "CNY"))


def test_query_maps_the_order() -> None:
    status = _query_with(KIT.success(order("SUCCESS")))
    assert status.outcome is PaymentOutcome.SUCCEEDED and status.amount == Money(8888, "CNY")
    offline = _query_with(KIT.success(order("SUCCESS", offline=True)))
    assert offline.settled_offline
    assert _query_with(KIT.success(order("WAITING"))).outcome is PaymentOutcome.PENDING
    assert _query_with(KIT.success(order("SOMETHING_NEW"))).outcome is PaymentOutcome.PENDING


def test_query_of_an_unknown_order_is_not_found() -> None:
    assert _query_with(KIT.failure("ORDER_NOT_FOUND")).outcome is PaymentOutcome.NOT_FOUND


@pytest.mark.parametrize(("handler", "reason"), [
    (lambda request: KIT.answer(request, {"code": "SUCCESS", "data": order()}, sign=False), "X-ECNY-Signature"),
    (lambda request: KIT.answer(request, {"code": "SUCCESS", "data": order()}, request_nonce="f" * 32), "mismatch"),
    (lambda request: KIT.answer(request, {"code": "SUCCESS", "data": order()}, key=KIT.impostor), "mismatch"),
    (lambda request: KIT.answer(request, {"code": "SUCCESS", "data": order()}, ts=int(NOW.timestamp()) - 600),
     "window"),
])
def test_an_answer_not_signed_by_the_bank_for_this_request_is_refused(handler, reason: str) -> None:
    with pytest.raises(ChannelError, match=reason) as caught:
        _query_with(handler)
    assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID"
    assert not caught.value.retryable and not caught.value.refused  # the outcome is unknown


def test_an_answer_about_another_order_is_an_error() -> None:
    with pytest.raises(ChannelError, match="another out_order_no"):
        _query_with(KIT.success(order(out_order_no="att_other")))


@pytest.mark.parametrize(("handler", "code", "retryable", "refused"), [
    (KIT.failure("SYSTEM_ERROR", status=500, sign=False), "HTTP_500", True, False),
    (lambda request: KIT.answer(request, b"<html>Bad Gateway</html>", status=502, sign=False), "HTTP_502", True, False),
    (KIT.failure("SYSTEM_BUSY", status=429), "SYSTEM_BUSY", True, False),
    (KIT.failure("TIMESTAMP_EXPIRED", status=401), "TIMESTAMP_EXPIRED", True, False),
    (KIT.failure("SIGN_INVALID", status=401), "SIGN_INVALID", False, False),
    (KIT.failure("PARAM_ERROR"), "PARAM_ERROR", False, True),
    (KIT.failure("A_CODE_WE_NEVER_SAW"), "A_CODE_WE_NEVER_SAW", False, False),
])
def test_error_mapping(handler, code: str, retryable: bool, refused: bool) -> None:
    with pytest.raises(ChannelError) as caught:
        _query_with(handler)
    assert (caught.value.channel_code, caught.value.retryable, caught.value.refused) == (code, retryable, refused)


def test_a_refusal_needs_the_banks_signature() -> None:
    """An unsigned 'ORDER_PAID' could be anyone's: it is not taken as a refusal."""
    with pytest.raises(ChannelError) as caught:
        _query_with(KIT.failure("ORDER_PAID", sign=False))
    assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID" and not caught.value.refused


@pytest.mark.parametrize("status", [500, 503, 429])
def test_an_unsigned_server_error_claiming_not_found_decides_nothing(status: int) -> None:
    """Signed, ORDER_NOT_FOUND makes a query NOT_FOUND and a close succeed; on an unsigned 5xx it is only a claim."""
    claim = KIT.failure("ORDER_NOT_FOUND", status=status, sign=False)
    adapter, _ = _adapter(claim, claim, KIT.failure("REFUND_NOT_FOUND", status=status, sign=False))
    calls = (lambda: adapter.query(KIT.account(), ATTEMPT, Money(100, "CNY")),
             lambda: adapter.close(KIT.account(), ATTEMPT),
             lambda: adapter.query_refund(KIT.account(), "rf_01", Money(100, "CNY")))
    for call in calls:
        with pytest.raises(ChannelError) as caught:
            call()
        assert (caught.value.channel_code, caught.value.retryable, caught.value.refused) == (
            f"HTTP_{status}", True, False)
        assert "NOT_FOUND" in caught.value.message


# -- close, refund, confirm ------------------------------------------------------------------------------


def test_close_sends_the_order_number_and_accepts_success() -> None:
    adapter, gateway = _adapter(KIT.success({"out_order_no": ATTEMPT, "status": "CLOSED"}))
    adapter.close(KIT.account(), ATTEMPT)
    _assert_signed_by_us(gateway.requests[0], "/ecny/v1/orders/close")
    assert json.loads(gateway.requests[0].body) == {"merchant_id": MERCHANT_ID, "out_order_no": ATTEMPT}


def test_close_of_a_paid_order_is_orderpaid() -> None:
    adapter, _ = _adapter(KIT.failure("ORDER_PAID"))
    with pytest.raises(ChannelError) as caught:
        adapter.close(KIT.account(), ATTEMPT)
    assert caught.value.channel_code == "ORDERPAID" and caught.value.refused


def test_close_of_an_order_the_bank_does_not_know_counts_as_closed() -> None:
    adapter, _ = _adapter(KIT.failure("ORDER_NOT_FOUND"))
    adapter.close(KIT.account(), ATTEMPT)


def test_refund_body_and_status() -> None:
    adapter, gateway = _adapter(KIT.success(refund("PROCESSING")))
    status = adapter.refund(KIT.account(), RefundRequest(
        refund_id=REFUND_ID, attempt_id=ATTEMPT, channel_transaction_id="TX1", amount=Money(888, "CNY"),
        attempt_amount=Money(8888, "CNY"), reason="one cup missing", notify_url=NOTIFY_URL))
    _assert_signed_by_us(gateway.requests[0], "/ecny/v1/refunds")
    assert json.loads(gateway.requests[0].body) == {
        "merchant_id": MERCHANT_ID, "out_order_no": ATTEMPT, "out_refund_no": REFUND_ID, "refund_amount": "8.88",
        "order_amount": "88.88", "currency": "CNY", "notify_url": NOTIFY_URL, "reason": "one cup missing"}
    assert status.outcome is RefundOutcome.PROCESSING and status.amount == Money(888, "CNY")


def test_query_refund() -> None:
    adapter, gateway = _adapter(KIT.success(refund("SUCCESS")), KIT.failure("REFUND_NOT_FOUND"))
    assert adapter.query_refund(KIT.account(), REFUND_ID, Money(888, "CNY")).outcome is RefundOutcome.SUCCEEDED
    assert json.loads(gateway.requests[0].body) == {"merchant_id": MERCHANT_ID, "out_refund_no": REFUND_ID}
    assert adapter.query_refund(KIT.account(), REFUND_ID, Money(888, "CNY")).outcome is RefundOutcome.NOT_FOUND


def test_refund_refusals_are_refused() -> None:
    adapter, _ = _adapter(KIT.failure("REFUND_EXCEEDS"))
    with pytest.raises(ChannelError) as caught:
        adapter.refund(KIT.account(), RefundRequest(REFUND_ID, ATTEMPT, None, Money(9999, "CNY"), Money(8888, "CNY"),
                                                    None, NOTIFY_URL))
    assert caught.value.refused and caught.value.channel_code == "REFUND_EXCEEDS"


@pytest.mark.parametrize("code", sorted(EXISTS_CODES))
def test_a_number_that_already_exists_leaves_the_outcome_unknown(code: str) -> None:
    """REFUND_EXISTS / ORDER_EXISTS: something exists under our number (maybe made by a request whose answer was
    lost). Neither a refusal (which would release a refund that may be moving money) nor a resend: a query decides."""
    assert code not in REFUSAL_CODES
    adapter, _ = _adapter(KIT.failure(code))
    with pytest.raises(ChannelError) as caught:
        adapter.refund(KIT.account(), RefundRequest(REFUND_ID, ATTEMPT, None, Money(888, "CNY"), Money(8888, "CNY"),
                                                    None, NOTIFY_URL))
    assert (caught.value.channel_code, caught.value.refused, caught.value.retryable) == (code, False, False)
    adapter, _ = _adapter(KIT.failure(code))
    with pytest.raises(ChannelError) as created:
        adapter.create(KIT.account(), _create_request())
    assert (created.value.refused, created.value.retryable) == (False, False)


def test_the_channel_references_are_accepted_and_the_bank_is_asked_by_our_numbers() -> None:
    adapter, gateway = _adapter(KIT.success(order("SUCCESS")), KIT.success(refund("SUCCESS")))
    adapter.query(KIT.account(), ATTEMPT, Money(8888, "CNY"), channel_order_ref="EO2024052012000012345678")
    adapter.query_refund(KIT.account(), REFUND_ID, Money(888, "CNY"), attempt_id=ATTEMPT, channel_refund_id="ER1",
                         channel_order_ref="EO2024052012000012345678", created_at=NOW)
    assert json.loads(gateway.requests[0].body) == {"merchant_id": MERCHANT_ID, "out_order_no": ATTEMPT}
    assert json.loads(gateway.requests[1].body) == {"merchant_id": MERCHANT_ID, "out_refund_no": REFUND_ID}


def test_confirm_is_not_a_step_of_this_channel() -> None:
    adapter, _ = _adapter()
    with pytest.raises(InvalidState, match="e-CNY wallet"):
        adapter.confirm(KIT.account(), ConfirmRequest(ATTEMPT, "ecny.wallet", "EO1", Money(1, "CNY"), NOTIFY_URL))


def test_each_request_uses_a_fresh_nonce() -> None:
    adapter, gateway = _adapter(KIT.success(order()), KIT.success(order()))
    adapter.query(KIT.account(), ATTEMPT, Money(8888, "CNY"))
    adapter.query(KIT.account(), ATTEMPT, Money(8888, "CNY"))
    nonces = {r.headers["X-ECNY-Nonce"] for r in gateway.requests}
    assert len(nonces) == 2


# Every call whose answer changes what the hub records, with a success answer the bank could have sent.
_OPERATIONS = {
    "create": (lambda adapter: adapter.create(KIT.account(), _create_request()), _preorder_answer()),
    "query": (lambda adapter: adapter.query(KIT.account(), ATTEMPT, Money(8888, "CNY")), order("SUCCESS")),
    "close": (lambda adapter: adapter.close(KIT.account(), ATTEMPT), {"out_order_no": ATTEMPT, "status": "CLOSED"}),
    "refund": (lambda adapter: adapter.refund(KIT.account(), RefundRequest(
        refund_id=REFUND_ID, attempt_id=ATTEMPT, channel_transaction_id=None, amount=Money(888, "CNY"),
        attempt_amount=Money(8888, "CNY"), reason=None, notify_url=NOTIFY_URL)), refund("SUCCESS")),
    "query_refund": (lambda adapter: adapter.query_refund(KIT.account(), REFUND_ID, Money(888, "CNY")),
                     refund("SUCCESS")),
}


@pytest.mark.parametrize("operation", sorted(_OPERATIONS))
@pytest.mark.parametrize("forgery", [{"sign": False}, {"key": KIT.impostor}])
def test_every_answer_must_be_signed_by_the_bank(operation: str, forgery: dict) -> None:
    call, data = _OPERATIONS[operation]
    adapter, _ = _adapter(KIT.success(data, **forgery))
    with pytest.raises(ChannelError) as caught:
        call(adapter)
    assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID"
    assert not caught.value.refused and not caught.value.retryable
    genuine, _ = _adapter(KIT.success(data))  # the control: the same answer, signed by the bank
    call(genuine)
