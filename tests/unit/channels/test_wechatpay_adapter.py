"""WeChatPayAdapter through a fake transport: request shape, signatures both ways, outcomes and errors.

The last section exercises the shared ``UrllibTransport`` against a loopback HTTP server (no outside network).
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from urllib3 import HTTPSConnectionPool
from wechatpay_kit import (
    APPID,
    MCHID,
    MERCHANT_SERIAL,
    NOW,
    FakeTransport,
    PlatformKey,
    WeChatKit,
    rsa_pair,
    transaction,
)

from chalicelib.channels.base import (
    CreateRequest,
    HttpRequest,
    HttpResponse,
    Payer,
    PaymentOutcome,
    RefundOutcome,
    RefundRequest,
)
from chalicelib.channels.transport import UrllibTransport
from chalicelib.channels.wechatpay import WeChatPayAdapter
from chalicelib.channels.wechatpay.credentials import WeChatCredentials
from chalicelib.channels.wechatpay.orders import create_body
from chalicelib.channels.wechatpay.signing import (
    app_pay_sign_message,
    jsapi_pay_sign_message,
    parse_authorization_header,
    request_message,
)
from chalicelib.channels.wechatpay.states import (
    fen_to_money,
    money_to_fen,
    payment_outcome,
)
from chalicelib.crypto import rsa
from chalicelib.crypto.sm import sm2_verify
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

Signed = Callable[..., HttpResponse]


def _create_request(method: str = "wechat.jsapi", **overrides: Any) -> CreateRequest:
    values: dict[str, Any] = {
        "attempt_id": "att_01HZX3", "method": method, "amount": Money(8888, "CNY"),
        "description": "Image形象店-深圳腾大",
        "notify_url": "https://hub.example/callbacks/wechatpay/wx-test", "expires_at": NOW + timedelta(minutes=30),
        "payer": Payer(openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", ip="203.0.113.7"),
    }
    values.update(overrides)
    return CreateRequest(**values)


@pytest.fixture(scope="module")
def impostor(kit: WeChatKit) -> PlatformKey:
    """A key WeChat never held, presenting the serial of the account's real platform key."""
    private, _, public = rsa_pair()
    return PlatformKey(kit.platform_rsa.serial, kit.platform_rsa.scheme, public, private)


def _adapter(transport: FakeTransport) -> WeChatPayAdapter:
    return WeChatPayAdapter(transport, clock=lambda: NOW)


def _assert_merchant_signed(kit: WeChatKit, request: HttpRequest) -> dict[str, str]:
    fields = parse_authorization_header(request.headers["Authorization"])
    assert (fields["mchid"], fields["serial_no"]) == (MCHID, MERCHANT_SERIAL)
    assert fields["timestamp"] == str(int(NOW.timestamp()))
    message = request_message(request.method, request.url, fields["timestamp"], fields["nonce_str"], request.body)
    signature = base64.b64decode(fields["signature"])
    if fields["scheme"] == "WECHATPAY2-SM2-WITH-SM3":
        assert sm2_verify(kit.merchant_sm2_public, message, signature)
    else:
        assert rsa.verify_sha256(kit.merchant_rsa.public_key(), message, signature)
    return fields


# --- create ----------------------------------------------------------------------------------------


def test_jsapi_create_request_and_client_params(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(200, {"prepay_id": "wx201410272009395522657a690389285100"})])
    result = _adapter(transport).create(kit.account(), _create_request())
    request = transport.requests[0]
    assert (request.method, request.url) == ("POST", "https://api.test.invalid/v3/pay/transactions/jsapi")
    assert request.headers["Accept"] == "application/json" and request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"]
    body = json.loads(request.body)
    assert body == {
        "appid": APPID, "mchid": MCHID, "description": "Image形象店-深圳腾大", "out_trade_no": "att_01HZX3",
        "time_expire": "2024-05-20T12:30:00+08:00", "notify_url": "https://hub.example/callbacks/wechatpay/wx-test",
        "amount": {"total": 8888, "currency": "CNY"}, "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
    }
    _assert_merchant_signed(kit, request)
    assert result.channel_order_ref == "wx201410272009395522657a690389285100"
    params = dict(result.action.params)
    assert result.action.type == "jsapi_params"
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["package"] == "prepay_id=wx201410272009395522657a690389285100" and params["signType"] == "RSA"
    message = jsapi_pay_sign_message(APPID, params["timeStamp"], params["nonceStr"], result.channel_order_ref)
    assert rsa.verify_sha256(kit.merchant_rsa.public_key(), message, base64.b64decode(params["paySign"]))


