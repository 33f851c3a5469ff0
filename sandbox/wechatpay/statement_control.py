"""Control endpoints for reconciliation tests: statement faults, and orders the channel loses.

  POST   /_sandbox/statement-faults            arm one fault (see statement_faults.py for the kinds)
  GET    /_sandbox/statement-faults            list armed faults
  DELETE /_sandbox/statement-faults[?mchid=&day=]   clear them (all, or one merchant's / one day's)
  POST   /_sandbox/orders/{out_trade_no}/forget[?mchid=]   the channel loses the order
"""

from __future__ import annotations

from datetime import date

from sandbox.common.httpserver import Request, Response, json_response

from .control import ControlError, _body
from .errors import OrderNotExist
from .resources import transaction_json
from .state import SandboxState
from .statement_faults import StatementFaultBook, StatementFaultError, parse_fault


class StatementControl:
    def __init__(self, state: SandboxState, faults: StatementFaultBook) -> None:
        self._state = state
        self._faults = faults

    def arm(self, request: Request) -> Response:
        try:
            fault = parse_fault(_body(request))
        except StatementFaultError as exc:
            raise ControlError(400, "PARAM_ERROR", str(exc)) from exc
        self._faults.arm(fault)
        return json_response(200, {"fault": fault.to_json()})

    def list(self, request: Request) -> Response:
        return json_response(200, {"faults": [fault.to_json() for fault in self._faults.armed()]})

    def clear(self, request: Request) -> Response:
        day_text = request.query.get("day")
        try:
            day = date.fromisoformat(day_text) if day_text else None
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", "day must be YYYY-MM-DD") from exc
        removed = self._faults.clear(mchid=request.query.get("mchid") or None, day=day)
        return json_response(200, {"removed": removed, "faults": [f.to_json() for f in self._faults.armed()]})

    def forget(self, request: Request) -> Response:
        out_trade_no = request.path_params["out_trade_no"]
        mchid = request.query.get("mchid")
        orders = self._state.orders_named(out_trade_no, mchid)
        if not orders:
            raise ControlError(404, "ORDER_NOT_EXIST", f"no order {out_trade_no}")
        if len(orders) > 1:
            raise ControlError(409, "AMBIGUOUS", "several merchants use this out_trade_no; pass ?mchid=")
        try:
            forgotten = self._state.forget_order(orders[0].mchid, out_trade_no)
        except OrderNotExist as exc:  # forgotten by a concurrent call in between
            raise ControlError(404, "ORDER_NOT_EXIST", f"no order {out_trade_no}") from exc
        return json_response(200, {"forgotten": transaction_json(forgotten)})
