"""UnionPayAdapter through a fake transport: what is signed and sent, how answers decide outcomes."""

from __future__ import annotations

import base64
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from unionpay_kit import (
    MER_ID,
    NOW,
    FakeOrderBook,
    FakeTransport,
    answer_body,
    digest_hex,
    make_kit,
    sent_fields,
    unionpay_signed,
)

from chalicelib.channels.base import (
    CardDetails,
    ConfirmRequest,
    CreateRequest,
    HttpResponse,
    Payer,
    PaymentOutcome,
    RefundOutcome,
    RefundRequest,
)
from chalicelib.channels.unionpay import UnionPayAdapter
from chalicelib.channels.unionpay.order_book import OrderRef
from chalicelib.domain.errors import ChannelError, InvalidRequest, InvalidState
from chalicelib.domain.money import Money

ATTEMPT = "att_abcdefghijklmnopqrstuvwx"
ORDER_ID = "attZ0abcdefghijklmnopqrstuvwx"
REFUND = "re_abcdefghijklmnopqrstuvwx"
TXN = "20240520120000"  # NOW in Beijing
PAN = "6216261000000000018"
CARD = CardDetails(number=PAN, exp_month=12, exp_year=2029, cvv=None, holder_name="张三", phone="13800138000",
                   id_type="01", id_number="110101199001011234")
NOTIFY_URL = "https://hub.example/callbacks/unionpay/unionpay-test"


def adapter_with(*answers: HttpResponse, book: FakeOrderBook | None = None) -> tuple[UnionPayAdapter, FakeTransport]:
    transport = FakeTransport(list(answers))
    return UnionPayAdapter(transport, clock=lambda: NOW, order_book=book or FakeOrderBook()), transport


def create_request(method: str, card: CardDetails | None = None) -> CreateRequest:
    return CreateRequest(attempt_id=ATTEMPT, method=method, amount=Money(8888, "CNY"), description="茶",
                         notify_url=NOTIFY_URL, expires_at=NOW + timedelta(minutes=30), payer=Payer(),
                         return_url="https://shop.example/back", card=card)


def assert_signed_by_merchant(fields: dict[str, str]) -> None:
    kit = make_kit()
    assert fields["certId"] == kit.merchant_cert_id and fields["signMethod"] == "01" and fields["version"] == "5.1.0"
    kit.merchant_key.public_key().verify(base64.b64decode(fields["signature"]), digest_hex(fields), padding.PKCS1v15(),
                                         hashes.SHA256())


def customer_info(fields: dict[str, str]) -> dict[str, str]:
    text = base64.b64decode(fields["customerInfo"]).decode()
    assert text.startswith("{") and text.endswith("}")
    return dict(item.split("=", 1) for item in text[1:-1].split("&"))


# -- gateway and QuickPass ------------------------------------------------------------------------------------------


def test_gateway_create_returns_a_signed_form_and_sends_nothing():
    adapter, transport = adapter_with()
    result = adapter.create(make_kit().account(), create_request("unionpay.gateway"))
    assert transport.requests == []
    assert result.channel_order_ref == TXN
    assert result.action.type == "form_post"
    assert result.action.params["url"] == "https://gateway.test.invalid/gateway/api/frontTransReq.do"
    fields = dict(result.action.params["fields"])
    assert_signed_by_merchant(fields)
    assert {k: fields[k] for k in ("txnType", "txnSubType", "bizType", "channelType", "accessType", "currencyCode")} == {
        "txnType": "01", "txnSubType": "01", "bizType": "000201", "channelType": "07", "accessType": "0",
        "currencyCode": "156"}
    assert (fields["merId"], fields["orderId"], fields["txnTime"], fields["txnAmt"]) == (MER_ID, ORDER_ID, TXN, "8888")
    assert fields["backUrl"] == NOTIFY_URL and fields["frontUrl"] == "https://shop.example/back"
    assert fields["payTimeout"] == "20240520123000"