def test_miniprogram_params_have_no_app_id(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(200, {"prepay_id": "wx2"})])
    result = _adapter(transport).create(kit.account(), _create_request("wechat.miniprogram"))
    assert transport.requests[0].url.endswith("/v3/pay/transactions/jsapi")
    assert result.action.type == "jsapi_params" and "appId" not in result.action.params


def test_app_params_sign_bare_prepay_id(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(200, {"prepay_id": "wx3"})])
    result = _adapter(transport).create(kit.account(), _create_request("wechat.app", payer=Payer()))
    assert transport.requests[0].url.endswith("/v3/pay/transactions/app")
    params = result.action.params
    assert result.action.type == "app_params"
    assert (params["appid"], params["partnerid"], params["prepayid"], params["package"]) == \
        (APPID, MCHID, "wx3", "Sign=WXPay")
    signature = base64.b64decode(params["sign"])
    public = kit.merchant_rsa.public_key()
    assert rsa.verify_sha256(public, app_pay_sign_message(APPID, params["timestamp"], params["noncestr"], "wx3"),
                             signature)
    assert not rsa.verify_sha256(public, jsapi_pay_sign_message(APPID, params["timestamp"], params["noncestr"],
                                                                "wx3"), signature)


def test_native_returns_qr_code(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(200, {"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"})])
    result = _adapter(transport).create(kit.account(), _create_request("wechat.native", payer=Payer()))
    assert "payer" not in json.loads(transport.requests[0].body)
    assert (result.action.type, dict(result.action.params)) == ("qr_code", {"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"})


def test_h5_sends_scene_info_and_appends_redirect(kit: WeChatKit, signed_response: Signed) -> None:
    h5_url = "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx4&package=2150917749"
    transport = FakeTransport([signed_response(200, {"h5_url": h5_url})])
    request = _create_request("wechat.h5", return_url="https://shop.example/done?o=1")
    result = _adapter(transport).create(kit.account(), request)
    body = json.loads(transport.requests[0].body)
    assert body["scene_info"] == {"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}}
    assert result.action.type == "redirect_url"
    assert result.action.params["url"] == h5_url + "&redirect_url=https%3A%2F%2Fshop.example%2Fdone%3Fo%3D1"


@pytest.mark.parametrize(("request_", "param"), [
    (_create_request("wechat.jsapi", payer=Payer(ip="1.2.3.4")), "payer.openid"),
    (_create_request("wechat.miniprogram", payer=Payer()), "payer.openid"),
    (_create_request("wechat.h5", payer=Payer(openid="o")), "payer.ip"),
    (_create_request(amount=Money(100, "USD")), "currency"),
    (_create_request(amount=Money(0, "CNY")), "amount"),
    (_create_request("alipay.page"), "method"),
])
def test_invalid_create_requests_send_nothing(kit: WeChatKit, request_: CreateRequest, param: str) -> None:
    transport = FakeTransport()
    with pytest.raises(InvalidRequest) as caught:
        _adapter(transport).create(kit.account(), request_)
    assert caught.value.param == param
    assert transport.requests == []


def test_sm2_account_signs_with_sm2(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(200, {"code_url": "weixin://x"}, key=kit.platform_sm2)])
    _adapter(transport).create(kit.account("SM2"), _create_request("wechat.native"))
    fields = _assert_merchant_signed(kit, transport.requests[0])
    assert fields["scheme"] == "WECHATPAY2-SM2-WITH-SM3"


# --- response verification and errors --------------------------------------------------------------


def test_response_with_bad_signature_rejected(kit: WeChatKit, signed_response: Signed) -> None:
    response = signed_response(200, {"prepay_id": "wx5"})
    forged = HttpResponse(response.status, response.headers, response.body.replace(b"wx5", b"wx6"))
    with pytest.raises(ChannelError) as caught:
        _adapter(FakeTransport([forged])).create(kit.account(), _create_request())
    assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID"


