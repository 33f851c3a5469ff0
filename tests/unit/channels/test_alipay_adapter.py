"""Alipay requests as sent (what is signed, what is posted) and answers as read (signature over the raw
``<method>_response`` text, error mapping), through a fake transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from alipay_kit import APP_ID, NOW, AlipayKit, FakeTransport, canonical, der_b64, make_kit

from chalicelib.channels.alipay import AlipayAdapter, signing
from chalicelib.channels.base import (
    ConfirmRequest,
    CreateRequest,
    HttpRequest,
    HttpResponse,
    Payer,
    PaymentOutcome,
    RefundOutcome,
    RefundRequest,
)
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState
from chalicelib.domain.money import Money

ATTEMPT = "att_01HZX3K8Q"


@pytest.fixture(scope="module")
def kit() -> AlipayKit:
    return make_kit()


def adapter_with(*responses: Any, locator: Callable[[str], str | None] = lambda _: ATTEMPT) -> tuple[AlipayAdapter,
                                                                                                     FakeTransport]:
    transport = FakeTransport(list(responses))
    return AlipayAdapter(transport, clock=lambda: NOW, refund_locator=locator), transport


def sent(request: HttpRequest) -> dict[str, str]:
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    return dict(parse_qsl(request.body.decode("ascii"), keep_blank_values=True, strict_parsing=True))


def biz(request: HttpRequest) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(sent(request)["biz_content"])
    return loaded


def create_request(method: str = "alipay.qr", amount: int | Money = 8888, **overrides: Any) -> CreateRequest:
    money = amount if isinstance(amount, Money) else Money(amount, "CNY")
    values: dict[str, Any] = {
        "attempt_id": ATTEMPT, "method": method, "amount": money, "description": "绿茶 Green tea",
        "notify_url": "https://hub.example/callbacks/alipay/alipay-test", "expires_at": NOW + timedelta(hours=2),
        "payer": Payer(), "return_url": "https://shop.example/done",
    }
    values.update(overrides)
    return CreateRequest(**values)


def refund_request(amount: int = 888) -> RefundRequest:
    return RefundRequest(refund_id="re_01HZX9", attempt_id=ATTEMPT, channel_transaction_id=None,
                         amount=Money(amount, "CNY"), attempt_amount=Money(8888, "CNY"), reason="one cup missing",
                         notify_url="https://hub.example/callbacks/alipay/alipay-test")


def ok(kit: AlipayKit, method: str, **fields: Any) -> HttpResponse:
    """A signed success answer; like Alipay's, it echoes the trade it is about (ours unless given)."""
    return kit.answer(method, {"code": "10000", "msg": "Success", "out_trade_no": ATTEMPT, **fields})


def failed(kit: AlipayKit, method: str, code: str, sub_code: str, **options: Any) -> HttpResponse:
    return kit.answer(method, {"code": code, "msg": "Business Failed", "sub_code": sub_code, "sub_msg": "x"}, **options)


# -- requests: what is signed and sent ------------------------------------------------------------------------


@pytest.mark.parametrize("sign_type", ["RSA2", "SM2"])
def test_precreate_request_is_signed_by_alipay_rules(kit: AlipayKit, sign_type: str) -> None:
    adapter, transport = adapter_with(kit.answer("alipay.trade.precreate", {
        "code": "10000", "msg": "Success", "out_trade_no": ATTEMPT, "qr_code": "https://qr.alipay.com/bax0001"},
        sign_type=sign_type))
    result = adapter.create(kit.account(sign_type), create_request())
    assert result.action.type == "qr_code"
    assert result.action.params == {"qr_code": "https://qr.alipay.com/bax0001", "code_url": "https://qr.alipay.com/bax0001"}
    request = transport.requests[0]
    assert (request.method, request.url) == ("POST", "https://openapi.test.invalid/gateway.do?charset=utf-8")
    params = sent(request)
    assert {k: params[k] for k in ("app_id", "method", "format", "charset", "sign_type", "timestamp", "version",
                                   "notify_url")} == {
        "app_id": APP_ID, "method": "alipay.trade.precreate", "format": "JSON", "charset": "utf-8",
        "sign_type": sign_type, "timestamp": "2024-05-20 12:00:00", "version": "1.0",
        "notify_url": "https://hub.example/callbacks/alipay/alipay-test"}
    assert biz(request) == {"out_trade_no": ATTEMPT, "total_amount": "88.88", "subject": "绿茶 Green tea",
                            "product_code": "FACE_TO_FACE_PAYMENT", "time_expire": "2024-05-20 14:00:00"}
    public = der_b64(kit.app_rsa.public_key()) if sign_type == "RSA2" else kit.app_sm2_public
    # sign covers every other parameter, sign_type included, sorted, raw values
    assert signing.verify(sign_type, public, canonical(params, ("sign",)), params["sign"])
    assert not signing.verify(sign_type, public, canonical(params, ("sign", "sign_type")), params["sign"])