def test_quickpass_create_asks_app_trans_req_for_a_tn():
    kit = make_kit()
    adapter, transport = adapter_with(kit.answer({"respCode": "00", "respMsg": "成功", "tn": "862405201200000012345"}))
    result = adapter.create(kit.account(environment="test"), create_request("unionpay.quickpass"))
    sent = sent_fields(transport.requests[0])
    assert transport.requests[0].url.endswith("/gateway/api/appTransReq.do")
    assert transport.requests[0].headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert_signed_by_merchant(sent)
    assert (sent["channelType"], sent["bizType"], sent["txnType"]) == ("08", "000201", "01")
    assert result.action.type == "app_params" and result.action.params == {"tn": "862405201200000012345", "mode": "01"}
    assert result.channel_order_ref == f"{TXN}:862405201200000012345"


@pytest.mark.parametrize(("code", "retryable", "refused"), [("04", True, False), ("31", False, True), ("11", False, False)])
def test_quickpass_refusals_and_unknowns(code, retryable, refused):
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer({"respCode": code, "respMsg": "x"}))
    with pytest.raises(ChannelError) as caught:
        adapter.create(kit.account(), create_request("unionpay.quickpass"))
    assert (caught.value.retryable, caught.value.refused, caught.value.channel_code) == (retryable, refused, code)


def test_an_answer_signed_by_an_impostor_is_not_believed():
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer({"respCode": "00", "tn": "1"}, signer=kit.impostor.signer))
    with pytest.raises(ChannelError) as caught:
        adapter.create(kit.account(), create_request("unionpay.quickpass"))
    assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID" and not caught.value.refused


def test_an_unsigned_answer_is_not_believed():
    adapter, _ = adapter_with(HttpResponse(200, {}, b"respCode=00&tn=1"))
    with pytest.raises(ChannelError, match="verification"):
        adapter.create(make_kit().account(), create_request("unionpay.quickpass"))


def test_http_errors_are_retryable_only_when_transient():
    adapter, _ = adapter_with(HttpResponse(503, {}, b""), HttpResponse(404, {}, b""))
    account = make_kit().account()
    with pytest.raises(ChannelError) as first:
        adapter.create(account, create_request("unionpay.quickpass"))
    with pytest.raises(ChannelError) as second:
        adapter.create(account, create_request("unionpay.quickpass"))
    assert first.value.retryable and not second.value.retryable


def test_unknown_methods_and_currencies_are_refused():
    adapter, _ = adapter_with()
    with pytest.raises(InvalidRequest):
        adapter.create(make_kit().account(), create_request("unionpay.qr"))
    request = create_request("unionpay.gateway")
    from dataclasses import replace

    with pytest.raises(InvalidRequest):
        adapter.create(make_kit().account(), replace(request, amount=Money(100, "USD")))


# -- card: SMS, confirm, 3-D Secure ---------------------------------------------------------------------------------


def test_card_create_sends_the_sms_request_with_the_card_encrypted(caplog):
    kit = make_kit()
    caplog.set_level(logging.DEBUG)
    adapter, transport = adapter_with(kit.answer({"respCode": "00", "respMsg": "短信已发送"}))
    result = adapter.create(kit.account(), create_request("unionpay.card", CARD))
    request = transport.requests[0]
    assert request.url.endswith("/gateway/api/backTransReq.do")
    sent = sent_fields(request)
    assert_signed_by_merchant(sent)
    assert (sent["txnType"], sent["txnSubType"], sent["bizType"]) == ("77", "02", "000301")
    assert sent["payTimeout"] == "20240520123000"
    assert sent["encryptCertId"] == kit.encrypt.serial
    assert kit.decrypt(sent["accNo"]) == PAN
    info = customer_info(sent)
    assert kit.decrypt(info.pop("encryptedInfo")) == "phoneNo=13800138000&expired=2912"
    assert info == {"certifTp": "01", "certifId": "110101199001011234", "customerNm": "张三"}
    assert PAN.encode() not in request.body and b"13800138000" not in request.body
    assert result.action.type == "sms_verification"
    assert result.action.params == {"phone_masked": "138****8000", "card_last4": "0018"}
    assert result.channel_order_ref == TXN
    assert PAN not in caplog.text and "13800138000" not in caplog.text


