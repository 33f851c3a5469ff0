"""``UnionPaySandbox``: state, keys, faults, notifications and both APIs on one local HTTP server.

Every gateway call: injected 503? -> verify the merchant's signature (certId -> registered certificate) ->
the handler -> the answer signed with UnionPay's current signing certificate -> maybe held (timeout fault).
A refusal is answered the ACP way: HTTP 200 with a signed ``respCode`` (the browser-facing form gets HTML).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router

from . import pages
from .api import ANSWER_ECHO, GatewayApi
from .callbacks import RETRY_SCHEDULE_S, CallbackSender
from .control import ControlApi
from .faults import FaultBook
from .pki import UnionPayKeys, sign
from .state import AcpError, IllegalTransition, Order, SandboxState
from .statement import StatementFaults
from .wire import FormError, decode_form, encode_answer, to_hub_id

_log = logging.getLogger("sandbox.unionpay")
DEFAULT_PORT = 8103
FILE_PATHS = ("/", "/gateway/api/fileTransfer.do")

Handler = Callable[[Mapping[str, str], Request], dict[str, str]]


class UnionPaySandbox:
    """A local UnionPay ACP 5.1.0 gateway. ``retry_scale`` shrinks the notify re-send schedule;
    ``refund_settle_s`` is how long a refund is processing; ``test_cn`` signs with the test environment's
    certificate name (``00040000:SIGN``), which only ``environment=test`` accounts accept."""

    def __init__(self, *, retry_scale: float = 1.0, refund_settle_s: float = 0.5, callback_timeout_s: float = 5.0,
                 test_cn: bool = False) -> None:
        self.state = SandboxState()
        self.faults = FaultBook()
        self.keys = UnionPayKeys(test_cn=test_cn)
        self.statement_faults = StatementFaults()
        self.deliverer = Deliverer(RETRY_SCHEDULE_S, retry_scale, timeout_s=callback_timeout_s)
        self.callbacks = CallbackSender(self.deliverer, self.faults, self.keys)
        self.gateway = GatewayApi(self.state, self.keys, self.faults, self.callbacks, self.statement_faults,
                                  refund_settle_s)
        self.control = ControlApi(self.state, self.keys, self.faults, self.deliverer, self.callbacks, self.gateway,
                                  self.statement_faults)
        self._http = BackgroundHTTPServer(self._routes(), self.control.not_found)
        self.base_url = ""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.base_url = self._http.start(host, port)
        _log.info("UnionPay sandbox listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        self._http.stop()
        self.gateway.cancel_timers()
        self.callbacks.cancel_holds()
        self.deliverer.stop()

    # -- routing ------------------------------------------------------------------------------------------------

    def _routes(self) -> Router:
        router = Router()
        gateway, control = self.gateway, self.control
        router.add("POST", "/gateway/api/frontTransReq.do", self._front)
        router.add("POST", "/gateway/api/appTransReq.do", self._acp(gateway.app_trans))
        router.add("POST", "/gateway/api/backTransReq.do", self._acp(gateway.back_trans))
        router.add("POST", "/gateway/api/queryTrans.do", self._acp(gateway.query_trans))
        for path in FILE_PATHS:
            router.add("POST", path, self._acp(gateway.file_transfer))
        router.add("POST", "/_sandbox/cashier/{merchant_id}/{order_id}", self._cashier_pay)
        router.add("GET", "/_sandbox/challenge/{token}", self._challenge_page)
        router.add("POST", "/_sandbox/challenge/{token}", self._challenge_answer)
        for method, path, handler in (
            ("POST", "/_sandbox/merchants", control.register_merchant),
            ("GET", "/_sandbox/certs", control.certs),
            ("POST", "/_sandbox/signing-cert/rotate", control.rotate_signing_cert),
            ("GET", "/_sandbox/cards", control.test_cards),
            ("POST", "/_sandbox/pay", control.pay),
            ("GET", "/_sandbox/sms/{out_trade_no}", control.sms),
            ("GET", "/_sandbox/orders/{out_trade_no}", control.show_order),
            ("POST", "/_sandbox/orders/{out_trade_no}/forget", control.forget),
            ("GET", "/_sandbox/ledger", control.ledger),
            ("GET", "/_sandbox/deliveries", control.deliveries),
            ("POST", "/_sandbox/faults", control.arm_fault),
            ("GET", "/_sandbox/faults", control.list_faults),
            ("DELETE", "/_sandbox/faults", control.clear_faults),
            ("POST", "/_sandbox/statement-faults", control.arm_statement_fault),
            ("GET", "/_sandbox/statement-faults", control.list_statement_faults),
            ("DELETE", "/_sandbox/statement-faults", control.clear_statement_faults),
        ):
            router.add(method, path, control.guarded(handler))
        return router

    def _acp(self, handler: Handler) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            if self.faults.take("error_5xx", request.path):
                return Response(503, b"<html><body>503 Service Unavailable</body></html>", {"Content-Type": "text/html"})
            fields: dict[str, str] = {}
            hold = None
            try:
                fields = self.gateway.verified(request)
                hold = self.faults.take("timeout", request.path)
                answer = handler(fields, request)
            except AcpError as exc:
                answer = {"respCode": exc.code, "respMsg": exc.message}
            except IllegalTransition as exc:
                answer = {"respCode": "35", "respMsg": f"原交易状态不正确: {exc}"}
            recoded = self.faults.take("resp_code", request.path)
            if recoded is not None:
                answer[recoded.field] = recoded.code
            response = self._answer(fields, answer)
            if hold is not None:
                response.delay_before_send_s = hold.delay_s  # the work is done; only the answer is late
            return response

        return wrapped

    def _answer(self, request_fields: Mapping[str, str], answer: Mapping[str, str]) -> Response:
        echoed = {name: request_fields[name] for name in ANSWER_ECHO if request_fields.get(name)}
        body = {**echoed, "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", **answer}
        return Response(200, encode_answer(sign(body, self.keys.signer)), {"Content-Type": "text/plain;charset=UTF-8"})

    # -- browser pages ------------------------------------------------------------------------------------------

    def _front(self, request: Request) -> Response:
        if self.faults.take("error_5xx", request.path):
            return pages.error("03", "系统繁忙 (injected error_5xx)", 503)
        try:
            order = self.gateway.submit_front(self.gateway.verified(request))
        except AcpError as exc:
            return pages.error(exc.code, exc.message)
        merchant = self.state.merchant(order.merchant_id)
        action = f"/_sandbox/cashier/{order.merchant_id}/{order.order_id}"
        return pages.cashier(order.order_id, order.amount_fen, merchant.name if merchant else "", action)

    def _cashier_pay(self, request: Request) -> Response:
        params = request.path_params
        result = _form_result(request.body)
        try:
            order = self.state.order(params["merchant_id"], params["order_id"])
            if order.status != "SUBMITTED":
                raise IllegalTransition(f"order is {order.status}")
            done = self.state.pay(order.merchant_id, order.order_id, result == "success")
        except (AcpError, IllegalTransition) as exc:
            return pages.error("35", str(exc))
        if done.status == "PAID":
            self.callbacks.payment_succeeded(done, to_hub_id(done.order_id))
        if not done.front_url:
            return pages.done("支付成功 / Paid" if done.status == "PAID" else "支付失败 / Failed")
        front = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "bizType": done.biz_type,
                 "txnType": "01", "txnSubType": "01", "merId": done.merchant_id, "orderId": done.order_id,
                 "txnTime": done.txn_time, "txnAmt": str(done.amount_fen), "currencyCode": "156",
                 "queryId": done.query_id, "respCode": done.orig_resp_code,
                 "respMsg": "成功" if done.status == "PAID" else "失败"}
        return pages.auto_post(done.front_url, sign(front, self.keys.signer))

    def _challenge_order(self, token: str) -> Order | None:
        return self.state.order_by_challenge(token)

    def _challenge_page(self, request: Request) -> Response:
        order = self._challenge_order(request.path_params["token"])
        if order is None or order.status != "CHALLENGE":
            return pages.error("72", "no authentication is waiting here", 404)
        return pages.challenge(order.order_id, order.card_masked, request.path)

    def _challenge_answer(self, request: Request) -> Response:
        order = self._challenge_order(request.path_params["token"])
        if order is None:
            return pages.error("72", "no authentication is waiting here", 404)
        try:
            done = self.gateway.complete_challenge(order, _form_result(request.body) == "success")
        except IllegalTransition as exc:
            return pages.error("72", str(exc), 409)
        return pages.done("认证成功 / Authenticated" if done.status == "PAID" else "认证失败 / Authentication failed")


def _form_result(body: bytes) -> str:
    try:
        return decode_form(body).get("result", "success") if body else "success"
    except FormError:
        return "fail"
