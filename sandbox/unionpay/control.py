"""The control API (``/_sandbox/...``): plain JSON, no signatures. It plays the payer and the bank, and
misbehaves on request. ``out_trade_no`` may be the hub's id (``att_...``: mapped the way the hub maps it) or
the orderId itself. Errors are ``{"code", "message"}`` with 400/404/409.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from sandbox.common.control import ControlError
from sandbox.common.control import json_body as _body
from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import Request, Response, json_response

from . import cards, statement
from .api import GatewayApi
from .callbacks import CallbackSender
from .faults import FaultBook
from .pki import UnionPayKeys, load_public_key, to_pem
from .state import AcpError, IllegalTransition, Order, Refund, SandboxState
from .wire import encode_form, order_id_of, to_hub_id

_MERCHANT_ID = re.compile(r"^[0-9A-Za-z]{15}$")


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(400, "PARAM_ERROR", f"{name} is required (non-empty string)")
    return value


def order_json(order: Order) -> dict[str, Any]:
    return {
        "merchant_id": order.merchant_id, "order_id": order.order_id, "out_trade_no": to_hub_id(order.order_id),
        "txn_time": order.txn_time, "kind": order.kind, "status": order.status, "orig_resp_code": order.orig_resp_code,
        "amount_fen": order.amount_fen, "biz_type": order.biz_type, "query_id": order.query_id, "tn": order.tn,
        "back_url": order.back_url, "front_url": order.front_url, "card": order.card_masked, "card_kind": order.card_kind,
        "phone": order.phone_masked, "refunded_fen": order.refunded_fen, "instalments": order.instalments,
        "pay_timeout": order.pay_timeout.isoformat() if order.pay_timeout else None,
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
    }


def refund_json(refund: Refund) -> dict[str, Any]:
    return {"order_id": refund.order_id, "out_refund_no": to_hub_id(refund.order_id), "txn_time": refund.txn_time,
            "status": refund.status, "amount_fen": refund.amount_fen, "query_id": refund.query_id,
            "orig_query_id": refund.orig_query_id,
            "succeeded_at": refund.succeeded_at.isoformat() if refund.succeeded_at else None}


class ControlApi:
    def __init__(self, state: SandboxState, keys: UnionPayKeys, faults: FaultBook, deliverer: Deliverer,
                 callbacks: CallbackSender, gateway: GatewayApi, statement_faults: statement.StatementFaults) -> None:
        self._state = state
        self._keys = keys
        self._faults = faults
        self._deliverer = deliverer
        self._callbacks = callbacks
        self._gateway = gateway
        self._statement_faults = statement_faults

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except ControlError as exc:
                return json_response(exc.status, {"code": exc.code, "message": exc.message})
            except IllegalTransition as exc:
                return json_response(409, {"code": "ILLEGAL_TRANSITION", "message": str(exc)})
            except AcpError as exc:
                status = 404 if exc.code == "34" else 400
                return json_response(status, {"code": f"ACP_{exc.code}", "message": exc.message})

        return wrapped

    # -- merchants and certificates ----------------------------------------------------------------------------

    def register_merchant(self, request: Request) -> Response:
        body = _body(request)
        merchant_id = _text(body, "merchant_id")
        if not _MERCHANT_ID.match(merchant_id):
            raise ControlError(400, "PARAM_ERROR", "merchant_id must be 15 letters or digits")
        try:
            public_key = load_public_key(_text(body, "merchant_public_key"))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", f"merchant_public_key is not an RSA key: {exc}") from exc
        fee_rate_bps = body.get("fee_rate_bps", 55)
        if not isinstance(fee_rate_bps, int) or isinstance(fee_rate_bps, bool) or not 0 <= fee_rate_bps <= 10_000:
            raise ControlError(400, "PARAM_ERROR", "fee_rate_bps must be an integer 0..10000")
        name = body.get("name") if isinstance(body.get("name"), str) else "沙箱测试商户"
        cert = self._keys.issue_merchant_cert(merchant_id, public_key)
        cert_id = str(cert.serial_number)
        self._state.register(merchant_id, cert_id, public_key, fee_rate_bps, name or "沙箱测试商户")
        return json_response(200, {"merchant_id": merchant_id, "cert_id": cert_id, "merchant_cert": to_pem(cert),
                                   **self._keys.chain_json()})

    def certs(self, request: Request) -> Response:
        return json_response(200, {**self._keys.chain_json(),
                                   "retired_sign_certs": [k.pem for k in self._keys.retired],
                                   "retired_chains": [{"root_cert": r.pem, "middle_cert": m.pem}
                                                      for r, m in self._keys.retired_chains]})

    def rotate_signing_cert(self, request: Request) -> Response:
        body = _body(request) if request.body else {}
        self._keys.rotate_signer(new_chain=bool(body.get("new_chain", False)))
        return self.certs(request)

    def test_cards(self, request: Request) -> Response:
        return json_response(200, {"cards": [card.public_json() for card in cards.TEST_CARDS],
                                   "note": "any other Luhn-valid number starting 62 is a debit card that pays"})

    # -- payer actions ---------------------------------------------------------------------------------------

    def _one_order(self, out_trade_no: str, merchant_id: str | None) -> Order:
        orders = self._state.orders_named(order_id_of(out_trade_no), merchant_id)
        if not orders:
            raise ControlError(404, "ORDER_NOT_EXIST", f"no order {out_trade_no}")
        if len(orders) > 1:
            raise ControlError(409, "AMBIGUOUS", "several merchants use this orderId; pass merchant_id")
        return orders[0]

    def pay(self, request: Request) -> Response:
        body = _body(request)
        result = body.get("result", "success")
        if result not in ("success", "fail"):
            raise ControlError(400, "PARAM_ERROR", "result must be success or fail")
        out_trade_no = _text(body, "out_trade_no")
        merchant_id = body.get("merchant_id") if isinstance(body.get("merchant_id"), str) else None
        form = body.get("form")
        action = body.get("action")
        if form is None and isinstance(action, dict) and action.get("type") == "form_post":
            form = action.get("fields")  # the payment's action as the hub returned it
        if isinstance(form, dict):
            # The payer's browser submits the gateway form first (what payment.action.fields holds).
            posted = encode_form({str(key): str(value) for key, value in form.items()})
            fields = self._gateway.verified(Request("POST", "/", "/", {}, {}, posted))
            self._gateway.submit_front(fields)
        order = self._one_order(out_trade_no, merchant_id)
        if order.kind == "card":
            if order.status == "SMS_SENT":
                raise IllegalTransition("the card payer's next step is the SMS code, sent through the hub's confirm API")
            done = self._gateway.complete_challenge(order, result == "success")
        else:
            if order.status != "SUBMITTED":
                raise IllegalTransition(f"order {order.order_id} is {order.status}")
            done = self._state.pay(order.merchant_id, order.order_id, result == "success")
            if done.status == "PAID":
                self._callbacks.payment_succeeded(done, to_hub_id(done.order_id))
        return json_response(200, {"order": order_json(done)})

    def sms(self, request: Request) -> Response:
        order = self._one_order(request.path_params["out_trade_no"], request.query.get("merchant_id"))
        if order.kind != "card" or not order.sms_code:
            raise ControlError(404, "NO_SMS", f"no SMS code was sent for {order.order_id}")
        return json_response(200, {"code": order.sms_code, "phone_masked": order.phone_masked})

    def show_order(self, request: Request) -> Response:
        order = self._one_order(request.path_params["out_trade_no"], request.query.get("merchant_id"))
        refunds = [refund_json(r) for r in self._state.refunds_of(order.merchant_id, order.order_id)]
        return json_response(200, {"order": order_json(order), "refunds": refunds})

    def forget(self, request: Request) -> Response:
        order_id = order_id_of(request.path_params["out_trade_no"])
        merchant_id = request.query.get("merchant_id")
        owners = {m for (m, n) in self._state.orders if n == order_id} | {m for (m, n) in self._state.refunds if n == order_id}
        if merchant_id:
            owners &= {merchant_id}
        if not owners:
            raise ControlError(404, "ORDER_NOT_EXIST", f"no order {order_id}")
        for owner in owners:
            self._state.forget(owner, order_id)
        return json_response(200, {"forgotten": order_id})

    def ledger(self, request: Request) -> Response:
        entries = self._state.ledger_entries(request.query.get("merchant_id"))
        return json_response(200, {"entries": [
            {"entry_id": e.entry_id, "kind": e.kind, "occurred_at": e.occurred_at.isoformat(), "merchant_id": e.merchant_id,
             "debit_account": e.debit_account, "credit_account": e.credit_account, "amount_fen": e.amount_fen,
             "fee_fen": e.fee_fen, "order_id": e.order_id, "out_trade_no": to_hub_id(e.order_id), "query_id": e.query_id,
             "orig_order_id": e.orig_order_id or None}
            for e in entries]})

    # -- deliveries and faults -------------------------------------------------------------------------------

    def deliveries(self, request: Request) -> Response:
        wanted = dict(request.query)
        if "out_trade_no" in wanted:
            wanted["order_id"] = order_id_of(wanted.pop("out_trade_no"))
        filters = {k: v for k, v in wanted.items() if k in ("event_type", "order_id", "merchant_id")}

        def match(row: Mapping[str, Any]) -> bool:
            return all(row.get(k) == v for k, v in filters.items())

        attempts = [a.to_json() for a in self._deliverer.attempts()]
        return json_response(200, {"attempts": [a for a in attempts if match(a)],
                                   "suppressed": [s for s in self._deliverer.suppressed() if match(s)],
                                   "pending": self._deliverer.pending_count()})

    def arm_fault(self, request: Request) -> Response:
        body = _body(request)
        name = body.get("fault") or body.get("mode")
        if not isinstance(name, str):
            raise ControlError(400, "PARAM_ERROR", "fault is required")
        delay_s, count, copies = body.get("delay_s"), body.get("count", 1), body.get("copies", 3)
        if delay_s is not None and (not isinstance(delay_s, (int, float)) or delay_s < 0):
            raise ControlError(400, "PARAM_ERROR", "delay_s must be a number >= 0")
        if not isinstance(count, int) or not isinstance(copies, int):
            raise ControlError(400, "PARAM_ERROR", "count and copies must be integers")
        try:
            fault = self._faults.arm(name, count=count, delay_s=None if delay_s is None else float(delay_s),
                                     path_prefix=str(body.get("path_prefix") or ""), copies=copies,
                                     code=str(body.get("code") or "03"), field=str(body.get("field") or "respCode"))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", str(exc)) from exc
        return json_response(200, {"fault": fault.to_json()})

    def list_faults(self, request: Request) -> Response:
        return json_response(200, {"faults": [f.to_json() for f in self._faults.armed()]})

    def clear_faults(self, request: Request) -> Response:
        self._faults.clear()
        return json_response(200, {"faults": []})

    def arm_statement_fault(self, request: Request) -> Response:
        body = _body(request)
        kind = _text(body, "kind")
        if kind not in statement.FAULT_KINDS:
            raise ControlError(400, "PARAM_ERROR", f"kind must be one of {sorted(statement.FAULT_KINDS)}")
        try:
            date.fromisoformat(_text(body, "day"))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", "day must be YYYY-MM-DD") from exc
        if kind != "corrupt":
            body.setdefault("out_trade_no", body.get("out_refund_no"))
            _text(body, "out_trade_no")
        if "mchid" in body and "merchant_id" not in body:
            body["merchant_id"] = body.pop("mchid")  # the WeChat sandbox's name for the same filter
        if "merchant_id" in body and not isinstance(body["merchant_id"], str):
            raise ControlError(400, "PARAM_ERROR", "merchant_id must be a string")
        checks = {"amount": ("delta", int), "fee": ("fee", int), "extra_row": ("amount", int), "currency": ("currency", str),
                  "status": ("status", str)}
        if kind in checks:
            name, kind_type = checks[kind]
            value = body.get(name)
            if not isinstance(value, kind_type) or isinstance(value, bool):
                raise ControlError(400, "PARAM_ERROR", f"{kind} needs {name} ({kind_type.__name__})")
        if kind == "currency" and body["currency"] not in statement.NUMERIC_BY_CURRENCY:
            raise ControlError(400, "PARAM_ERROR", f"currency must be one of {sorted(statement.NUMERIC_BY_CURRENCY)}")
        if kind == "status" and str(body["status"]).lower() not in statement.REASON_BY_STATUS:
            raise ControlError(400, "PARAM_ERROR", f"status must be one of {sorted(statement.REASON_BY_STATUS)}")
        self._statement_faults.add(body)
        return json_response(200, {"statement_faults": self._statement_faults.all()})

    def list_statement_faults(self, request: Request) -> Response:
        return json_response(200, {"statement_faults": self._statement_faults.all()})

    def clear_statement_faults(self, request: Request) -> Response:
        self._statement_faults.clear(request.query.get("merchant_id") or request.query.get("mchid"))
        return json_response(200, {"statement_faults": []})

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"code": "NOT_FOUND", "message": f"no route {request.method} {request.path}"})