def test_card_create_without_a_card_or_phone_is_invalid():
    adapter, _ = adapter_with()
    from dataclasses import replace

    with pytest.raises(InvalidRequest):
        adapter.create(make_kit().account(), create_request("unionpay.card"))
    with pytest.raises(InvalidRequest):
        adapter.create(make_kit().account(), create_request("unionpay.card", replace(CARD, phone=None)))


def test_card_create_with_a_card_unionpay_refuses_is_invalid():
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer({"respCode": "60", "respMsg": "卡号无效"}))
    with pytest.raises(InvalidRequest, match="card"):
        adapter.create(kit.account(), create_request("unionpay.card", CARD))


def confirm_request(inputs: dict[str, str], card: CardDetails | None = CARD) -> ConfirmRequest:
    return ConfirmRequest(attempt_id=ATTEMPT, method="unionpay.card", channel_order_ref=TXN, amount=Money(8888, "CNY"),
                          notify_url=NOTIFY_URL, inputs=inputs, card=card)


def test_confirm_sends_the_consume_with_the_sms_code_and_cvv():
    kit = make_kit()
    adapter, transport = adapter_with(kit.answer({"respCode": "00", "respMsg": "成功", "queryId": "Q1"}))
    result = adapter.confirm(kit.account(), confirm_request({"sms_code": "123456", "cvv": "123"}))
    sent = sent_fields(transport.requests[0])
    assert_signed_by_merchant(sent)
    assert (sent["txnType"], sent["txnSubType"], sent["bizType"], sent["orderId"], sent["txnTime"]) == (
        "01", "01", "000301", ORDER_ID, TXN)
    assert sent["backUrl"] == NOTIFY_URL and kit.decrypt(sent["accNo"]) == PAN
    info = customer_info(sent)
    assert info["smsCode"] == "123456"
    assert kit.decrypt(info["encryptedInfo"]) == "phoneNo=13800138000&cvn2=123&expired=2912"
    assert b"smsCode" not in transport.requests[0].body  # the code travels only inside customerInfo
    assert result.status.outcome is PaymentOutcome.PROCESSING and result.action is None


def test_confirm_answered_with_a_challenge_returns_three_ds():
    kit = make_kit()
    url = "https://gateway.test.invalid/_sandbox/challenge/abc"
    adapter, _ = adapter_with(kit.answer({"respCode": "00", "challengeUrl": url}))
    result = adapter.confirm(kit.account(), confirm_request({"sms_code": "1", "cvv": "123"}))
    assert result.status.outcome is PaymentOutcome.PROCESSING
    assert result.action is not None and (result.action.type, result.action.params) == ("three_ds", {"redirect_url": url})


@pytest.mark.parametrize(("code", "param"), [("70", "sms_code"), ("63", "cvv"), ("62", "card")])
def test_confirm_with_something_mistyped_is_invalid_and_changes_nothing(code, param):
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer({"respCode": code, "respMsg": "x"}))
    with pytest.raises(InvalidRequest) as caught:
        adapter.confirm(kit.account(), confirm_request({"sms_code": "000000"}))
    assert caught.value.param == param


def test_confirm_declined_is_failed():
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer({"respCode": "61", "respMsg": "余额不足"}))
    result = adapter.confirm(kit.account(), confirm_request({"sms_code": "1"}))
    assert (result.status.outcome, result.status.raw_status) == (PaymentOutcome.FAILED, "61")


def test_confirm_unknown_answer_is_processing():
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer({"respCode": "03"}))
    assert adapter.confirm(kit.account(), confirm_request({"sms_code": "1"})).status.outcome is PaymentOutcome.PROCESSING


def query_answer(orig: str, txn_type: str = "01", **more: str) -> dict[str, str]:
    return {"respCode": "00", "origRespCode": orig, "txnType": txn_type, "queryId": "782405201200000000010",
            "txnAmt": "8888", "currencyCode": "156", "txnTime": TXN, "traceTime": "0520120005", "orderId": ORDER_ID,
            "merId": MER_ID, **more}


