"""The control API (``/_sandbox/...``, plain JSON, no auth): what a test or a developer uses to play the payer,
the Dashboard, and a misbehaving Stripe. Errors are ``{"code", "message"}`` with 400/404/409."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sandbox.common.control import ControlError
from sandbox.common.control import json_body as _body
from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import Request, Response, json_response

from .errors import StripeError
from .faults import FaultBook
from .records import Intent
from .reports import Reporting
from .resources import balance_transaction_json, charge_json, endpoint_json, intent_json, refund_json
from .sessions import CheckoutBook
from .state import IllegalTransition, SandboxState
from .webhooks import WebhookSender

DEFAULT_FEE_RATE_BPS = 290  # 2.9 % + 30 (US card pricing)
DEFAULT_FIXED_FEE = 30


def _int(body: Mapping[str, Any], name: str, default: int, maximum: int = 10_000) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise ControlError(400, "PARAM_ERROR", f"{name} must be an integer 0..{maximum}")
    return value


class ControlApi:
    checkout: CheckoutBook | None = None  # set by the server: ``/_sandbox/pay`` pays an open Checkout Session too

    def __init__(self, state: SandboxState, faults: FaultBook, deliverer: Deliverer, webhooks: WebhookSender,
                 reporting: Reporting, requests_log: Callable[[], list[dict[str, Any]]]) -> None:
        self._state = state
        self._faults = faults
        self._deliverer = deliverer
        self._webhooks = webhooks
        self._reporting = reporting
        self._requests_log = requests_log

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except ControlError as exc:
                return json_response(exc.status, {"code": exc.code, "message": exc.message})
            except IllegalTransition as exc:
                return json_response(409, {"code": "ILLEGAL_TRANSITION", "message": str(exc)})

        return wrapped

    def routes(self) -> list[tuple[str, str, Callable[[Request], Response]]]:
        return [
            ("POST", "/_sandbox/merchants", self.register_merchant),
            ("POST", "/_sandbox/pay", self.pay),
            ("GET", "/_sandbox/orders/{out_trade_no}", self.show_order),
            ("POST", "/_sandbox/orders/{out_trade_no}/forget", self.forget_order),
            ("POST", "/_sandbox/refunds/{refund}/fail", self.fail_refund),
            ("POST", "/_sandbox/webhook_endpoints/{endpoint}/roll", self.roll_secret),
            ("GET", "/_sandbox/ledger", self.ledger),
            ("GET", "/_sandbox/deliveries", self.deliveries),
            ("GET", "/_sandbox/requests", self.requests),
            ("POST", "/_sandbox/faults", self.arm_fault),
            ("GET", "/_sandbox/faults", self.list_faults),
            ("DELETE", "/_sandbox/faults", self.clear_faults),
            ("POST", "/_sandbox/statement-faults", self.add_statement_fault),
            ("GET", "/_sandbox/statement-faults", self.list_statement_faults),
            ("DELETE", "/_sandbox/statement-faults", self.clear_statement_faults),
        ]

    # -- accounts ------------------------------------------------------------------------------------------------

    def register_merchant(self, request: Request) -> Response:
        """Create a Stripe account (or give an existing one a further secret key). Webhook endpoints are then
        made through the real API (``POST /v1/webhook_endpoints``) with that key, as an operator would."""
        body = _body(request)
        merchant_id = body.get("merchant_id")
        if merchant_id is not None and (not isinstance(merchant_id, str) or not merchant_id.startswith("acct_")):
            raise ControlError(400, "PARAM_ERROR", "merchant_id must be an acct_ id")
        account, secret_key = self._state.register_account(
            merchant_id, connect=bool(body.get("connect", True)),
            fee_rate_bps=_int(body, "fee_rate_bps", DEFAULT_FEE_RATE_BPS),
            fixed_fee=_int(body, "fixed_fee", DEFAULT_FIXED_FEE, maximum=1_000_000))
        return json_response(200, {"merchant_id": account.merchant_id, "secret_key": secret_key,
                                   "publishable_key": account.publishable_key, "livemode": False})

    # -- the payer ----------------------------------------------------------------------------------------------

    def _intent_for(self, attempt_id: str) -> Intent:
        found = [i for i in self._state.intents_for_attempt(attempt_id) if not i.forgotten]
        if not found:
            raise ControlError(404, "resource_missing", f"no PaymentIntent with metadata[attempt_id]={attempt_id}")
        return found[-1]

    def pay(self, request: Request) -> Response:
        body = _body(request)
        attempt_id = body.get("out_trade_no")
        if not isinstance(attempt_id, str) or not attempt_id:
            raise ControlError(400, "PARAM_ERROR", "out_trade_no (the hub's attempt id) is required")
        result = body.get("result", "success")
        if result not in ("success", "fail"):
            raise ControlError(400, "PARAM_ERROR", "result must be success or fail")
        session_id = self.checkout.open_for_attempt(attempt_id) if self.checkout else None
        if session_id is not None:
            # A Checkout Session not paid yet: the payer presses Pay on its page (success only: the page's card pays).
            if result != "success":
                raise ControlError(400, "PARAM_ERROR", "a Checkout Session is paid or left open; result=fail does not apply")
            try:
                paid = self.checkout.pay(session_id)
            except IllegalTransition as exc:
                raise ControlError(409, "UNEXPECTED_STATE", str(exc)) from exc
            return json_response(200, {"payment_intent": intent_json(self._state.intent(paid.account,
                                                                                     str(paid.payment_intent))),
                                       "checkout_session": self.checkout.json(paid)})
        intent = self._state.payer_pays(self._intent_for(attempt_id).id, result == "success")
        return json_response(200, {"payment_intent": intent_json(intent)})

    def show_order(self, request: Request) -> Response:
        intent = self._intent_for(request.path_params["out_trade_no"])
        charge = self._state.charge(intent.latest_charge or "")
        refunds = self._state.list_refunds(intent.account, intent.id, None)
        return json_response(200, {
            "payment_intent": intent_json(intent), "charge": charge_json(charge, intent) if charge else None,
            "refunds": [refund_json(r) for r in refunds], "events": self._webhooks.events_of_intent(intent.id),
        })

    def forget_order(self, request: Request) -> Response:
        intent = self._intent_for(request.path_params["out_trade_no"])
        self._state.forget(intent.id)
        return json_response(200, {"forgotten": intent.id})

    def fail_refund(self, request: Request) -> Response:
        """A refund the card network sends back: ``refund`` is Stripe's ``re_...`` or the hub's refund id."""
        found = self._state.refund_by_our_id(request.path_params["refund"])
        if found is None:
            raise ControlError(404, "resource_missing", f"no refund {request.path_params['refund']}")
        reason = _body(request).get("failure_reason", "expired_or_canceled_card") if request.body else \
            "expired_or_canceled_card"
        return json_response(200, {"refund": refund_json(self._state.fail_refund(found.id, str(reason)))})

    def roll_secret(self, request: Request) -> Response:
        """The Dashboard's "Roll secret" with the old secret kept for ``expire_old_in_s`` (0: expires now)."""
        body = _body(request) if request.body else {}
        expire = body.get("expire_old_in_s", 3600)
        if not isinstance(expire, int | float) or expire < 0:
            raise ControlError(400, "PARAM_ERROR", "expire_old_in_s must be a number >= 0")
        try:
            endpoint = self._state.roll_endpoint_secret(request.path_params["endpoint"], float(expire))
        except StripeError as exc:
            raise ControlError(404, "resource_missing", str(exc)) from exc
        return json_response(200, {**endpoint_json(endpoint), "secret": endpoint.secrets[0][0]})

    # -- books, deliveries, requests ---------------------------------------------------------------------------

    def ledger(self, request: Request) -> Response:
        entries = self._state.ledger_entries(request.query.get("merchant_id"))
        return json_response(200, {"entries": [balance_transaction_json(e) for e in entries]})

    def deliveries(self, request: Request) -> Response:
        keys = ("event_type", "out_trade_no", "out_refund_no", "merchant_id", "payment_intent")
        filters = {k: v for k, v in request.query.items() if k in keys}

        def match(row: Mapping[str, Any]) -> bool:
            return all(row.get(k) == v for k, v in filters.items())

        return json_response(200, {
            "attempts": [a for a in (x.to_json() for x in self._deliverer.attempts()) if match(a)],
            "suppressed": [s for s in self._deliverer.suppressed() if match(s)],
            "pending": self._deliverer.pending_count(),
        })

    def requests(self, request: Request) -> Response:
        return json_response(200, {"requests": self._requests_log()})

    # -- faults ------------------------------------------------------------------------------------------------

    def arm_fault(self, request: Request) -> Response:
        body = _body(request)
        name = body.get("fault") or body.get("mode")
        if not isinstance(name, str):
            raise ControlError(400, "PARAM_ERROR", "fault (name) is required")
        delay_s = body.get("delay_s")
        if delay_s is not None and (not isinstance(delay_s, int | float) or delay_s < 0):
            raise ControlError(400, "PARAM_ERROR", "delay_s must be a number >= 0")
        try:
            fault = self._faults.arm(
                name, count=_int(body, "count", 1), delay_s=None if delay_s is None else float(delay_s),
                path_prefix=str(body.get("path_prefix") or ""), event_type=str(body.get("event_type") or ""),
                copies=_int(body, "copies", 3), stored=bool(body.get("stored", False)))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", str(exc)) from exc
        return json_response(200, {"fault": fault.to_json()})

    def list_faults(self, request: Request) -> Response:
        return json_response(200, {"faults": [f.to_json() for f in self._faults.armed()]})

    def clear_faults(self, request: Request) -> Response:
        self._faults.clear()
        return json_response(200, {"faults": []})

    def add_statement_fault(self, request: Request) -> Response:
        try:
            fault = self._reporting.add_statement_fault(_body(request))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", str(exc)) from exc
        return json_response(200, {"statement_fault": fault})

    def list_statement_faults(self, request: Request) -> Response:
        return json_response(200, {"statement_faults": self._reporting.statement_faults()})

    def clear_statement_faults(self, request: Request) -> Response:
        self._reporting.clear_statement_faults()
        return json_response(200, {"statement_faults": []})

    def not_found(self, request: Request) -> Response:
        if request.path.startswith("/v1/"):
            return json_response(404, {"error": {"type": "invalid_request_error",
                                                 "message": f"Unrecognized request URL ({request.method}: {request.path})."}})
        return json_response(404, {"code": "NOT_FOUND", "message": f"no route {request.method} {request.path}"})