def test_stale_signed_response_rejected(kit: WeChatKit, signed_response: Signed) -> None:
    stale = signed_response(200, {"prepay_id": "wx5"}, ts=int(NOW.timestamp()) - 600)
    with pytest.raises(ChannelError, match="timestamp"):
        _adapter(FakeTransport([stale])).create(kit.account(), _create_request())


# Every operation whose 2xx answer could change what the hub records, with a genuine-looking success body.
_OPERATIONS: dict[str, tuple[Callable[[WeChatPayAdapter, Any], object], int, dict[str, Any] | None]] = {
    "create": (lambda adapter, account: adapter.create(account, _create_request("wechat.native")), 200,
               {"code_url": "weixin://wxpay/bizpayurl?pr=forged"}),
    "query": (lambda adapter, account: adapter.query(account, "att_01HZX3", Money(8888, "CNY")), 200,
              transaction(total=8888, out_trade_no="att_01HZX3")),
    "close": (lambda adapter, account: adapter.close(account, "att_01HZX3"), 204, None),
    "refund": (lambda adapter, account: adapter.refund(account, _refund_request()), 200,
               {"out_refund_no": "rf_01", "refund_id": "5", "status": "SUCCESS", "amount": {"refund": 100}}),
    "query_refund": (lambda adapter, account: adapter.query_refund(account, "rf_01", Money(100, "CNY")), 200,
                     {"out_refund_no": "rf_01", "refund_id": "5", "status": "SUCCESS", "amount": {"refund": 100}}),
}


@pytest.mark.parametrize("operation", sorted(_OPERATIONS))
def test_unsigned_success_answer_is_refused(kit: WeChatKit, signed_response: Signed, operation: str) -> None:
    call, status, payload = _OPERATIONS[operation]
    transport = FakeTransport([signed_response(status, payload, sign=False)])
    with pytest.raises(ChannelError) as caught:
        call(_adapter(transport), kit.account())
    assert caught.value.channel_code == "RESPONSE_UNSIGNED"
    assert not caught.value.refused and not caught.value.retryable  # outcome unknown: only a signed query decides


@pytest.mark.parametrize("operation", sorted(_OPERATIONS))
def test_success_answer_signed_by_a_key_wechat_does_not_hold_is_refused(
    kit: WeChatKit, signed_response: Signed, impostor: PlatformKey, operation: str
) -> None:
    call, status, payload = _OPERATIONS[operation]
    transport = FakeTransport([signed_response(status, payload, key=impostor)])
    with pytest.raises(ChannelError) as caught:
        call(_adapter(transport), kit.account())
    assert caught.value.channel_code == "RESPONSE_SIGNATURE_INVALID"
    assert not caught.value.refused and not caught.value.retryable


@pytest.mark.parametrize(("operation", "status", "payload"), [
    ("query", 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}),
    ("close", 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}),
    ("close", 400, {"code": "ORDERPAID", "message": "该订单已支付"}),
    ("refund", 400, {"code": "INVALID_REQUEST", "message": "退款金额超过可退金额"}),
    ("query_refund", 404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}),
])
def test_unsigned_error_answer_decides_nothing(
    kit: WeChatKit, signed_response: Signed, operation: str, status: int, payload: dict[str, Any]
) -> None:
    """Signed, these answers are outcomes (not found, closed, paid, refused); unsigned, they are only noise."""
    call = _OPERATIONS[operation][0]
    transport = FakeTransport([signed_response(status, payload, sign=False)])
    with pytest.raises(ChannelError) as caught:
        call(_adapter(transport), kit.account())
    assert caught.value.channel_code == f"HTTP_{status}"
    assert not caught.value.refused and not caught.value.retryable
    assert payload["code"] in caught.value.message  # what it claimed is logged, not acted on