def test_a_repeated_confirm_answers_the_current_status():
    kit = make_kit()
    adapter, transport = adapter_with(kit.answer({"respCode": "12", "respMsg": "重复交易"}), kit.answer(query_answer("00")))
    result = adapter.confirm(kit.account(), confirm_request({"sms_code": "1"}))
    assert result.status.outcome is PaymentOutcome.SUCCEEDED
    assert transport.requests[1].url.endswith("/gateway/api/queryTrans.do")


def test_confirm_without_a_code_reports_the_status_once_the_code_was_taken_or_asks_for_it():
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer(query_answer("00")), kit.answer(query_answer("05")),
                              kit.answer(query_answer("00", txn_type="77")), kit.answer({"respCode": "34"}))
    assert adapter.confirm(kit.account(), confirm_request({})).status.outcome is PaymentOutcome.SUCCEEDED
    assert adapter.confirm(kit.account(), confirm_request({})).status.outcome is PaymentOutcome.PROCESSING
    for _ in range(2):
        with pytest.raises(InvalidRequest, match="sms_code"):
            adapter.confirm(kit.account(), confirm_request({}))


def test_confirm_is_for_cards_only():
    adapter, _ = adapter_with()
    request = confirm_request({"sms_code": "1"})
    from dataclasses import replace

    with pytest.raises(InvalidState):
        adapter.confirm(make_kit().account(), replace(request, method="unionpay.gateway"))


# -- query and close ------------------------------------------------------------------------------------------------------


def book_with_payment() -> FakeOrderBook:
    return FakeOrderBook(payments={ATTEMPT: OrderRef(TXN, "unionpay.gateway")},
                         refunds={REFUND: OrderRef("20240520130000", "unionpay.gateway")})


def test_query_sends_order_id_and_the_original_txn_time():
    kit = make_kit()
    adapter, transport = adapter_with(kit.answer(query_answer("00")), book=book_with_payment())
    status = adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY"))
    sent = sent_fields(transport.requests[0])
    assert_signed_by_merchant(sent)
    assert (sent["txnType"], sent["txnSubType"], sent["bizType"], sent["orderId"], sent["txnTime"]) == (
        "00", "00", "000000", ORDER_ID, TXN)
    assert status.outcome is PaymentOutcome.SUCCEEDED and status.amount == Money(8888, "CNY")
    assert status.channel_transaction_id == "782405201200000000010"


@pytest.mark.parametrize(("orig", "outcome"), [
    ("00", PaymentOutcome.SUCCEEDED), ("03", PaymentOutcome.PENDING), ("04", PaymentOutcome.PENDING),
    ("05", PaymentOutcome.PENDING), ("61", PaymentOutcome.FAILED), ("06", PaymentOutcome.FAILED),
    ("", PaymentOutcome.PENDING), ("A6", PaymentOutcome.PENDING), ("xyz", PaymentOutcome.PENDING),
])
def test_query_reads_orig_resp_code(orig, outcome):
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer(query_answer(orig)), book=book_with_payment())
    assert adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY")).outcome is outcome


def test_query_of_an_order_with_only_its_sms_is_pending():
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer(query_answer("00", txn_type="77")), book=book_with_payment())
    assert adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY")).outcome is PaymentOutcome.PENDING


def test_query_resp_code_34_is_not_found_and_other_failures_decide_nothing():
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer({"respCode": "34", "respMsg": "查无此交易"}), kit.answer({"respCode": "37"}),
                              book=book_with_payment())
    assert adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY")).outcome is PaymentOutcome.NOT_FOUND
    with pytest.raises(ChannelError) as caught:
        adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY"))
    assert caught.value.retryable


def test_query_without_a_recorded_txn_time_cannot_run():
    adapter, _ = adapter_with()
    with pytest.raises(ChannelError, match="txnTime"):
        adapter.query(make_kit().account(), ATTEMPT, Money(1, "CNY"))


def test_close_of_a_paid_order_is_orderpaid():
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer(query_answer("00")), book=book_with_payment())
    with pytest.raises(ChannelError) as caught:
        adapter.close(kit.account(), ATTEMPT)
    assert caught.value.channel_code == "ORDERPAID"


