"""``ECNYSandbox``: a partner bank's e-CNY merchant gateway on one local HTTP server (state, faults, notify, APIs).

Every ``/ecny/v1/...`` call goes: injected 5xx? -> check the hub's SM2 signature (merchant, key serial,
timestamp window, nonce not replayed) -> handler -> sign the answer over ``RESPONSE\\n<request nonce>\\n...``
with the merchant's bank key -> maybe hold it (timeout fault). The statement file download is unsigned.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router

from .api import GatewayApi
from .control import ControlApi
from .crypto import Sm2Key, sm2_verify
from .errors import GatewayError, MerchantInvalid, NonceReplayed, ParamError, SignInvalid, SystemError_, TimestampExpired
from .faults import FaultBook
from .notify import RETRY_SCHEDULE_S, NotifySender
from .protocol import (
    H_MERCHANT,
    H_NONCE,
    H_SERIAL,
    H_SIGNATURE,
    H_TIMESTAMP,
    TIMESTAMP_WINDOW_S,
    new_nonce,
    request_message,
    response_message,
)
from .resources import refund_json
from .state import IllegalTransition, Merchant, SandboxState

_log = logging.getLogger("sandbox.ecny")
DEFAULT_PORT = 8104
_NONCE = re.compile(r"^[0-9A-Za-z]{16,64}$")

GatewayHandler = Callable[[Merchant, dict[str, Any]], "dict[str, Any] | bytes"]


class ECNYSandbox:
    """A local partner-bank e-CNY gateway. ``retry_scale`` shrinks the notification retry schedule;
    ``refund_settle_s`` is how long a refund stays PROCESSING (0: it succeeds within the refund call)."""

    def __init__(self, *, retry_scale: float = 1.0, refund_settle_s: float = 0.2,
                 callback_timeout_s: float = 5.0) -> None:
        self.state = SandboxState()
        self.faults = FaultBook()
        self.statement_faults: list[dict[str, Any]] = []
        self._statement_faults_lock = threading.Lock()
        # The bank's gateway key: every merchant starts with it; a rotation gives one merchant its own.
        self._shared_bank_key = Sm2Key.generate()
        self._shared_bank_serial = secrets.token_hex(10).upper()
        self.deliverer = Deliverer(RETRY_SCHEDULE_S, retry_scale, timeout_s=callback_timeout_s)
        self.notify = NotifySender(self.deliverer, self.faults)
        self._refund_settle_s = refund_settle_s
        self._timers: list[threading.Timer] = []
        self._timers_lock = threading.Lock()
        self._seen_nonces: dict[tuple[str, str], float] = {}
        self._nonces_lock = threading.Lock()
        self._api = GatewayApi(self.state, self._refund_accepted, self._faults_for)
        self._control = ControlApi(self.state, self.faults, self.deliverer, self.notify, self.statement_faults,
                                   (self._shared_bank_key, self._shared_bank_serial))
        self._http = BackgroundHTTPServer(self._routes(), self._control.not_found)
        self.base_url = ""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.base_url = self._http.start(host, port)
        _log.info("e-CNY gateway sandbox listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        self._http.stop()
        with self._timers_lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        self.notify.cancel_holds()
        self.deliverer.stop()

    # -- routing -------------------------------------------------------------------------------------------

    def _routes(self) -> Router:
        router = Router()
        api, gateway = self._api, self._gateway
        for path, handler in (
            ("/ecny/v1/orders", api.create_order),
            ("/ecny/v1/orders/query", api.query_order),
            ("/ecny/v1/orders/close", api.close_order),
            ("/ecny/v1/refunds", api.create_refund),
            ("/ecny/v1/refunds/query", api.query_refund),
            ("/ecny/v1/statements/apply", api.apply_statement),
            ("/ecny/v1/statements/download", api.download_statement),
        ):
            router.add("POST", path, gateway(handler))
        control = self._control
        for method, path, route in (
            ("POST", "/_sandbox/merchants", control.register_merchant),
            ("POST", "/_sandbox/bank-keys/rotate", control.rotate_bank_key),
            ("POST", "/_sandbox/pay", control.pay),
            ("POST", "/_sandbox/offline-pay", control.offline_pay),
            ("POST", "/_sandbox/offline-batch", control.offline_batch),
            ("GET", "/_sandbox/orders/{out_trade_no}", control.show_order),
            ("POST", "/_sandbox/orders/{out_trade_no}/forget", control.forget),
            ("GET", "/_sandbox/ledger", control.ledger),
            ("GET", "/_sandbox/deliveries", control.deliveries),
            ("POST", "/_sandbox/faults", control.arm_fault),
            ("GET", "/_sandbox/faults", control.list_faults),
            ("DELETE", "/_sandbox/faults", control.clear_faults),
            ("POST", "/_sandbox/statement-faults", self._locked(control.arm_statement_fault)),
            ("GET", "/_sandbox/statement-faults", self._locked(control.list_statement_faults)),
            ("DELETE", "/_sandbox/statement-faults", self._locked(control.clear_statement_faults)),
        ):
            router.add(method, path, control.guarded(route))
        return router

    def _locked(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            with self._statement_faults_lock:
                return handler(request)

        return wrapped

    def _faults_for(self, merchant_id: str, day: date) -> list[dict[str, Any]]:
        with self._statement_faults_lock:
            return [dict(f) for f in self.statement_faults if f["day"] == day.isoformat()
                    and f.get("merchant_id", merchant_id) == merchant_id]

    # -- the gateway -------------------------------------------------------------------------------------

    def _gateway(self, handler: GatewayHandler) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            request_nonce = request.headers.get(H_NONCE, "")
            merchant: Merchant | None = None
            hold = None
            try:
                if self.faults.take("error_5xx", request.path):
                    # A gateway outage is answered by the load balancer in front of the bank: unsigned.
                    outage = SystemError_("系统繁忙 (injected error_5xx)")
                    body = json.dumps({"code": outage.code, "msg": outage.message}, ensure_ascii=False).encode()
                    return Response(outage.http_status, body, {"Content-Type": "application/json; charset=utf-8"})
                merchant = self._authenticate(request)
                body = _json_object(request.body)
                if body.get("merchant_id") != merchant.merchant_id:
                    raise ParamError("merchant_id does not match X-ECNY-Merchant-Id")
                hold = self.faults.take("timeout", request.path)
                result = handler(merchant, body)
                if isinstance(result, bytes):
                    response = Response(200, result, {"Content-Type": "text/plain; charset=GBK"})
                    return _held(response, hold)
                status, answer = 200, {"code": "SUCCESS", "msg": "成功", "data": result}
            except GatewayError as exc:
                status, answer = exc.http_status, {"code": exc.code, "msg": exc.message}
            except IllegalTransition as exc:
                status, answer = 200, {"code": "PARAM_ERROR", "msg": str(exc)}
            key, serial = (merchant.bank_key, merchant.bank_key_serial) if merchant else (
                self._shared_bank_key, self._shared_bank_serial)
            return _held(_signed(status, answer, request_nonce, key, serial), hold)

        return wrapped

    def _authenticate(self, request: Request) -> Merchant:
        headers = request.headers
        merchant = self.state.merchant(headers.get(H_MERCHANT, ""))
        if merchant is None:
            raise MerchantInvalid("商户不存在: X-ECNY-Merchant-Id is not a registered merchant")
        public_key = merchant.merchant_keys.get(headers.get(H_SERIAL, "").upper())
        if public_key is None:
            raise MerchantInvalid("X-ECNY-Serial is not a key registered by this merchant")
        timestamp, nonce, signature = headers.get(H_TIMESTAMP, ""), headers.get(H_NONCE, ""), headers.get(H_SIGNATURE, "")
        if not timestamp.isdigit() or len(timestamp) > 12 or abs(time.time() - int(timestamp)) > TIMESTAMP_WINDOW_S:
            raise TimestampExpired(f"X-ECNY-Timestamp must be Unix seconds within {TIMESTAMP_WINDOW_S} s")
        if not _NONCE.match(nonce):
            raise SignInvalid("X-ECNY-Nonce must be 16-64 letters or digits")
        if not signature or not sm2_verify(public_key, request_message(request.path, timestamp, nonce, request.body),
                                           signature):
            raise SignInvalid("签名验证失败: signature does not verify over POST\\npath\\ntimestamp\\nnonce\\nbody")
        self._remember_nonce(merchant.merchant_id, nonce)
        return merchant

    def _remember_nonce(self, merchant_id: str, nonce: str) -> None:
        now = time.monotonic()
        with self._nonces_lock:
            if len(self._seen_nonces) > 10_000:
                self._seen_nonces = {k: t for k, t in self._seen_nonces.items() if now - t < 2 * TIMESTAMP_WINDOW_S}
            if (merchant_id, nonce) in self._seen_nonces:
                raise NonceReplayed("X-ECNY-Nonce was already used: replayed request")
            self._seen_nonces[(merchant_id, nonce)] = now

    # -- refunds reach the payer a moment after they are accepted ------------------------------------------

    def _refund_accepted(self, merchant: Merchant, out_refund_no: str) -> None:
        if self._refund_settle_s <= 0:
            self._settle_refund(merchant.merchant_id, out_refund_no)
            return
        timer = threading.Timer(self._refund_settle_s, self._settle_refund, (merchant.merchant_id, out_refund_no))
        timer.daemon = True
        with self._timers_lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def _settle_refund(self, merchant_id: str, out_refund_no: str) -> None:
        try:
            refund = self.state.settle_refund(merchant_id, out_refund_no)
        except (IllegalTransition, GatewayError):
            _log.warning("refund %s could not settle (no longer PROCESSING, or forgotten)", out_refund_no)
            return
        merchant = self.state.merchant(merchant_id)
        if merchant is not None:
            self.notify.refund(merchant, refund.request.notify_url, refund_json(refund))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParamError("body must be UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise ParamError("body must be a JSON object")
    return value


def _signed(status: int, answer: dict[str, Any], request_nonce: str, key: Sm2Key, serial: str) -> Response:
    body = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    timestamp, nonce = str(int(time.time())), new_nonce()
    return Response(status, body, {
        "Content-Type": "application/json; charset=utf-8", H_TIMESTAMP: timestamp, H_NONCE: nonce,
        H_SERIAL: serial, H_SIGNATURE: key.sign(response_message(request_nonce, timestamp, nonce, body)),
    })


def _held(response: Response, hold: Any) -> Response:
    if hold is not None:
        # The work is done; only the answer is late, so the hub must query to learn the outcome.
        response.delay_before_send_s = hold.delay_s
    return response