@pytest.mark.parametrize(("method", "api_method", "product_code"), [
    ("alipay.page", "alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
    ("alipay.wap", "alipay.trade.wap.pay", "QUICK_WAP_WAY"),
])
def test_page_and_wap_redirect_to_the_gateway_with_signed_params(kit: AlipayKit, method: str, api_method: str,
                                                                 product_code: str) -> None:
    adapter, transport = adapter_with()
    result = adapter.create(kit.account(), create_request(method, amount=1))
    assert transport.requests == []  # the payer's browser carries the order to Alipay
    assert result.channel_order_ref == ATTEMPT and result.action.type == "redirect_url"
    url = urlsplit(result.action.params["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://openapi.test.invalid/gateway.do"
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    assert (params["method"], params["return_url"]) == (api_method, "https://shop.example/done")
    content = json.loads(params["biz_content"])
    assert (content["product_code"], content["total_amount"]) == (product_code, "0.01")
    assert signing.verify("RSA2", der_b64(kit.app_rsa.public_key()), canonical(params, ("sign",)), params["sign"])


def test_form_post_variant_hands_the_fields_to_an_auto_submitting_form(kit: AlipayKit) -> None:
    adapter, _ = adapter_with()
    result = adapter.create(kit.account(page_action="form_post"), create_request("alipay.page"))
    assert result.action.type == "form_post"
    assert result.action.params["url"] == "https://openapi.test.invalid/gateway.do?charset=utf-8"
    fields = result.action.params["fields"]
    assert fields["method"] == "alipay.trade.page.pay"
    assert signing.verify("RSA2", der_b64(kit.app_rsa.public_key()), canonical(fields, ("sign",)), fields["sign"])


def test_app_order_string_is_the_signed_params_url_encoded(kit: AlipayKit) -> None:
    adapter, _ = adapter_with()
    result = adapter.create(kit.account(), create_request("alipay.app"))
    assert result.action.type == "app_params"
    params = dict(parse_qsl(result.action.params["order_string"], keep_blank_values=True))
    assert params["method"] == "alipay.trade.app.pay" and "return_url" not in params
    assert json.loads(params["biz_content"])["product_code"] == "QUICK_MSECURITY_PAY"
    assert signing.verify("RSA2", der_b64(kit.app_rsa.public_key()), canonical(params, ("sign",)), params["sign"])


def test_create_refuses_what_alipay_cannot_take(kit: AlipayKit) -> None:
    adapter, _ = adapter_with()
    with pytest.raises(InvalidRequest, match="CNY"):
        adapter.create(kit.account(), create_request(amount=Money(100, "USD")))
    with pytest.raises(InvalidRequest, match="method"):
        adapter.create(kit.account(), create_request("wechat.native"))


def test_private_key_forms_all_sign(kit: AlipayKit) -> None:
    for form in ("pkcs8_b64", "pkcs1_b64", "pem"):
        adapter, _ = adapter_with()
        result = adapter.create(kit.account(private_key_form=form), create_request("alipay.app"))
        params = dict(parse_qsl(result.action.params["order_string"]))
        assert signing.verify("RSA2", der_b64(kit.app_rsa.public_key()), canonical(params, ("sign",)), params["sign"])


# -- answers: signature over the raw text, errors ---------------------------------------------------------------


def test_answer_signature_is_checked_over_the_raw_response_text(kit: AlipayKit) -> None:
    answer = ok(kit, "alipay.trade.query", trade_status="TRADE_SUCCESS", total_amount="88.88", trade_no="2024")
    tampered = HttpResponse(200, answer.headers, answer.body.replace(b"88.88", b"88.00"))
    reformatted = HttpResponse(200, answer.headers, answer.body.replace(b'": "', b'":"'))  # same JSON, other bytes
    for bad in (tampered, reformatted):
        adapter, _ = adapter_with(bad)
        with pytest.raises(ChannelError) as caught:
            adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY"))
        assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID" and not caught.value.refused


def test_answer_signed_by_an_old_key_still_listed_verifies(kit: AlipayKit) -> None:
    answer = kit.answer("alipay.trade.query", {"code": "10000", "out_trade_no": ATTEMPT, "trade_status": "WAIT_BUYER_PAY",
                                              "total_amount": "1.00"}, key=kit.alipay_rsa_old)
    adapter, _ = adapter_with(answer, answer)
    assert adapter.query(kit.account(), ATTEMPT, Money(100, "CNY")).outcome is PaymentOutcome.PENDING
    with pytest.raises(ChannelError, match="signature"):
        adapter.query(kit.account(keys={"new": kit.alipay_rsa.public_text}), ATTEMPT, Money(100, "CNY"))


def test_unsigned_answers_are_never_trusted(kit: AlipayKit) -> None:
    unsigned_ok = kit.answer("alipay.trade.query", {"code": "10000", "trade_status": "TRADE_SUCCESS"}, signed=False)
    unsigned_refusal = kit.answer("alipay.trade.refund", {"code": "40004", "sub_code": "ACQ.TRADE_NOT_EXIST"},
                                  signed=False)
    gateway_error = kit.answer("x", {"code": "40002", "sub_code": "isv.invalid-app-id"}, signed=False, error_key=True)
    adapter, _ = adapter_with(unsigned_ok, unsigned_refusal, gateway_error)
    with pytest.raises(ChannelError) as caught:
        adapter.query(kit.account(), ATTEMPT, Money(100, "CNY"))
    assert caught.value.channel_code == "RESPONSE_UNSIGNED"
    for claimed in ("ACQ.TRADE_NOT_EXIST", "isv.invalid-app-id"):  # what it claims is named, never acted on
        with pytest.raises(ChannelError) as caught:
            adapter.refund(kit.account(), refund_request())
        assert caught.value.channel_code == "RESPONSE_UNSIGNED" and not caught.value.refused
        assert claimed in caught.value.message


_PAID = {"trade_status": "TRADE_SUCCESS", "total_amount": "88.88", "trade_no": "2024", "send_pay_date": "2024-05-20 12:00:04"}
# Every gateway call whose success answer changes what the hub records, with a success body Alipay could have sent.
_OPERATIONS: dict[str, tuple[str, dict[str, Any], Callable[[AlipayAdapter, Any], object]]] = {
    "precreate": ("alipay.trade.precreate", {"qr_code": "https://qr.alipay.com/forged"},
                  lambda adapter, account: adapter.create(account, create_request())),
    "query": ("alipay.trade.query", _PAID,
              lambda adapter, account: adapter.query(account, ATTEMPT, Money(8888, "CNY"))),
    "close": ("alipay.trade.close", {}, lambda adapter, account: adapter.close(account, ATTEMPT)),
    "refund": ("alipay.trade.refund", {"fund_change": "Y", "refund_fee": "8.88"},
               lambda adapter, account: adapter.refund(account, refund_request())),
    "query_refund": ("alipay.trade.fastpay.refund.query",
                     {"out_request_no": "re_01HZX9", "refund_amount": "8.88", "refund_status": "REFUND_SUCCESS"},
                     lambda adapter, account: adapter.query_refund(account, "re_01HZX9", Money(888, "CNY"),
                                                                   attempt_id=ATTEMPT)),
}


@pytest.mark.parametrize("operation", sorted(_OPERATIONS))
def test_unsigned_success_answer_changes_nothing(kit: AlipayKit, operation: str) -> None:
    method, fields, call = _OPERATIONS[operation]
    unsigned = kit.answer(method, {"code": "10000", "msg": "Success", "out_trade_no": ATTEMPT, **fields}, signed=False)
    adapter, _ = adapter_with(unsigned)
    with pytest.raises(ChannelError) as caught:
        call(adapter, kit.account())
    assert caught.value.channel_code == "RESPONSE_UNSIGNED"
    assert not caught.value.refused and not caught.value.retryable


@pytest.mark.parametrize("operation", sorted(_OPERATIONS))
def test_success_answer_signed_by_a_key_not_alipays_changes_nothing(kit: AlipayKit, operation: str) -> None:
    method, fields, call = _OPERATIONS[operation]
    forged = kit.answer(method, {"code": "10000", "msg": "Success", "out_trade_no": ATTEMPT, **fields},
                        key=kit.alipay_rsa_old)
    adapter, _ = adapter_with(forged)
    with pytest.raises(ChannelError) as caught:
        call(adapter, kit.account(keys={"current": kit.alipay_rsa.public_text}))
    assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID"
    assert not caught.value.refused and not caught.value.retryable


def test_unsigned_not_exist_or_paid_answers_decide_nothing(kit: AlipayKit) -> None:
    """Signed, ACQ.TRADE_NOT_EXIST closes an attempt (close) or is NOT_FOUND (query); unsigned, it decides nothing."""
    not_exist = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "x"}
    adapter, _ = adapter_with(kit.answer("alipay.trade.close", not_exist, signed=False),
                              kit.answer("alipay.trade.query", not_exist, signed=False),
                              kit.answer("alipay.trade.close", {**not_exist, "sub_code": "ACQ.TRADE_HAS_SUCCESS"},
                                         signed=False))
    for call in (lambda: adapter.close(kit.account(), ATTEMPT),
                 lambda: adapter.query(kit.account(), ATTEMPT, Money(1, "CNY")),
                 lambda: adapter.close(kit.account(), ATTEMPT)):
        with pytest.raises(ChannelError) as caught:
            call()
        assert caught.value.channel_code == "RESPONSE_UNSIGNED" and not caught.value.refused


@pytest.mark.parametrize(("operation", "fields"), [
    ("query", {**_PAID, "out_trade_no": "att_SOMEONE_ELSE"}),
    ("query", {**_PAID, "out_trade_no": None}),
    ("precreate", {"qr_code": "https://qr.alipay.com/x", "out_trade_no": "att_SOMEONE_ELSE"}),
    ("refund", {"fund_change": "Y", "out_trade_no": "att_SOMEONE_ELSE"}),
    ("query_refund", {"out_request_no": "re_OTHER", "refund_amount": "8.88", "refund_status": "REFUND_SUCCESS"}),
    ("close", {"out_trade_no": "att_SOMEONE_ELSE"}),
])
def test_genuinely_signed_answer_about_another_trade_changes_nothing(kit: AlipayKit, operation: str,
                                                                     fields: dict[str, Any]) -> None:
    method, _, call = _OPERATIONS[operation]
    payload = {k: v for k, v in {"code": "10000", "msg": "Success", "out_trade_no": ATTEMPT, **fields}.items()
               if v is not None}
    adapter, _ = adapter_with(kit.answer(method, payload))
    with pytest.raises(ChannelError) as caught:
        call(adapter, kit.account())
    assert caught.value.channel_code == "ANSWER_MISMATCH" and not caught.value.refused


@pytest.mark.parametrize(("code", "sub_code", "retryable", "refused"), [
    ("20000", "isp.unknow-error", True, False),
    ("40004", "ACQ.SYSTEM_ERROR", True, False),
    ("40004", "ACQ.TRADE_STATUS_ERROR", False, True),
    ("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", False, True),
    ("40002", "isv.invalid-signature", False, False),  # our key is wrong: not an answer about the refund
    ("40006", "isv.insufficient-isv-permissions", False, True),
    ("99999", "UNHEARD_OF", False, False),
])
def test_error_mapping(kit: AlipayKit, code: str, sub_code: str, retryable: bool, refused: bool) -> None:
    adapter, _ = adapter_with(failed(kit, "alipay.trade.refund", code, sub_code))
    with pytest.raises(ChannelError) as caught:
        adapter.refund(kit.account(), refund_request())
    assert (caught.value.channel_code, caught.value.retryable, caught.value.refused) == (sub_code, retryable, refused)


def test_http_failures_are_retryable(kit: AlipayKit) -> None:
    adapter, _ = adapter_with(HttpResponse(502, {}, b"<html>bad gateway</html>"), HttpResponse(200, {}, b"<html>"))
    with pytest.raises(ChannelError) as caught:
        adapter.query(kit.account(), ATTEMPT, Money(100, "CNY"))
    assert caught.value.retryable
    with pytest.raises(ChannelError, match="malformed"):
        adapter.query(kit.account(), ATTEMPT, Money(100, "CNY"))


def test_duplicate_members_in_an_answer_are_refused(kit: AlipayKit) -> None:
    answer = ok(kit, "alipay.trade.query", trade_status="TRADE_SUCCESS", total_amount="1.00")
    doubled = HttpResponse(200, {}, answer.body[:-1] + b',"sign":"AAAA"}')
    adapter, _ = adapter_with(doubled)
    with pytest.raises(ChannelError, match="duplicate"):
        adapter.query(kit.account(), ATTEMPT, Money(100, "CNY"))


# -- operations ----------------------------------------------------------------------------------------------


def test_query_maps_the_trade_and_not_found(kit: AlipayKit) -> None:
    adapter, transport = adapter_with(
        ok(kit, "alipay.trade.query", trade_status="TRADE_SUCCESS", total_amount="88.88", trade_no="2024052022001",
           send_pay_date="2024-05-20 12:00:04"),
        failed(kit, "alipay.trade.query", "40004", "ACQ.TRADE_NOT_EXIST"))
    status = adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY"))
    assert (status.outcome, status.amount, status.channel_transaction_id) == (
        PaymentOutcome.SUCCEEDED, Money(8888, "CNY"), "2024052022001")
    assert biz(transport.requests[0]) == {"out_trade_no": ATTEMPT}
    assert adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY")).outcome is PaymentOutcome.NOT_FOUND


def test_query_with_a_bad_amount_is_a_channel_error(kit: AlipayKit) -> None:
    adapter, _ = adapter_with(ok(kit, "alipay.trade.query", trade_status="TRADE_SUCCESS", total_amount="8.888"))
    with pytest.raises(ChannelError, match="amount"):
        adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY"))


def test_close_outcomes(kit: AlipayKit) -> None:
    paid_query = ok(kit, "alipay.trade.query", trade_status="TRADE_SUCCESS", total_amount="1.00")
    closed_query = ok(kit, "alipay.trade.query", trade_status="TRADE_CLOSED", total_amount="1.00")
    adapter, transport = adapter_with(
        ok(kit, "alipay.trade.close", out_trade_no=ATTEMPT),
        failed(kit, "alipay.trade.close", "40004", "ACQ.TRADE_NOT_EXIST"),
        failed(kit, "alipay.trade.close", "40004", "ACQ.TRADE_STATUS_ERROR"), paid_query,
        failed(kit, "alipay.trade.close", "40004", "ACQ.TRADE_STATUS_ERROR"), closed_query,
        failed(kit, "alipay.trade.close", "40004", "ACQ.TRADE_HAS_SUCCESS"),
        failed(kit, "alipay.trade.close", "20000", "isp.unknow-error"),
    )
    adapter.close(kit.account(), ATTEMPT)
    assert sent(transport.requests[0])["method"] == "alipay.trade.close"
    adapter.close(kit.account(), ATTEMPT)  # unknown to Alipay: nobody can pay it there
    with pytest.raises(ChannelError) as caught:  # "status does not allow closing" and a query says paid
        adapter.close(kit.account(), ATTEMPT)
    assert caught.value.channel_code == "ORDERPAID" and caught.value.refused
    adapter.close(kit.account(), ATTEMPT)  # closed already
    with pytest.raises(ChannelError) as caught:
        adapter.close(kit.account(), ATTEMPT)
    assert caught.value.channel_code == "ORDERPAID"
    with pytest.raises(ChannelError) as caught:
        adapter.close(kit.account(), ATTEMPT)
    assert caught.value.retryable


def test_refund_with_fund_change_is_done(kit: AlipayKit) -> None:
    adapter, transport = adapter_with(ok(kit, "alipay.trade.refund", fund_change="Y", refund_fee="8.88", trade_no="2024"))
    status = adapter.refund(kit.account(), refund_request())
    assert (status.outcome, status.channel_refund_id) == (RefundOutcome.SUCCEEDED, "2024")
    assert biz(transport.requests[0]) == {"out_trade_no": ATTEMPT, "refund_amount": "8.88", "out_request_no": "re_01HZX9",
                                          "refund_reason": "one cup missing"}


def test_refund_without_fund_change_is_settled_by_a_refund_query(kit: AlipayKit) -> None:
    adapter, transport = adapter_with(
        ok(kit, "alipay.trade.refund", fund_change="N", refund_fee="8.88"),
        ok(kit, "alipay.trade.fastpay.refund.query", out_request_no="re_01HZX9", refund_amount="8.88",
           refund_status="REFUND_SUCCESS", trade_no="2024"),
        ok(kit, "alipay.trade.refund", fund_change="N", refund_fee="0.00"),
        ok(kit, "alipay.trade.fastpay.refund.query", out_trade_no=ATTEMPT))
    repeat = adapter.refund(kit.account(), refund_request())
    assert (repeat.outcome, repeat.amount) == (RefundOutcome.SUCCEEDED, Money(888, "CNY"))
    assert biz(transport.requests[1])["out_request_no"] == "re_01HZX9"
    assert adapter.refund(kit.account(), refund_request()).outcome is RefundOutcome.PROCESSING


def test_query_refund_finds_the_trade_of_the_refund(kit: AlipayKit) -> None:
    looked_up: list[str] = []

    def locator(refund_id: str) -> str | None:
        looked_up.append(refund_id)
        return ATTEMPT if refund_id == "re_01HZX9" else None

    adapter, transport = adapter_with(
        ok(kit, "alipay.trade.fastpay.refund.query", out_request_no="re_01HZX9", refund_amount="8.88",
           refund_status="REFUND_SUCCESS"),
        failed(kit, "alipay.trade.fastpay.refund.query", "40004", "ACQ.TRADE_NOT_EXIST"),
        ok(kit, "alipay.trade.fastpay.refund.query", out_trade_no="att_given", out_request_no="re_X",
           refund_amount="1.00"),
        locator=locator)
    status = adapter.query_refund(kit.account(), "re_01HZX9", Money(888, "CNY"))
    assert (status.outcome, status.amount) == (RefundOutcome.SUCCEEDED, Money(888, "CNY"))
    assert biz(transport.requests[0]) == {"out_trade_no": ATTEMPT, "out_request_no": "re_01HZX9",
                                          "query_options": ["gmt_refund_pay"]}
    assert adapter.query_refund(kit.account(), "re_01HZX9", Money(888, "CNY")).outcome is RefundOutcome.NOT_FOUND
    assert adapter.query_refund(kit.account(), "re_X", Money(100, "CNY"), attempt_id="att_given").outcome is (
        RefundOutcome.SUCCEEDED)
    assert biz(transport.requests[2])["out_trade_no"] == "att_given"
    assert adapter.query_refund(kit.account(), "re_unknown", Money(100, "CNY")).outcome is RefundOutcome.NOT_FOUND
    assert looked_up == ["re_01HZX9", "re_01HZX9", "re_unknown"]


def test_query_refund_with_the_attempt_given_never_reads_the_hubs_records(kit: AlipayKit) -> None:
    def locator(refund_id: str) -> str | None:
        raise AssertionError("the attempt id was given: no lookup")

    adapter, transport = adapter_with(
        ok(kit, "alipay.trade.fastpay.refund.query", out_request_no="re_01HZX9", refund_amount="8.88",
           refund_status="REFUND_SUCCESS"),
        ok(kit, "alipay.trade.query", out_trade_no=ATTEMPT, trade_status="TRADE_SUCCESS", total_amount="88.88",
           trade_no="2024052022001"),
        locator=locator)
    status = adapter.query_refund(kit.account(), "re_01HZX9", Money(888, "CNY"), attempt_id=ATTEMPT,
                                  channel_refund_id="2024052022001", channel_order_ref=ATTEMPT, created_at=NOW)
    assert status.outcome is RefundOutcome.SUCCEEDED
    assert biz(transport.requests[0])["out_trade_no"] == ATTEMPT
    paid = adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY"), channel_order_ref=ATTEMPT)
    assert paid.outcome is PaymentOutcome.SUCCEEDED and biz(transport.requests[1]) == {"out_trade_no": ATTEMPT}


def test_confirm_has_no_step(kit: AlipayKit) -> None:
    adapter, _ = adapter_with()
    request = ConfirmRequest(attempt_id=ATTEMPT, method="alipay.qr", channel_order_ref="x", amount=Money(1, "CNY"),
                             notify_url="https://hub.example/cb")
    with pytest.raises(InvalidState):
        adapter.confirm(kit.account(), request)


def test_account_settings_are_validated(kit: AlipayKit) -> None:
    adapter, _ = adapter_with()
    account = kit.account()
    bad_sign_type = account.config.model_copy(update={"settings": {**account.config.settings, "sign_type": "RSA"}})
    with pytest.raises(ValueError, match="sign_type"):
        adapter.create(type(account)(bad_sign_type, account.secrets), create_request("alipay.app"))
    sm2 = kit.account("SM2")
    no_point = sm2.config.model_copy(update={"settings": {**sm2.config.settings, "app_sm2_public_key": ""}})
    with pytest.raises(ValueError, match="app_sm2_public_key"):
        adapter.create(type(sm2)(no_point, sm2.secrets), create_request("alipay.app"))
