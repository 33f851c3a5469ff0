"""``PayPalSandbox``: a local PayPal REST API (OAuth2, Orders v2, Payments v2, webhooks, Transaction Search) on one
HTTP server, with a test CA, signed webhooks with retries, an approval page and the control API.

Every REST call goes: injected 5xx? -> bearer token -> handler -> maybe hold the answer (timeout fault).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router, json_response

from .api import Answer, Hooks, RestApi
from .ca import TestCA
from .control import ControlApi
from .errors import IllegalTransition, PayPalError, internal_error
from .faults import FaultBook
from .report import StatementFaults
from .resources import capture_json, refund_json
from .state import Capture, Merchant, Order, Refund, SandboxState
from .webhooks import RETRY_SCHEDULE_S, CertBook, WebhookSender

_log = logging.getLogger("sandbox.paypal")
DEFAULT_PORT = 8106

RestHandler = Callable[[Request, Merchant], Answer]
_CAPTURE_EVENTS = {"COMPLETED": ("PAYMENT.CAPTURE.COMPLETED", "Payment completed"),
                   "PENDING": ("PAYMENT.CAPTURE.PENDING", "Payment pending"),
                   "DECLINED": ("PAYMENT.CAPTURE.DENIED", "Payment denied")}


class PayPalSandbox:
    """``retry_scale`` shrinks the webhook retry schedule; ``refund_settle_s`` > 0 keeps refunds PENDING that long
    (0: refunds complete in the answer, as PayPal's usually do); ``token_ttl_s`` is the OAuth token lifetime;
    ``report_live`` makes Transaction Search report data refreshed only up to now (otherwise a requested day
    counts as complete)."""

    def __init__(self, *, retry_scale: float = 1.0, refund_settle_s: float = 0.0, token_ttl_s: int = 32400,
                 callback_timeout_s: float = 5.0, report_live: bool = False) -> None:
        self.state = SandboxState()
        self.faults = FaultBook()
        self.statement_faults = StatementFaults()
        self.ca = TestCA()
        self.certs = CertBook(self.ca)
        self.deliverer = Deliverer(RETRY_SCHEDULE_S, retry_scale, timeout_s=callback_timeout_s)
        self.base_url = ""
        self.webhooks = WebhookSender(self.deliverer, self.faults, self.state, self.certs, lambda: self.base_url)
        self._refund_settle_s = refund_settle_s
        self._timers: list[threading.Timer] = []
        self._timers_lock = threading.Lock()
        self.api = RestApi(self.state, self.webhooks, self.certs,
                           Hooks(self._order_approved, self._capture_made, self._refund_made), lambda: self.base_url,
                           token_ttl_s=token_ttl_s, complete_refunds=refund_settle_s <= 0, report_live=report_live,
                           faults=self.statement_faults)
        self.control = ControlApi(self.state, self.api, self.webhooks, self.certs, self.faults, self.statement_faults,
                                  self.deliverer, self._order_approved, self._capture_settled)
        self._http = BackgroundHTTPServer(self._routes(), self.control.not_found)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.base_url = self._http.start(host, port)
        _log.info("PayPal sandbox listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        self._http.stop()
        with self._timers_lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        self.webhooks.cancel_holds()
        self.deliverer.stop()

    # -- routing -----------------------------------------------------------------------------------------

    def _routes(self) -> Router:
        router = Router()
        api, rest = self.api, self._wrap
        router.add("POST", "/v1/oauth2/token", self._plain(lambda r: _render(api.token(r))))
        router.add("POST", "/v2/checkout/orders", rest(api.create_order))
        router.add("GET", "/v2/checkout/orders/{order_id}", rest(api.get_order))
        router.add("POST", "/v2/checkout/orders/{order_id}/capture", rest(api.capture_order))
        router.add("GET", "/v2/payments/captures/{capture_id}", rest(api.get_capture))
        router.add("POST", "/v2/payments/captures/{capture_id}/refund", rest(api.refund_capture))
        router.add("GET", "/v2/payments/refunds/{refund_id}", rest(api.get_refund))
        router.add("POST", "/v1/notifications/webhooks", rest(api.create_webhook))
        router.add("GET", "/v1/notifications/webhooks", rest(api.list_webhooks))
        router.add("POST", "/v1/notifications/verify-webhook-signature", rest(api.verify_webhook_signature))
        router.add("GET", "/v1/notifications/certs/{cert_id}", self._plain(self._cert))
        router.add("GET", "/v1/reporting/transactions", rest(api.transactions))

        control = self.control
        router.add("GET", "/checkoutnow", self._plain(control.checkout_page))
        router.add("POST", "/checkoutnow/{order_id}/approve", self._plain(control.checkout_approve))
        router.add("POST", "/checkoutnow/{order_id}/cancel", self._plain(control.checkout_cancel))
        for method, path, handler in (
            ("POST", "/_sandbox/merchants", control.register_merchant),
            ("GET", "/_sandbox/certs", control.certs),
            ("POST", "/_sandbox/certs/rotate", control.rotate_cert),
            ("POST", "/_sandbox/tokens/revoke", control.revoke_tokens),
            ("POST", "/_sandbox/pay", control.pay),
            ("POST", "/_sandbox/captures/{capture_id}/settle", control.settle_capture),
            ("GET", "/_sandbox/orders/{out_trade_no}", control.show_order),
            ("POST", "/_sandbox/orders/{out_trade_no}/forget", control.forget),
            ("GET", "/_sandbox/ledger", control.ledger),
            ("GET", "/_sandbox/deliveries", control.deliveries),
            ("POST", "/_sandbox/faults", control.arm_fault),
            ("GET", "/_sandbox/faults", control.list_faults),
            ("DELETE", "/_sandbox/faults", control.clear_faults),
            ("POST", "/_sandbox/statement-faults", control.add_statement_fault),
            ("DELETE", "/_sandbox/statement-faults", control.clear_statement_faults),
        ):
            router.add(method, path, control.guarded(handler))
        return router

    def _wrap(self, handler: RestHandler) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            hold = None
            try:
                if self.faults.take("error_5xx", request.path):
                    raise internal_error()
                merchant = self.api.authenticate(request)
                hold = self.faults.take("timeout", request.path)
                response = _render(handler(request, merchant))
            except PayPalError as exc:
                response = json_response(exc.status, exc.body())
            if hold is not None:
                response.delay_before_send_s = hold.delay_s  # the work is done; only the answer is late
            return response

        return wrapped

    @staticmethod
    def _plain(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except PayPalError as exc:
                return json_response(exc.status, exc.body())
            except IllegalTransition as exc:
                return json_response(409, {"name": "UNPROCESSABLE_ENTITY", "message": str(exc)})

        return wrapped

    def _cert(self, request: Request) -> Response:
        status, body = self.api.cert(request)
        return Response(status, body, {"Content-Type": "application/x-pem-file"})

    # -- events ------------------------------------------------------------------------------------------

    def _merchant(self, client_id: str) -> Merchant:
        merchant = self.state.merchant(client_id)
        assert merchant is not None
        return merchant

    def _order_approved(self, order: Order) -> None:
        self.webhooks.emit(order.client_id, "CHECKOUT.ORDER.APPROVED", "checkout-order",
                           "An order has been approved by buyer", self.api.order_json(order),
                           order_id=order.order_id, attempt_id=order.custom_id)

    def _capture_made(self, capture: Capture) -> None:
        event_type, summary = _CAPTURE_EVENTS[capture.status]
        resource = capture_json(self.base_url, capture, self._merchant(capture.client_id))
        self.webhooks.emit(capture.client_id, event_type, "capture", summary, resource,
                           order_id=capture.order_id, attempt_id=capture.custom_id)

    def _capture_settled(self, capture_id: str) -> None:
        self._capture_made(self.state.capture(capture_id))

    def _refund_made(self, refund: Refund) -> None:
        if refund.status == "COMPLETED":
            self._refund_completed(refund)
            return
        timer = threading.Timer(self._refund_settle_s, self._settle_refund, (refund.refund_id,))
        timer.daemon = True
        with self._timers_lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _settle_refund(self, refund_id: str) -> None:
        try:
            refund = self.state.settle_refund(refund_id)
        except (IllegalTransition, PayPalError):
            _log.warning("refund %s could not settle", refund_id)
            return
        self._refund_completed(refund)

    def _refund_completed(self, refund: Refund) -> None:
        resource = refund_json(self.base_url, refund, self._merchant(refund.client_id))
        capture = self.state.capture(refund.capture_id)
        self.webhooks.emit(refund.client_id, "PAYMENT.CAPTURE.REFUNDED", "refund", "A payment capture was refunded",
                           resource, order_id=refund.order_id, attempt_id=capture.custom_id)


def _render(answer: Answer) -> Response:
    body = json.dumps(answer.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(answer.status, body, {"Content-Type": "application/json"})