def test_close_of_an_order_being_paid_waits():
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer(query_answer("05")), book=book_with_payment())
    with pytest.raises(ChannelError) as caught:
        adapter.close(kit.account(), ATTEMPT)
    assert caught.value.channel_code == "ORDERPAYING" and caught.value.retryable


@pytest.mark.parametrize("answer", [{"respCode": "34"}, query_answer("06"), query_answer("00", txn_type="77")])
def test_close_of_an_unpaid_order_is_recorded_locally(answer):
    kit = make_kit()
    adapter, transport = adapter_with(kit.answer(answer), book=book_with_payment())
    adapter.close(kit.account(), ATTEMPT)
    assert len(transport.requests) == 1  # the query; there is no close message in ACP


# -- refunds ---------------------------------------------------------------------------------------------------------------


def refund_request() -> RefundRequest:
    return RefundRequest(refund_id=REFUND, attempt_id=ATTEMPT, channel_transaction_id="782405201200000000010",
                         amount=Money(888, "CNY"), attempt_amount=Money(8888, "CNY"), reason="x", notify_url=NOTIFY_URL)


def test_refund_sends_txn_type_04_with_orig_qry_id_and_its_own_order():
    kit = make_kit()
    adapter, transport = adapter_with(kit.answer({"respCode": "00", "queryId": "R1"}), book=book_with_payment())
    status = adapter.refund(kit.account(), refund_request())
    sent = sent_fields(transport.requests[0])
    assert_signed_by_merchant(sent)
    assert (sent["txnType"], sent["txnSubType"], sent["bizType"], sent["origQryId"]) == (
        "04", "00", "000201", "782405201200000000010")
    assert (sent["orderId"], sent["txnTime"], sent["txnAmt"], sent["backUrl"]) == (
        "reZ0abcdefghijklmnopqrstuvwx", "20240520130000", "888", NOTIFY_URL)
    assert status.outcome is RefundOutcome.PROCESSING


def test_a_card_payment_refund_uses_the_quick_pay_biz_type():
    kit = make_kit()
    book = FakeOrderBook(payments={ATTEMPT: OrderRef(TXN, "unionpay.card")}, refunds={REFUND: OrderRef(TXN)})
    adapter, transport = adapter_with(kit.answer({"respCode": "00"}), book=book)
    adapter.refund(kit.account(), refund_request())
    assert sent_fields(transport.requests[0])["bizType"] == "000301"


@pytest.mark.parametrize(("code", "outcome"), [("03", RefundOutcome.PROCESSING), ("12", RefundOutcome.PROCESSING)])
def test_refund_unknown_or_duplicate_is_processing(code, outcome):
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer({"respCode": code}), book=book_with_payment())
    assert adapter.refund(kit.account(), refund_request()).outcome is outcome


@pytest.mark.parametrize("code", ["30", "35", "34"])
def test_refund_refusals_are_refused(code):
    kit = make_kit()
    adapter, _ = adapter_with(kit.answer({"respCode": code}), book=book_with_payment())
    with pytest.raises(ChannelError) as caught:
        adapter.refund(kit.account(), refund_request())
    assert caught.value.refused


def test_refund_query_reads_orig_resp_code_of_the_refund():
    kit = make_kit()
    adapter, transport = adapter_with(kit.answer(query_answer("00", txn_type="04", txnAmt="888",
                                                              orderId="reZ0abcdefghijklmnopqrstuvwx",
                                                              txnTime="20240520130000")),
                                      kit.answer({"respCode": "34"}), book=book_with_payment())
    status = adapter.query_refund(kit.account(), REFUND, Money(888, "CNY"))
    assert status.outcome is RefundOutcome.SUCCEEDED and status.amount == Money(888, "CNY")
    sent = sent_fields(transport.requests[0])
    assert (sent["orderId"], sent["txnTime"]) == ("reZ0abcdefghijklmnopqrstuvwx", "20240520130000")
    assert adapter.query_refund(kit.account(), REFUND, Money(888, "CNY")).outcome is RefundOutcome.NOT_FOUND


