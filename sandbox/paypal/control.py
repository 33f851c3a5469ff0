"""The control API (``/_sandbox/...``): plain JSON, no auth. It stands for what happens on PayPal's side (a buyer
approving, an outage, a certificate rotation), never for anything a merchant could call."""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from sandbox.common.control import ControlError
from sandbox.common.control import json_body as _body
from sandbox.common.control import required_str as _required_str
from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import Request, Response, json_response

from .api import RestApi
from .errors import IllegalTransition, PayPalError
from .faults import FaultBook
from .report import StatementFaults
from .state import FundingResult, Order, SandboxState, paypal_id
from .webhooks import CertBook, WebhookSender

ROOT_NAME = "paypal-sandbox-test-root"
_RESULTS: dict[str, FundingResult] = {"success": "success", "fail": "fail", "pending": "pending"}


def _int(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ControlError(400, "PARAM_ERROR", f"{name} must be an integer {low}..{high}")
    return value


class ControlApi:
    def __init__(self, state: SandboxState, api: RestApi, sender: WebhookSender, certs: CertBook, faults: FaultBook,
                 statement_faults: StatementFaults, deliverer: Deliverer,
                 on_approved: Callable[[Order], None], on_capture_settled: Callable[[str], None]) -> None:
        self._state, self._api, self._sender, self._certs = state, api, sender, certs
        self._faults, self._statement_faults, self._deliverer = faults, statement_faults, deliverer
        self._on_approved, self._on_capture_settled = on_approved, on_capture_settled

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except ControlError as exc:
                return json_response(exc.status, {"code": exc.code, "message": exc.message})
            except IllegalTransition as exc:
                return json_response(409, {"code": "ILLEGAL_TRANSITION", "message": str(exc)})
            except PayPalError as exc:
                return json_response(exc.status, {"code": exc.issue or exc.name, "message": exc.message})

        return wrapped

    # -- merchants and certificates ----------------------------------------------------------------------

    def register_merchant(self, request: Request) -> Response:
        body = _body(request)
        merchant_id = body.get("merchant_id") or paypal_id(13)
        if not isinstance(merchant_id, str) or not merchant_id.isalnum():
            raise ControlError(400, "PARAM_ERROR", "merchant_id must be letters and digits")
        email = body.get("email") or f"sb-{secrets.token_hex(4)}@business.example.com"
        merchant = self._state.register_merchant(
            merchant_id, str(email), _int(body, "fee_rate_bps", 349, 0, 10_000), _int(body, "fee_fixed_minor", 49, 0, 10_000))
        return json_response(200, {
            "client_id": merchant.client_id, "client_secret": merchant.client_secret,
            "merchant_id": merchant.merchant_id, "email": merchant.email, **self._cert_info(),
        })

    def _cert_info(self) -> dict[str, Any]:
        current = self._certs.current()
        return {
            "cert_url": self._sender.cert_url(current),
            "webhook_certs": {self._sender.cert_url(c): c.chain_pem for c in self._certs.all()},
            "cert_roots": {ROOT_NAME: self._certs.ca.root_pem},
        }

    def certs(self, request: Request) -> Response:
        return json_response(200, self._cert_info())

    def rotate_cert(self, request: Request) -> Response:
        """PayPal starts signing with a new certificate (new URL); the old URL keeps serving the old one."""
        self._certs.rotate()
        return json_response(200, self._cert_info())

    def revoke_tokens(self, request: Request) -> Response:
        return json_response(200, {"revoked": self._state.revoke_tokens()})

    # -- the buyer -----------------------------------------------------------------------------------------

    def _order(self, out_trade_no: str) -> Order:
        order = self._state.order_for_attempt(out_trade_no)
        if order is None:
            try:
                order = self._state.order(out_trade_no)  # a PayPal order id works too
            except PayPalError:
                raise ControlError(404, "RESOURCE_NOT_FOUND", f"no order for {out_trade_no}") from None
        return order

    def pay(self, request: Request) -> Response:
        """The buyer logs in and approves (result success/pending: the funding source will clear or be held at
        capture; fail: it will be declined at capture). PayPal then sends CHECKOUT.ORDER.APPROVED."""
        body = _body(request)
        result = body.get("result", "success")
        if result not in _RESULTS:
            raise ControlError(400, "PARAM_ERROR", "result must be success, fail or pending")
        order = self.approve(self._order(_required_str(body, "out_trade_no")).order_id, _RESULTS[result])
        return json_response(200, {"order": self._api.order_json(order)})

    def approve(self, order_id: str, funding: FundingResult) -> Order:
        payer_id = paypal_id(13)
        payer = {"name": {"given_name": "Sandbox", "surname": "Buyer"},
                 "email_address": f"buyer-{payer_id.lower()}@personal.example.com", "payer_id": payer_id,
                 "address": {"country_code": "US"}}
        order = self._state.approve(order_id, funding, payer)
        self._on_approved(order)
        return order

    def settle_capture(self, request: Request) -> Response:
        body = _body(request)
        result = body.get("result", "success")
        if result not in ("success", "fail"):
            raise ControlError(400, "PARAM_ERROR", "result must be success or fail")
        capture = self._state.settle_capture(request.path_params["capture_id"], result == "success")
        self._on_capture_settled(capture.capture_id)
        return json_response(200, {"capture_id": capture.capture_id, "status": capture.status})

    def checkout_page(self, request: Request) -> Response:
        order = self._state.order(request.query.get("token", ""))
        merchant = self._state.merchant(order.client_id)
        name = html.escape(order.brand_name or (merchant.email if merchant else "the merchant"))
        value = html.escape(str(self._api.order_json(order)["purchase_units"][0]["amount"]["value"]))
        token = html.escape(order.order_id)
        page = (f"<!doctype html><title>PayPal sandbox checkout</title><h1>Pay {name}</h1>"
                f"<p>{value} {html.escape(order.currency)} (order {token}, status {html.escape(order.status)})</p>"
                f'<form method="post" action="/checkoutnow/{token}/approve"><button>Approve</button></form>'
                f'<form method="post" action="/checkoutnow/{token}/cancel"><button>Cancel</button></form>')
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def checkout_approve(self, request: Request) -> Response:
        order = self.approve(request.path_params["order_id"], "success")
        payer_id = (order.payer or {}).get("payer_id", "")
        return self._redirect(order.return_url, {"token": order.order_id, "PayerID": payer_id}, order)

    def checkout_cancel(self, request: Request) -> Response:
        order = self._state.order(request.path_params["order_id"])
        return self._redirect(order.cancel_url, {"token": order.order_id}, order)

    def _redirect(self, url: str | None, params: dict[str, str], order: Order) -> Response:
        if not url:
            return json_response(200, {"order": self._api.order_json(order)})
        target = url + ("&" if "?" in url else "?") + urlencode(params)
        return Response(302, b"", {"Location": target})

    # -- looking ---------------------------------------------------------------------------------------------

    def show_order(self, request: Request) -> Response:
        order = self._order(request.path_params["out_trade_no"])
        return json_response(200, {"order": self._api.order_json(order), "funding": order.funding})

    def forget(self, request: Request) -> Response:
        count = self._state.forget(request.path_params["out_trade_no"])
        if not count:
            raise ControlError(404, "RESOURCE_NOT_FOUND", "no such order")
        return json_response(200, {"forgotten": count})

    def ledger(self, request: Request) -> Response:
        return json_response(200, {"entries": [
            {"entry_id": e.entry_id, "kind": e.kind, "occurred_at": e.occurred_at.isoformat(), "merchant_id": e.merchant_id,
             "currency": e.currency, "amount_minor": e.amount_minor, "fee_minor": e.fee_minor,
             "transaction_id": e.transaction_id, "paypal_reference_id": e.paypal_reference_id, "order_id": e.order_id,
             "invoice_id": e.invoice_id, "custom_id": e.custom_id}
            for e in self._state.ledger_entries()
        ]})

    def deliveries(self, request: Request) -> Response:
        filters = {k: v for k, v in request.query.items() if k in ("event_type", "out_trade_no", "order_id", "webhook_id")}

        def match(row: Mapping[str, Any]) -> bool:
            return all(row.get(k) == v for k, v in filters.items())

        return json_response(200, {
            "attempts": [a for a in (x.to_json() for x in self._deliverer.attempts()) if match(a)],
            "suppressed": [s for s in self._deliverer.suppressed() if match(s)],
            "pending": self._deliverer.pending_count(),
        })

    # -- faults ------------------------------------------------------------------------------------------------

    def arm_fault(self, request: Request) -> Response:
        body = _body(request)
        name = body.get("fault") or body.get("mode")
        delay_s = body.get("delay_s")
        if delay_s is not None and (not isinstance(delay_s, (int, float)) or isinstance(delay_s, bool) or delay_s < 0):
            raise ControlError(400, "PARAM_ERROR", "delay_s must be a number >= 0")
        try:
            fault = self._faults.arm(str(name), _int(body, "count", 1, 1, 1000),
                                     None if delay_s is None else float(delay_s), str(body.get("path_prefix") or ""),
                                     _int(body, "copies", 3, 1, 50))
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
            fault = self._statement_faults.add(_body(request))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", str(exc)) from exc
        return json_response(200, {"statement_fault": fault})

    def clear_statement_faults(self, request: Request) -> Response:
        self._statement_faults.clear()
        return json_response(200, {"statement_faults": []})

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"name": "RESOURCE_NOT_FOUND", "message": f"no route {request.method} {request.path}"})