def test_unsigned_server_error_stays_retryable(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(502, {"code": "ORDER_NOT_EXIST\nforged log line"}, sign=False)])
    with pytest.raises(ChannelError) as caught:
        _adapter(transport).query(kit.account(), "att_01HZX3", Money(1, "CNY"))
    assert (caught.value.channel_code, caught.value.retryable, caught.value.refused) == ("HTTP_502", True, False)
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(("operation", "payload"), [
    ("query", transaction(out_trade_no="att_SOMEONE_ELSE")),
    ("query", {k: v for k, v in transaction(out_trade_no="att_01HZX3").items() if k != "out_trade_no"}),
    ("query", {**transaction(out_trade_no="att_01HZX3"), "mchid": "1900000999"}),
    ("refund", {"out_refund_no": "rf_other", "refund_id": "5", "status": "SUCCESS", "amount": {"refund": 100}}),
    ("query_refund", {"refund_id": "5", "status": "SUCCESS", "amount": {"refund": 100}}),
])
def test_genuinely_signed_answer_about_another_order_is_refused(
    kit: WeChatKit, signed_response: Signed, operation: str, payload: dict[str, Any]
) -> None:
    call = _OPERATIONS[operation][0]
    with pytest.raises(ChannelError) as caught:
        call(_adapter(FakeTransport([signed_response(200, payload)])), kit.account())
    assert caught.value.channel_code == "ANSWER_MISMATCH" and not caught.value.refused


@pytest.mark.parametrize(("status", "code", "retryable"), [
    (500, "SYSTEM_ERROR", True), (429, "FREQUENCY_LIMITED", True), (400, "PARAM_ERROR", False),
    (401, "SIGN_ERROR", False), (403, "ORDERPAID", False), (503, None, True),
])
def test_channel_errors_carry_code_and_retryability(
    kit: WeChatKit, signed_response: Signed, status: int, code: str | None, retryable: bool
) -> None:
    payload = {"code": code, "message": "detail"} if code else None
    transport = FakeTransport([signed_response(status, payload, sign=code is not None)])
    with pytest.raises(ChannelError) as caught:
        _adapter(transport).create(kit.account(), _create_request())
    assert caught.value.channel_code == (code or f"HTTP_{status}")
    assert caught.value.retryable is retryable
    assert "Authorization" not in str(caught.value) and "WECHATPAY2" not in str(caught.value)


# --- query, close, refund --------------------------------------------------------------------------


def test_query_by_out_trade_no(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(200, transaction(total=8888, out_trade_no="att_01HZX3"))])
    status = _adapter(transport).query(kit.account(), "att_01HZX3", Money(8888, "CNY"))
    request = transport.requests[0]
    assert (request.method, request.body) == ("GET", b"")
    assert request.url == "https://api.test.invalid/v3/pay/transactions/out-trade-no/att_01HZX3?mchid=1900000109"
    _assert_merchant_signed(kit, request)
    assert status.outcome is PaymentOutcome.SUCCEEDED and status.amount == Money(8888, "CNY")


@pytest.mark.parametrize(("state", "outcome"), [
    ("SUCCESS", PaymentOutcome.SUCCEEDED), ("REFUND", PaymentOutcome.SUCCEEDED), ("NOTPAY", PaymentOutcome.PENDING),
    ("USERPAYING", PaymentOutcome.PROCESSING), ("CLOSED", PaymentOutcome.CLOSED), ("REVOKED", PaymentOutcome.CLOSED),
    ("PAYERROR", PaymentOutcome.FAILED), ("ACCEPT", PaymentOutcome.PENDING), ("BRAND_NEW", PaymentOutcome.PENDING),
    ("", PaymentOutcome.PENDING), ("success", PaymentOutcome.PENDING),
])
def test_trade_state_mapping_unknown_is_pending(state: str, outcome: PaymentOutcome) -> None:
    assert payment_outcome(state) is outcome


def test_query_unknown_order_is_not_found(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})])
    status = _adapter(transport).query(kit.account(), "att_x", Money(1, "CNY"))
    assert status.outcome is PaymentOutcome.NOT_FOUND


def test_close(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(204)])
    _adapter(transport).close(kit.account(), "att_01HZX3")
    request = transport.requests[0]
    assert request.url.endswith("/v3/pay/transactions/out-trade-no/att_01HZX3/close")
    assert json.loads(request.body) == {"mchid": MCHID}
    _assert_merchant_signed(kit, request)


def test_close_paid_order_raises_orderpaid(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(400, {"code": "ORDERPAID", "message": "该订单已支付"})])
    with pytest.raises(ChannelError) as caught:
        _adapter(transport).close(kit.account(), "att_01HZX3")
    assert caught.value.channel_code == "ORDERPAID" and not caught.value.retryable


