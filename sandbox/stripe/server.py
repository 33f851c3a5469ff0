"""``StripeSandbox``: books, webhooks, reporting and both APIs on one local HTTP server.

Every ``/v1`` call goes: check the secret key (Bearer or Basic) -> check ``Stripe-Version`` -> injected 5xx? ->
decode the form -> Idempotency-Key (POST: replay, 409 while in flight, 400 on other parameters) -> handler ->
store the answer under the key -> maybe hold it (timeout fault).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router

from . import forms, versions
from .api import Answer, Handler, V1Api
from .challenge import ChallengePage
from .control import ControlApi
from .errors import (
    ApiError,
    AuthenticationError,
    IdempotencyError,
    IdempotencyInFlight,
    InvalidRequest,
    StripeError,
)
from .faults import FaultBook
from .hosted_page import HostedCheckoutPage
from .idempotency import KEY_CHARS_MAX, IdempotencyStore
from .records import Account
from .reports import Reporting
from .sessions import CheckoutBook
from .state import SandboxState, token
from .webhooks import RETRY_SCHEDULE_S, WebhookSender

_log = logging.getLogger("sandbox.stripe")
DEFAULT_PORT = 8105
REQUEST_LOG_MAX = 2000


class StripeSandbox:
    """A local Stripe. ``retry_scale`` shrinks the webhook retry schedule; ``refund_settle_s`` is how long a refund
    stays pending; ``report_delay_s`` how long a report run stays pending; ``search_lag_s`` how long a new intent
    stays invisible to the (eventually consistent) Search API; ``event_delay_s`` how long after it happens an event