def test_request_bodies_are_url_encoded_utf8():
    kit = make_kit()
    adapter, transport = adapter_with(kit.answer(query_answer("00")), book=book_with_payment())
    adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY"))
    pairs = parse_qsl(transport.requests[0].body.decode("ascii"), strict_parsing=True)
    assert len(pairs) == len(dict(pairs))


# -- the references the hub passes: used as given, the order book is not consulted ---------------------------------------


class NoLookupBook:
    """An order book that fails the test if the adapter reads the hub's records although it was given the reference."""

    def payment(self, attempt_id: str) -> OrderRef | None:
        raise AssertionError(f"payment({attempt_id}) looked up although channel_order_ref was given")

    def refund(self, refund_id: str) -> OrderRef | None:
        raise AssertionError(f"refund({refund_id}) looked up although created_at was given")


def no_lookup_adapter(*answers: HttpResponse) -> tuple[UnionPayAdapter, FakeTransport]:
    transport = FakeTransport(list(answers))
    return UnionPayAdapter(transport, clock=lambda: NOW, order_book=NoLookupBook()), transport


@pytest.mark.parametrize("ref", ["20240519083000", "20240519083000:tn778899"])
def test_query_takes_the_txn_time_from_the_given_channel_order_ref(ref):
    kit = make_kit()
    adapter, transport = no_lookup_adapter(kit.answer(query_answer("00", txnTime="20240519083000")))
    status = adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY"), channel_order_ref=ref)
    assert status.outcome is PaymentOutcome.SUCCEEDED
    assert (sent_fields(transport.requests[0])["orderId"], sent_fields(transport.requests[0])["txnTime"]) == (
        ORDER_ID, "20240519083000")


def test_close_takes_the_txn_time_from_the_given_channel_order_ref():
    kit = make_kit()
    adapter, transport = no_lookup_adapter(kit.answer(query_answer("00", txnTime="20240519083000")))
    with pytest.raises(ChannelError) as caught:
        adapter.close(kit.account(), ATTEMPT, channel_order_ref="20240519083000")
    assert caught.value.channel_code == "ORDERPAID"
    assert sent_fields(transport.requests[0])["txnTime"] == "20240519083000"


def test_a_given_reference_that_is_not_ours_falls_back_to_the_order_book():
    kit = make_kit()
    adapter, transport = adapter_with(kit.answer(query_answer("00")), book=book_with_payment())
    adapter.query(kit.account(), ATTEMPT, Money(8888, "CNY"), channel_order_ref="not-a-txn-time")
    assert sent_fields(transport.requests[0])["txnTime"] == TXN


def test_query_refund_takes_the_txn_time_from_the_refunds_creation_time():
    kit = make_kit()
    adapter, transport = no_lookup_adapter(kit.answer(query_answer("00", txn_type="04", txnAmt="888",
                                                                   orderId="reZ0abcdefghijklmnopqrstuvwx",
                                                                   txnTime="20240520133015")))
    created = datetime(2024, 5, 20, 5, 30, 15, tzinfo=UTC)  # 13:30:15 in Beijing
    status = adapter.query_refund(kit.account(), REFUND, Money(888, "CNY"), attempt_id=ATTEMPT,
                                  channel_order_ref=TXN, created_at=created)
    assert status.outcome is RefundOutcome.SUCCEEDED
    sent = sent_fields(transport.requests[0])
    assert (sent["orderId"], sent["txnTime"]) == ("reZ0abcdefghijklmnopqrstuvwx", "20240520133015")


def test_refund_takes_txn_time_and_method_from_the_request():
    kit = make_kit()
    adapter, transport = no_lookup_adapter(kit.answer({"respCode": "00", "queryId": "R1"}))
    request = replace(refund_request(), created_at=datetime(2024, 5, 20, 5, 30, 15, tzinfo=UTC), method="unionpay.card")
    assert adapter.refund(kit.account(), request).outcome is RefundOutcome.PROCESSING
    sent = sent_fields(transport.requests[0])
    assert (sent["txnTime"], sent["bizType"]) == ("20240520133015", "000301")


# -- every answer that can change state must be UnionPay's, about this message -------------------------------------