def test_close_of_an_order_the_channel_never_had_counts_as_closed(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})])
    _adapter(transport).close(kit.account(), "att_01HZX3")
    assert len(transport.requests) == 1


def test_business_refusal_is_marked_refused_and_other_failures_are_not(kit: WeChatKit, signed_response: Signed) -> None:
    refusal = FakeTransport([signed_response(400, {"code": "INVALID_REQUEST", "message": "退款金额超过可退金额"})])
    with pytest.raises(ChannelError) as caught:
        _adapter(refusal).refund(kit.account(), _refund_request())
    assert caught.value.refused and not caught.value.retryable
    accepted = signed_response(200, {"out_refund_no": "rf_01", "status": "PROCESSING"})
    tampered = HttpResponse(accepted.status, accepted.headers, accepted.body.replace(b"PROCESSING", b"SUCCESS"))
    for answer in (signed_response(500, {"code": "SYSTEM_ERROR", "message": "x"}),
                   signed_response(401, {"code": "SIGN_ERROR", "message": "x"}), tampered):
        with pytest.raises(ChannelError) as caught:
            _adapter(FakeTransport([answer])).refund(kit.account(), _refund_request())
        assert not caught.value.refused, answer.status


def test_close_failing_at_the_channel_still_raises(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(500, {"code": "SYSTEM_ERROR", "message": "系统错误"})])
    with pytest.raises(ChannelError) as caught:
        _adapter(transport).close(kit.account(), "att_01HZX3")
    assert caught.value.retryable


def _refund_request(**overrides: Any) -> RefundRequest:
    values: dict[str, Any] = {"refund_id": "rf_01", "attempt_id": "att_01HZX3", "channel_transaction_id": "42",
                              "amount": Money(100, "CNY"), "attempt_amount": Money(8888, "CNY"), "reason": "退货",
                              "notify_url": "https://hub.example/callbacks/wechatpay/wx-test"}
    values.update(overrides)
    return RefundRequest(**values)


def test_refund(kit: WeChatKit, signed_response: Signed) -> None:
    answer = {"refund_id": "50000000382019052709732678859", "out_refund_no": "rf_01", "status": "PROCESSING",
              "amount": {"total": 8888, "refund": 100, "currency": "CNY", "payer_total": 8888, "payer_refund": 100}}
    transport = FakeTransport([signed_response(200, answer)])
    status = _adapter(transport).refund(kit.account(), _refund_request())
    request = transport.requests[0]
    assert request.url == "https://api.test.invalid/v3/refund/domestic/refunds"
    assert json.loads(request.body) == {
        "out_trade_no": "att_01HZX3", "out_refund_no": "rf_01", "reason": "退货",
        "notify_url": "https://hub.example/callbacks/wechatpay/wx-test",
        "amount": {"refund": 100, "total": 8888, "currency": "CNY"},
    }
    _assert_merchant_signed(kit, request)
    assert status.outcome is RefundOutcome.PROCESSING and status.amount == Money(100, "CNY")
    assert status.channel_refund_id == "50000000382019052709732678859"


def test_refund_refuses_non_cny(kit: WeChatKit) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _adapter(FakeTransport()).refund(kit.account(), _refund_request(amount=Money(100, "USD")))
    assert caught.value.param == "currency"


def test_query_refund(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([
        signed_response(200, {"out_refund_no": "rf_01", "refund_id": "5", "status": "SUCCESS",
                              "amount": {"refund": 100, "total": 8888}}),
        signed_response(404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}),
        signed_response(200, {"out_refund_no": "rf_03", "refund_id": "5", "status": "SOMETHING_NEW",
                              "amount": {"refund": 100}}),
    ])
    adapter = _adapter(transport)
    assert adapter.query_refund(kit.account(), "rf_01", Money(100, "CNY")).outcome is RefundOutcome.SUCCEEDED
    assert transport.requests[0].url == "https://api.test.invalid/v3/refund/domestic/refunds/rf_01"
    assert adapter.query_refund(kit.account(), "rf_02", Money(100, "CNY")).outcome is RefundOutcome.NOT_FOUND
    assert adapter.query_refund(kit.account(), "rf_03", Money(100, "CNY")).outcome is RefundOutcome.PROCESSING