is first sent (Stripe delivers events asynchronously, typically within a second)."""

    def __init__(self, *, retry_scale: float = 1.0, refund_settle_s: float = 0.5, report_delay_s: float = 0.0,
                 search_lag_s: float = 0.0, event_delay_s: float = 0.25, callback_timeout_s: float = 10.0) -> None:
        self.faults = FaultBook()
        self.deliverer = Deliverer(RETRY_SCHEDULE_S, retry_scale, timeout_s=callback_timeout_s)
        self.state = SandboxState(self._publish, search_lag_s=search_lag_s)
        self.webhooks = WebhookSender(self.state, self.deliverer, self.faults, event_delay_s=event_delay_s)
        self.reporting = Reporting(self.state, report_delay_s)
        self.idempotency = IdempotencyStore()
        self._refund_settle_s = refund_settle_s
        self._timers: list[threading.Timer] = []
        self._timers_lock = threading.Lock()
        self._requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_MAX)
        self.checkout = CheckoutBook(self.state)
        self._v1 = V1Api(self.state, self.reporting, self.webhooks, self._schedule_refund_settlement, self.checkout)
        self._control = ControlApi(self.state, self.faults, self.deliverer, self.webhooks, self.reporting,
                                   lambda: list(self._requests))
        self._control.checkout = self.checkout
        self._challenge = ChallengePage(self.state)
        self._hosted_checkout = HostedCheckoutPage(self.checkout)
        self._http = BackgroundHTTPServer(self._routes(), self._control.not_found)
        self.base_url = ""

    def _publish(self, account: str, event_type: str, obj: dict[str, Any]) -> None:
        self.webhooks.publish(account, event_type, obj)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.base_url = self._http.start(host, port)
        self.state.base_url = self.base_url
        _log.info("Stripe sandbox listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        self._http.stop()
        with self._timers_lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        self.webhooks.cancel_holds()
        self.deliverer.stop()

    # -- routing ------------------------------------------------------------------------------------------------

    def _routes(self) -> Router:
        router = Router()
        for method, path, handler in self._v1.routes():
            router.add(method, path, self._wrap(handler))
        router.add("GET", "/three_d_secure/authenticate/{intent}", self._challenge.show)
        router.add("POST", "/three_d_secure/authenticate/{intent}", self._challenge.submit)
        router.add("GET", "/c/pay/{session}", self._hosted_checkout.show)
        router.add("POST", "/c/pay/{session}", self._hosted_checkout.submit)
        for method, path, control in self._control.routes():
            router.add(method, path, self._control.guarded(control))
        return router

    def _wrap(self, handler: Handler) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            request_id = token("req_", 14)
            key = request.headers.get("idempotency-key") if request.method == "POST" else None
            entry: dict[str, Any] = {"request_id": request_id, "method": request.method, "path": request.path,
                                     "idempotency_key": key, "stripe_version": request.headers.get("stripe-version"),
                                     "replayed": False}
            self._requests.append(entry)
            try:
                response = self._answer(request, handler, request_id, key, entry)
            except StripeError as exc:
                response = _error_response(exc, request_id)
            entry["status"] = response.status
            return response

        return wrapped

    def _answer(self, request: Request, handler: Handler, request_id: str, key: str | None,
                entry: dict[str, Any]) -> Response:
        account = self._authenticate(request)
        version = request.headers.get("stripe-version")
        if version is not None and not versions.is_accepted(version):
            raise InvalidRequest(f"Invalid Stripe API version: {version}", param="Stripe-Version")
        if key is not None and (not key or len(key) > KEY_CHARS_MAX):
            raise InvalidRequest("Idempotency-Key must be 1 to 255 characters.", param="Idempotency-Key")
        failure = self.faults.take("error_5xx", request.path)
        if failure is not None and not (failure.stored and key):
            raise ApiError("An unknown error occurred (injected error_5xx).", headers={"Stripe-Should-Retry": "true"})
        params = self._params(request)
        fingerprint = (request.method, request.path, json.dumps(params, sort_keys=True))
        if key is None:
            return self._render(handler(params, request.path_params, account), request_id)
        claim = self.idempotency.claim(account.merchant_id, key, fingerprint)
        if claim.kind == "in_flight":
            raise IdempotencyInFlight("There is currently another in-progress request using this Idempotency Key "
                                      "(that probably means you submitted twice, and the other request is still going "
                                      "through). Please try again later.")
        if claim.kind == "mismatch":
            raise IdempotencyError("Keys for idempotent requests can only be used with the same parameters they "
                                   f"were first used with. Try using a key other than '{key}' if you meant to "
                                   "execute a different request.")
        if claim.kind == "replay":
            assert claim.answer is not None
            entry["replayed"] = True
            return Response(claim.answer.status, claim.answer.body, {
                "Content-Type": "application/json", "Request-Id": request_id, "Idempotent-Replayed": "true",
                "Original-Request": claim.answer.request_id})
        return self._execute(request, handler, params, account, key, fingerprint, request_id, failure is not None)

    def _execute(self, request: Request, handler: Handler, params: dict[str, Any], account: Account, key: str,
                 fingerprint: tuple[str, str, str], request_id: str, fail_stored: bool) -> Response:
        try:
            if fail_stored:
                raise ApiError("An unknown error occurred (injected error_5xx, stored).")
            response = self._render(handler(params, request.path_params, account), request_id)
        except StripeError as exc:
            if not exc.stored:
                self.idempotency.release(account.merchant_id, key)
                raise
            response = _error_response(exc, request_id)
        except BaseException:
            self.idempotency.release(account.merchant_id, key)
            raise
        hold = self.faults.take("timeout", request.path)
        if hold is not None:
            # The work is done; only the answer is late. The key stays in flight meanwhile (409 to a retry).
            threading.Event().wait(hold.delay_s)
        self.idempotency.store(account.merchant_id, key, fingerprint, response.status, response.body, request_id)
        return response

    def _authenticate(self, request: Request) -> Account:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        secret = ""
        if scheme.lower() == "bearer":
            secret = credential.strip()
        elif scheme.lower() == "basic":
            try:
                secret = base64.b64decode(credential, validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                secret = ""
        if not secret:
            raise AuthenticationError("You did not provide an API key. You need to provide your API key in the "
                                      "Authorization header, using Bearer auth.")
        account = self.state.account_for_key(secret)
        if account is None:
            masked = f"{secret[:8]}{'*' * 12}{secret[-4:]}" if len(secret) > 12 else "****"
            raise AuthenticationError(f"Invalid API Key provided: {masked}", code="api_key_invalid")
        return account

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        try:
            if request.method == "GET" or request.method == "DELETE":
                return forms.decode(request.raw_target.partition("?")[2])
            if request.body and "x-www-form-urlencoded" not in request.headers.get("content-type", ""):
                raise InvalidRequest("Request bodies must be application/x-www-form-urlencoded.")
            return forms.decode(request.body)
        except UnicodeDecodeError as exc:
            raise InvalidRequest("Request body is not UTF-8.") from exc

    @staticmethod
    def _render(answer: Answer, request_id: str) -> Response:
        if isinstance(answer.payload, bytes):
            return Response(answer.status, answer.payload, {"Content-Type": "text/csv", "Request-Id": request_id})
        body = json.dumps(answer.payload, indent=2).encode()
        return Response(answer.status, body, {"Content-Type": "application/json", "Request-Id": request_id})

    # -- refunds settle a moment after they are created ---------------------------------------------------------

    def _schedule_refund_settlement(self, refund_id: str) -> None:
        timer = threading.Timer(self._refund_settle_s, self.state.settle_refund, (refund_id,))
        timer.daemon = True
        with self._timers_lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()


def _error_response(exc: StripeError, request_id: str) -> Response:
    body = json.dumps(exc.body(), indent=2).encode()
    return Response(exc.http_status, body, {"Content-Type": "application/json", "Request-Id": request_id,
                                            **exc.headers})
