"""``AlipaySandbox``: wires state, faults, notifies, the gateway and the cashier onto one local HTTP server.

``/gateway.do`` calls go: injected 5xx? -> which app, which sign type, does the ``sign`` verify -> handler ->
the answer signed with Alipay's key for that sign type (``{"<method>_response":{...},"sign":"..."}``) -> maybe
held (timeout fault). A browser or the Alipay app bringing a page/wap/app order gets the cashier instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from urllib.parse import parse_qsl

from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router

from . import cashier
from .control import ControlApi
from .crypto import SIGN_TYPES, AlipayKey, SignType
from .errors import AlipayError, InvalidParameter, ServiceUnavailable
from .faults import FaultBook, StatementFaultBook
from .gateway import BROWSER_METHODS, Gateway, GatewayRequestError, app_of, authenticate, decode_params
from .notify import RETRY_SCHEDULE_S, NotifySender
from .state import IllegalTransition, Order, SandboxState, UnknownOrder

_log = logging.getLogger("sandbox.alipay")
DEFAULT_PORT = 8102
_HTML = {"Content-Type": "text/html; charset=utf-8"}


def response_key(method: str) -> str:
    return method.replace(".", "_") + "_response"


class AlipaySandbox:
    """A local Alipay Open Platform gateway. ``retry_scale`` shrinks the notify re-send schedule (0.01: 4 min
    -> 2.4 s); ``notify_timeout_s`` is how long Alipay waits for the merchant's ``success``."""

    def __init__(self, *, retry_scale: float = 1.0, notify_timeout_s: float = 5.0) -> None:
        self.state = SandboxState()
        self.faults = FaultBook()
        self.statement_faults = StatementFaultBook()
        # One Alipay key per sign type, made at startup and never written anywhere.
        self.alipay_keys: dict[SignType, AlipayKey] = {t: AlipayKey.generate(t) for t in SIGN_TYPES}
        self.deliverer = Deliverer(RETRY_SCHEDULE_S, retry_scale, timeout_s=notify_timeout_s)
        self.notifier = NotifySender(self.deliverer, self.faults, self.alipay_keys)
        self.gateway = Gateway(self.state, self.notifier, self.statement_faults)
        self._control = ControlApi(self.state, self.faults, self.statement_faults, self.deliverer, self.alipay_keys,
                                   self._settle, self._open_params)
        self._http = BackgroundHTTPServer(self._routes(), self._control.not_found)
        self.base_url = ""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.base_url = self._http.start(host, port)
        _log.info("Alipay sandbox listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        self._http.stop()
        self.notifier.cancel_holds()
        self.deliverer.stop()

    def _routes(self) -> Router:
        router = Router()
        router.add("POST", "/gateway.do", self._gateway_route)
        router.add("GET", "/gateway.do", self._gateway_route)
        router.add("GET", "/qr/{token}", self._scan)
        router.add("GET", "/cashier/{app_id}/{out_trade_no}", self._cashier)
        router.add("POST", "/cashier/{app_id}/{out_trade_no}/pay", self._cashier_pay)
        router.add("GET", "/bill/download", self._bill_download)
        control = self._control
        for method, path, handler in (
            ("POST", "/_sandbox/merchants", control.register_merchant),
            ("GET", "/_sandbox/alipay-keys", control.alipay_keys),
            ("POST", "/_sandbox/alipay-keys/rotate", control.rotate_alipay_key),
            ("POST", "/_sandbox/pay", control.pay),
            ("GET", "/_sandbox/orders/{out_trade_no}", control.show_order),
            ("POST", "/_sandbox/orders/{out_trade_no}/forget", control.forget),
            ("GET", "/_sandbox/ledger", control.ledger),
            ("GET", "/_sandbox/deliveries", control.deliveries),
            ("POST", "/_sandbox/faults", control.arm_fault),
            ("GET", "/_sandbox/faults", control.list_faults),
            ("DELETE", "/_sandbox/faults", control.clear_faults),
            ("POST", "/_sandbox/statement-faults", control.add_statement_fault),
            ("GET", "/_sandbox/statement-faults", control.list_statement_faults),
            ("DELETE", "/_sandbox/statement-faults", control.clear_statement_faults),
        ):
            router.add(method, path, control.guarded(handler))
        return router

    # -- the gateway ---------------------------------------------------------------------------------------

    def _gateway_route(self, request: Request) -> Response:
        query = request.raw_target.partition("?")[2]
        try:
            params = decode_params(query, request.body, request.headers.get("content-type", ""))
        except GatewayRequestError as exc:
            return _unsigned_error(exc.error)
        method = params.get("method", "")
        if method in BROWSER_METHODS:
            return self._browser_open(params, request.headers.get("host", "127.0.0.1"))
        if self.faults.take("error_5xx", method):
            return Response(502, b"<html><body>502 Bad Gateway</body></html>", dict(_HTML))
        try:
            merchant = app_of(self.state, params)
        except GatewayRequestError as exc:
            return _unsigned_error(exc.error)
        try:
            call = authenticate(merchant, params, request.headers.get("host", "127.0.0.1"))
        except AlipayError as exc:
            return self._signed(method, exc.to_json(), merchant.sign_type)
        hold = self.faults.take("timeout", method)
        try:
            if self.faults.take("system_error", method):
                raise ServiceUnavailable("isp.unknow-error", "系统繁忙 (injected system_error)")
            handler = self.gateway.handlers.get(method)
            if handler is None:
                raise InvalidParameter("isv.invalid-method", f"不存在的方法名 {method}")
            answer = {"code": "10000", "msg": "Success", **handler(call)}
        except AlipayError as exc:
            answer = exc.to_json()
        response = self._signed(method, answer, merchant.sign_type)
        if hold is not None:
            # The work is done; only the answer is late, so the merchant must query to learn the outcome.
            response.delay_before_send_s = hold.delay_s
        return response

    def _signed(self, method: str, answer: Mapping[str, object], sign_type: SignType) -> Response:
        content = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        sign = self.alipay_keys[sign_type].sign(content.encode("utf-8"))
        body = f'{{"{response_key(method)}":{content},"sign":"{sign}"}}'.encode()
        return Response(200, body, {"Content-Type": "application/json;charset=utf-8"})

    def _open_params(self, params: Mapping[str, str], host: str) -> Order:
        """Verify a page/wap/app order the payer brought and open its trade; raises ``IllegalTransition``."""
        try:
            call = authenticate(app_of(self.state, params), params, host)
            if call.method not in BROWSER_METHODS:
                raise InvalidParameter("isv.invalid-method", f"{call.method} is not opened by a payer")
            return self.gateway.open_browser_order(call)
        except GatewayRequestError as exc:
            raise IllegalTransition(f"Alipay refused the order: {exc.error.sub_code} {exc.error.sub_msg}") from exc
        except AlipayError as exc:
            raise IllegalTransition(f"Alipay refused the order: {exc.sub_code} {exc.sub_msg}") from exc

    def _browser_open(self, params: Mapping[str, str], host: str) -> Response:
        try:
            order = self._open_params(params, host)
        except IllegalTransition as exc:
            return Response(400, cashier.error_page("INVALID_ORDER", str(exc)), dict(_HTML))
        return Response(200, cashier.cashier_page(order), dict(_HTML))

    # -- the payer's side ----------------------------------------------------------------------------------

    def _settle(self, order: Order, succeeded: bool) -> Order:
        settled = self.state.settle(order.app_id, order.out_trade_no, succeeded)
        merchant = self.state.merchant(settled.app_id)
        assert merchant is not None
        self.notifier.trade_changed(merchant, settled)  # TRADE_SUCCESS, or TRADE_CLOSED when payment failed
        return settled

    def _scan(self, request: Request) -> Response:
        try:
            order = self.state.open_qr(request.path_params["token"])
        except (UnknownOrder, IllegalTransition) as exc:
            return Response(404, cashier.error_page("QR_INVALID", str(exc)), dict(_HTML))
        return Response(200, cashier.cashier_page(order), dict(_HTML))

    def _cashier(self, request: Request) -> Response:
        found = self.state.find(request.path_params["out_trade_no"], request.path_params["app_id"])
        if not found:
            return Response(404, cashier.error_page("ACQ.TRADE_NOT_EXIST", "交易不存在"), dict(_HTML))
        return Response(200, cashier.cashier_page(found[0]), dict(_HTML))

    def _cashier_pay(self, request: Request) -> Response:
        form = dict(parse_qsl(request.body.decode("utf-8", errors="replace")))
        found = self.state.find(request.path_params["out_trade_no"], request.path_params["app_id"])
        if not found:
            return Response(404, cashier.error_page("ACQ.TRADE_NOT_EXIST", "交易不存在"), dict(_HTML))
        try:
            order = self._settle(found[0], form.get("result", "success") == "success")
        except IllegalTransition as exc:
            return Response(409, cashier.error_page("ACQ.TRADE_STATUS_ERROR", str(exc)), dict(_HTML))
        merchant = self.state.merchant(order.app_id)
        assert merchant is not None
        target = cashier.return_url(merchant, order, self.alipay_keys[merchant.sign_type])
        if target is not None:
            return Response(303, b"", {"Location": target})
        return Response(200, cashier.done_page(order), dict(_HTML))

    def _bill_download(self, request: Request) -> Response:
        found = self.gateway.bill_file(request.query.get("token", ""))
        if found is None:
            return Response(404, cashier.error_page("BILL_URL_EXPIRED", "下载链接已失效"), dict(_HTML))
        return Response(200, found.content, {"Content-Type": "application/zip",
                                             "Content-Disposition": f"attachment; filename={found.name}"})


def _unsigned_error(error: AlipayError) -> Response:
    """An error that cannot be tied to an app (unknown app_id, undecodable request) is answered unsigned."""
    body = json.dumps({"error_response": error.to_json()}, ensure_ascii=False, separators=(",", ":"))
    return Response(200, body.encode("utf-8"), {"Content-Type": "application/json;charset=utf-8"})