# --- money at the edge ---------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=10**12))
def test_fen_round_trip(minor: int) -> None:
    money = Money(minor, "CNY")
    assert money_to_fen(money) == minor
    assert fen_to_money(money_to_fen(money), "CNY") == money


@given(st.integers(min_value=1, max_value=10**10))
def test_create_body_amount_is_fen(kit: WeChatKit, minor: int) -> None:
    # ``kit`` is session-scoped, which hypothesis allows (it only refuses function-scoped fixtures).
    body = create_body(WeChatCredentials.from_account(kit.account()), _create_request(amount=Money(minor, "CNY")))
    assert body["amount"] == {"total": minor, "currency": "CNY"}
    assert fen_to_money(body["amount"]["total"], body["amount"]["currency"]) == Money(minor, "CNY")


@pytest.mark.parametrize("wire", [1.5, "100", True, -1, None])
def test_non_integer_wire_amount_refused(wire: object) -> None:
    with pytest.raises(ValueError):
        fen_to_money(wire)


# --- the shared transport (loopback server only) ---------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = self.rfile.read(length)
        self.send_response(201)
        self.send_header("Wechatpay-Serial", "ABC")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"echo_len": len(payload), "path": self.path}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_transport_round_trip_lower_cases_headers(loopback: str, caplog: pytest.LogCaptureFixture) -> None:
    secret_header = 'WECHATPAY2-SHA256-RSA2048 signature="c2VjcmV0"'
    caplog.set_level(logging.INFO, logger="chalicelib.channels.transport")
    response = UrllibTransport().send(
        HttpRequest("POST", f"{loopback}/v3/x?mchid=1", {"Authorization": secret_header}, b'{"a":1}'), timeout_s=5)
    assert response.status == 201
    assert response.headers["wechatpay-serial"] == "ABC" and "Wechatpay-Serial" not in response.headers
    assert json.loads(response.body) == {"echo_len": 7, "path": "/v3/x?mchid=1"}
    logged = caplog.text
    assert "path=/v3/x" in logged and "status=201" in logged and "elapsed_ms=" in logged
    assert "c2VjcmV0" not in logged and '{"a":1}' not in logged and "mchid=1" not in logged


def test_transport_network_error_is_retryable_and_quiet() -> None:
    secret_header = 'WECHATPAY2-SHA256-RSA2048 signature="c2VjcmV0"'
    request = HttpRequest("POST", "http://127.0.0.1:9/v3/x", {"Authorization": secret_header}, b'{"openid":"o1"}')
    with pytest.raises(ChannelError) as caught:
        UrllibTransport(connect_timeout_s=0.5).send(request, timeout_s=1)
    assert caught.value.retryable
    assert "c2VjcmV0" not in str(caught.value) and "openid" not in str(caught.value)


def test_transport_https_pools_require_tls_1_2() -> None:
    transport = UrllibTransport()
    pool = transport._pool.connection_from_url("https://api.mch.weixin.qq.com")  # creating a pool does not connect
    assert isinstance(pool, HTTPSConnectionPool)
    assert pool.ssl_minimum_version == ssl.TLSVersion.TLSv1_2
    assert pool.cert_reqs == "CERT_REQUIRED"


@pytest.mark.parametrize("url", [
    "http://api.mch.weixin.qq.com/v3/pay/transactions/native",  # TLS is what authenticates Stripe/PayPal answers
    "http://203.0.113.7/v1/payment_intents",
    "http://127.0.0.1.example.com/v2/checkout/orders",
    "ftp://127.0.0.1/x",
])
def test_transport_refuses_plain_http_except_to_loopback(url: str) -> None:
    with pytest.raises(ChannelError) as caught:
        UrllibTransport().send(HttpRequest("GET", url), timeout_s=1)
    assert caught.value.channel_code == "INSECURE_URL" and not caught.value.retryable and not caught.value.refused


def test_transport_certificate_checks_cannot_be_bypassed_by_the_pool() -> None:
    pool = UrllibTransport()._pool.connection_from_url("https://api-m.paypal.com")
    assert isinstance(pool, HTTPSConnectionPool)
    assert pool.cert_reqs == "CERT_REQUIRED" and pool.assert_hostname is not False