_REFUND_ORDER = "reZ0abcdefghijklmnopqrstuvwx"
# Operation -> (the call, a success answer UnionPay could have sent for it).
_OPERATIONS = {
    "quickpass_create": (lambda adapter, account: adapter.create(account, create_request("unionpay.quickpass")),
                         {"respCode": "00", "respMsg": "成功", "tn": "862405201200000012345", "orderId": ORDER_ID}),
    "query": (lambda adapter, account: adapter.query(account, ATTEMPT, Money(8888, "CNY"), channel_order_ref=TXN),
              query_answer("00")),
    "confirm": (lambda adapter, account: adapter.confirm(account, confirm_request({"sms_code": "123456"})),
                {"respCode": "00", "respMsg": "成功", "queryId": "Q1", "orderId": ORDER_ID, "txnTime": TXN}),
    "refund": (lambda adapter, account: adapter.refund(account, replace(refund_request(), created_at=NOW)),
               {"respCode": "00", "queryId": "R1", "orderId": _REFUND_ORDER, "txnTime": TXN}),
    "query_refund": (lambda adapter, account: adapter.query_refund(account, REFUND, Money(888, "CNY"),
                                                                   created_at=NOW),
                     query_answer("00", txn_type="04", txnAmt="888", orderId=_REFUND_ORDER)),
}


def _unsigned(fields: dict[str, str]) -> HttpResponse:
    """Valid ACP text saying success, with UnionPay's certificate attached but no signature over it."""
    signed = unionpay_signed(fields, make_kit().chain.signer)
    del signed["signature"]
    return HttpResponse(200, {"content-type": "text/plain;charset=UTF-8"}, answer_body(signed))


@pytest.mark.parametrize("operation", sorted(_OPERATIONS))
@pytest.mark.parametrize("forgery", ["unsigned", "impostor_chain", "signed_by_other_key", "tampered"])
def test_an_answer_not_signed_by_unionpay_changes_nothing(operation: str, forgery: str) -> None:
    kit = make_kit()
    call, fields = _OPERATIONS[operation]
    if forgery == "unsigned":
        answer = _unsigned(fields)
    elif forgery == "impostor_chain":
        answer = kit.answer(fields, signer=kit.impostor.signer)
    elif forgery == "signed_by_other_key":  # UnionPay's genuine certificate, someone else's key behind the signature
        answer = HttpResponse(200, {}, answer_body(unionpay_signed(fields, kit.chain.signer, key=kit.merchant_key)))
    else:
        genuine = kit.answer({**fields, "respMsg": "处理中"})
        answer = HttpResponse(200, genuine.headers, genuine.body.replace("处理中".encode(), "成功了".encode()))
    adapter, _ = adapter_with(answer, book=book_with_payment())
    with pytest.raises(ChannelError) as caught:
        call(adapter, kit.account())
    assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID"
    assert not caught.value.refused and not caught.value.retryable


@pytest.mark.parametrize(("operation", "field", "other"), [
    ("query", "orderId", "attZ0someoneelsesorder0000000"),
    ("query", "txnTime", "20240519083000"),
    ("query", "merId", "777290058110099"),
    ("query_refund", "orderId", ORDER_ID),
    ("refund", "orderId", "reZ0someoneelsesrefund0000000"),
    ("quickpass_create", "orderId", "attZ0someoneelsesorder0000000"),
])
def test_a_genuine_answer_about_another_message_changes_nothing(operation: str, field: str, other: str) -> None:
    kit = make_kit()
    call, fields = _OPERATIONS[operation]
    adapter, _ = adapter_with(kit.answer({**fields, field: other}), book=book_with_payment())
    with pytest.raises(ChannelError) as caught:
        call(adapter, kit.account())
    assert caught.value.channel_code == "ANSWER_MISMATCH" and not caught.value.refused


@pytest.mark.parametrize("operation", sorted(_OPERATIONS))
def test_the_genuine_answers_used_above_are_accepted(operation: str) -> None:
    """The control for the two tests above: the same answers, signed by UnionPay, go through."""
    kit = make_kit()
    call, fields = _OPERATIONS[operation]
    adapter, _ = adapter_with(kit.answer(fields), book=book_with_payment())
    call(adapter, kit.account())
