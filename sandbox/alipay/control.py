"""The control API (``/_sandbox/...``): play the payer, inspect the books, misbehave on purpose.

Plain JSON, no signatures: it stands for things that happen on Alipay's side (a payer paying, an outage, a
lost order), not for anything a merchant could call. Errors are ``{"code", "message"}`` with 400/404/409.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.common.control import ControlError
from sandbox.common.control import json_body as _body
from sandbox.common.control import required_str as _required_str
from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import Request, Response, json_response

from .crypto import SIGN_TYPES, AlipayKey, SignType, check_public_key
from .faults import STATEMENT_KINDS, FaultBook, StatementFault, StatementFaultBook
from .gateway import trade_json
from .notify import yuan
from .state import IllegalTransition, Merchant, Order, SandboxState, UnknownOrder, alipay_time

Opener = Callable[[Mapping[str, str], str], Order]  # (signed params, host) -> the opened order


def key_id(key: AlipayKey) -> str:
    """A label for an Alipay public key (Alipay's signatures name no key, so the hub's map key is ours to pick)."""
    return f"alipay-{key.sign_type.lower()}-{hashlib.sha256(key.public_text.encode()).hexdigest()[:12]}"


def order_json(order: Order, refunds: list[dict[str, Any]]) -> dict[str, Any]:
    return {**trade_json(order), "status": order.status, "app_id": order.app_id, "method": order.terms.method,
            "subject": order.terms.subject, "notify_url": order.terms.notify_url, "refunded_fen": order.refunded_fen,
            "total_fen": order.terms.total_fen, "refunds": refunds,
            "time_expire": order.terms.time_expire.isoformat() if order.terms.time_expire else None}


class ControlApi:
    def __init__(self, state: SandboxState, faults: FaultBook, statement_faults: StatementFaultBook,
                 deliverer: Deliverer, alipay_keys: dict[SignType, AlipayKey], settle: Callable[[Order, bool], Order],
                 opener: Opener) -> None:
        self._state = state
        self._faults = faults
        self._statement_faults = statement_faults
        self._deliverer = deliverer
        self._keys = alipay_keys
        self._settle = settle
        self._open = opener

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except ControlError as exc:
                return json_response(exc.status, {"code": exc.code, "message": exc.message})
            except UnknownOrder as exc:
                return json_response(404, {"code": "ORDER_NOT_EXIST", "message": str(exc)})
            except IllegalTransition as exc:
                return json_response(409, {"code": "ILLEGAL_TRANSITION", "message": str(exc)})

        return wrapped

    # -- merchants and Alipay's keys -----------------------------------------------------------------------

    def register_merchant(self, request: Request) -> Response:
        body = _body(request)
        sign_type = body.get("sign_type", "RSA2")
        if sign_type not in SIGN_TYPES:
            raise ControlError(400, "PARAM_ERROR", "sign_type must be RSA2 or SM2")
        pid = body.get("pid") or body.get("merchant_id")
        if not isinstance(pid, str) or not pid.startswith("2088") or len(pid) != 16 or not pid.isdigit():
            raise ControlError(400, "PARAM_ERROR", "pid must be 16 digits starting with 2088")
        fee_rate_bps = body.get("fee_rate_bps", 60)
        if not isinstance(fee_rate_bps, int) or isinstance(fee_rate_bps, bool) or not 0 <= fee_rate_bps <= 10_000:
            raise ControlError(400, "PARAM_ERROR", "fee_rate_bps must be an integer 0..10000")
        try:
            public_key = check_public_key(sign_type, _required_str(body, "app_public_key"))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", f"app_public_key is not a valid {sign_type} key: {exc}") from exc
        merchant = Merchant(_required_str(body, "app_id"), pid, sign_type, public_key, fee_rate_bps)
        self._state.register_merchant(merchant)
        key = self._keys[sign_type]
        return json_response(200, {"app_id": merchant.app_id, "pid": pid, "sign_type": sign_type,
                                   "alipay_public_key": key.public_text, "alipay_key_id": key_id(key)})

    def alipay_keys(self, request: Request) -> Response:
        return json_response(200, {t: {"alipay_key_id": key_id(k), "alipay_public_key": k.public_text}
                                   for t, k in self._keys.items()})

    def rotate_alipay_key(self, request: Request) -> Response:
        """Alipay replaces its key: answers and notifies made from now on are signed with the new one; a notify
        already made keeps its old signature on every re-send (a hub must verify it while it holds both keys)."""
        sign_type = _body(request).get("sign_type", "RSA2")
        if sign_type not in SIGN_TYPES:
            raise ControlError(400, "PARAM_ERROR", "sign_type must be RSA2 or SM2")
        self._keys[sign_type] = AlipayKey.generate(sign_type)
        return self.alipay_keys(request)

    # -- the payer -----------------------------------------------------------------------------------------

    def _one_order(self, out_trade_no: str, app_id: Any) -> Order:
        orders = self._state.find(out_trade_no, app_id if isinstance(app_id, str) and app_id else None)
        if not orders:
            raise ControlError(404, "ORDER_NOT_EXIST", f"no order {out_trade_no} (a page/wap/app order exists once the "
                                                       "payer opened it: pass the payment's action to open it here)")
        if len(orders) > 1:
            raise ControlError(409, "AMBIGUOUS", "several apps use this out_trade_no; pass app_id")
        return orders[0]

    def _open_action(self, action: Any, host: str) -> None:
        """The payer follows the action the merchant showed them (link, form, app order string, QR code)."""
        if not isinstance(action, dict):
            raise ControlError(400, "PARAM_ERROR", "action must be the payment's action object")
        kind = action.get("type")
        if kind == "redirect_url" and isinstance(action.get("url"), str):
            params = dict(parse_qsl(urlsplit(action["url"]).query, keep_blank_values=True))
        elif kind == "form_post" and isinstance(action.get("fields"), dict):
            params = {str(k): str(v) for k, v in action["fields"].items()}
        elif kind == "app_params" and isinstance(action.get("order_string"), str):
            params = dict(parse_qsl(action["order_string"], keep_blank_values=True))
        elif kind == "qr_code":
            return  # a precreated order is already known here; paying it is scanning it
        else:
            raise ControlError(400, "PARAM_ERROR", f"cannot open an action of type {kind!r}")
        self._open(params, host)

    def pay(self, request: Request) -> Response:
        body = _body(request)
        out_trade_no = _required_str(body, "out_trade_no")
        result = body.get("result", "success")
        if result not in ("success", "fail"):
            raise ControlError(400, "PARAM_ERROR", "result must be success or fail")
        if "action" in body:
            self._open_action(body["action"], request.headers.get("host", "127.0.0.1"))
        order = self._one_order(out_trade_no, body.get("app_id"))
        settled = self._settle(order, result == "success")
        return json_response(200, {"order": self._describe(settled)})

    def show_order(self, request: Request) -> Response:
        order = self._one_order(request.path_params["out_trade_no"], request.query.get("app_id"))
        return json_response(200, {"order": self._describe(order)})

    def forget(self, request: Request) -> Response:
        order = self._one_order(request.path_params["out_trade_no"], request.query.get("app_id"))
        self._state.forget(order.app_id, order.out_trade_no)
        return json_response(200, {"forgotten": order.out_trade_no, "app_id": order.app_id})

    def _describe(self, order: Order) -> dict[str, Any]:
        refunds = [{"out_request_no": r.out_request_no, "refund_amount": yuan(r.refund_fen), "refund_fen": r.refund_fen,
                    "gmt_refund_pay": alipay_time(r.refunded_at)}
                   for r in self._state.refunds_of(order.app_id, order.out_trade_no)]
        return order_json(order, refunds)

    def ledger(self, request: Request) -> Response:
        entries = self._state.ledger_entries(request.query.get("app_id"))
        return json_response(200, {"entries": [
            {"entry_id": e.entry_id, "kind": e.kind, "occurred_at": e.occurred_at.isoformat(),
             "debit_account": e.debit_account, "credit_account": e.credit_account, "amount_fen": e.amount_fen,
             "fee_fen": e.fee_fen, "app_id": e.app_id, "pid": e.pid, "out_trade_no": e.out_trade_no,
             "trade_no": e.trade_no, "out_request_no": e.out_request_no}
            for e in entries
        ]})

    # -- deliveries and faults -----------------------------------------------------------------------------

    def deliveries(self, request: Request) -> Response:
        filters = {k: v for k, v in request.query.items() if k in ("event_type", "out_trade_no", "app_id", "trade_status")}

        def match(row: Mapping[str, Any]) -> bool:
            return all(row.get(k) == v for k, v in filters.items())

        attempts = [a.to_json() for a in self._deliverer.attempts()]
        return json_response(200, {"attempts": [a for a in attempts if match(a)],
                                   "suppressed": [s for s in self._deliverer.suppressed() if match(s)],
                                   "pending": self._deliverer.pending_count()})

    def arm_fault(self, request: Request) -> Response:
        body = _body(request)
        name = body.get("fault") or body.get("mode")
        delay_s, count, copies = body.get("delay_s"), body.get("count", 1), body.get("copies", 3)
        match = body.get("match") or body.get("api_method") or body.get("path_prefix") or ""
        if not isinstance(name, str) or not name:
            raise ControlError(400, "PARAM_ERROR", "fault is required")
        if delay_s is not None and (not isinstance(delay_s, (int, float)) or delay_s < 0):
            raise ControlError(400, "PARAM_ERROR", "delay_s must be a number >= 0")
        if not isinstance(count, int) or not isinstance(copies, int) or not isinstance(match, str):
            raise ControlError(400, "PARAM_ERROR", "count and copies must be integers, match a string")
        try:
            fault = self._faults.arm(name, count=count, delay_s=None if delay_s is None else float(delay_s),
                                     match=match, copies=copies)
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", str(exc)) from exc
        return json_response(200, {"fault": fault.to_json()})

    def list_faults(self, request: Request) -> Response:
        return json_response(200, {"faults": [f.to_json() for f in self._faults.armed()]})

    def clear_faults(self, request: Request) -> Response:
        self._faults.clear()
        return json_response(200, {"faults": []})

    def add_statement_fault(self, request: Request) -> Response:
        body = _body(request)
        day, kind = _required_str(body, "day"), _required_str(body, "kind")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise ControlError(400, "PARAM_ERROR", "day must be YYYY-MM-DD (a Beijing day)")
        if kind not in STATEMENT_KINDS:
            raise ControlError(400, "PARAM_ERROR", f"kind must be one of {sorted(STATEMENT_KINDS)}")
        out_trade_no = body.get("out_trade_no", "")
        if kind not in ("corrupt",) and (not isinstance(out_trade_no, str) or not out_trade_no):
            raise ControlError(400, "PARAM_ERROR", f"{kind} needs out_trade_no")
        for name in ("delta", "fee", "amount"):
            if name in body and (not isinstance(body[name], int) or isinstance(body[name], bool)):
                raise ControlError(400, "PARAM_ERROR", f"{name} must be an integer (minor units)")
        options = {k: v for k, v in body.items() if k not in ("day", "kind", "out_trade_no")}
        fault = StatementFault(day, kind, out_trade_no or "", options)
        self._statement_faults.add(fault)
        return json_response(200, {"statement_fault": fault.to_json()})

    def list_statement_faults(self, request: Request) -> Response:
        return json_response(200, {"statement_faults": [f.to_json() for f in self._statement_faults.all()]})

    def clear_statement_faults(self, request: Request) -> Response:
        self._statement_faults.clear()
        return json_response(200, {"statement_faults": []})

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"code": "NOT_FOUND", "message": f"no route {request.method} {request.path}"})
