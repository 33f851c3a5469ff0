"""The control API (``/_sandbox/...``): what a test or a developer uses to play the payer and to misbehave.

Plain JSON, no signatures: it stands for things that happen on WeChat's side (a payer scanning a code,
an outage), not for anything a merchant could call. Errors are ``{"code", "message"}`` with 400/404/409.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sandbox.common.control import ControlError
from sandbox.common.control import json_body as _body
from sandbox.common.control import required_str as _required_str
from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import Request, Response, json_response

from .auth import PlatformKeys, check_merchant_public_key
from .callbacks import CallbackSender
from .faults import FaultBook
from .resources import refund_json, transaction_json
from .state import IllegalTransition, Merchant, Order, SandboxState

_ALLOWED_KEY_CHARS = frozenset(string.ascii_letters + string.digits)


def _paid_at(body: Mapping[str, Any]) -> datetime | None:
    """Optional ``paid_at`` (ISO 8601 with an offset): when the payer paid, for payments made just before
    midnight in reconciliation tests. Absent: now."""
    raw = body.get("paid_at")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ControlError(400, "PARAM_ERROR", "paid_at must be ISO 8601 with an offset")
    return moment


class ControlApi:
    def __init__(self, state: SandboxState, faults: FaultBook, deliverer: Deliverer, callbacks: CallbackSender,
                 platform_keys: PlatformKeys) -> None:
        self._state = state
        self._faults = faults
        self._deliverer = deliverer
        self._callbacks = callbacks
        self._platform_keys = platform_keys

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except ControlError as exc:
                return json_response(exc.status, {"code": exc.code, "message": exc.message})
            except IllegalTransition as exc:
                return json_response(409, {"code": "ILLEGAL_TRANSITION", "message": str(exc)})

        return wrapped

    # -- merchants ---------------------------------------------------------------------------------------

    def register_merchant(self, request: Request) -> Response:
        body = _body(request)
        sign_type = body.get("sign_type", "RSA")
        if sign_type not in ("RSA", "SM2"):
            raise ControlError(400, "PARAM_ERROR", "sign_type must be RSA or SM2")
        appids = body.get("appids")
        if not isinstance(appids, list) or not appids or not all(isinstance(a, str) and a for a in appids):
            raise ControlError(400, "PARAM_ERROR", "appids must be a non-empty list of strings")
        apiv3_key = _required_str(body, "apiv3_key")
        if len(apiv3_key) != 32 or not set(apiv3_key) <= _ALLOWED_KEY_CHARS:
            raise ControlError(400, "PARAM_ERROR", "apiv3_key must be exactly 32 ASCII letters or digits")
        try:
            public_key = check_merchant_public_key(sign_type, _required_str(body, "merchant_public_key"))
        except ValueError as exc:
            message = f"merchant_public_key is not a valid {sign_type} key: {exc}"
            raise ControlError(400, "PARAM_ERROR", message) from exc
        serial_mode = body.get("serial_mode", "public_key_id")
        if serial_mode not in ("public_key_id", "platform_serial"):
            raise ControlError(400, "PARAM_ERROR", "serial_mode must be public_key_id or platform_serial")
        fee_rate_bps = body.get("fee_rate_bps", 60)
        if not isinstance(fee_rate_bps, int) or isinstance(fee_rate_bps, bool) or not 0 <= fee_rate_bps <= 10_000:
            raise ControlError(400, "PARAM_ERROR", "fee_rate_bps must be an integer 0..10000")
        merchant = Merchant(
            mchid=_required_str(body, "mchid"), appids=frozenset(appids),
            merchant_serial_no=_required_str(body, "merchant_serial_no"), sign_type=sign_type,
            merchant_public_key=public_key, apiv3_key=apiv3_key, fee_rate_bps=fee_rate_bps, serial_mode=serial_mode,
        )
        self._state.register_merchant(merchant)
        platform = self._platform_keys.for_merchant(merchant.mchid, sign_type)
        return json_response(200, {
            "mchid": merchant.mchid, "sign_type": sign_type, "platform_serial": platform.platform_serial,
            "public_key_id": platform.public_key_id, "platform_public_key": platform.signer.public_key_text(),
            "wechatpay_serial": platform.public_key_id if serial_mode == "public_key_id" else platform.platform_serial,
        })

    def rotate_platform_key(self, request: Request) -> Response:
        """WeChat replaces one merchant's platform key. Answers and callbacks made from now on are signed with the new key;
        a callback already emitted keeps its old signature on every retry, which is what a hub must go on
        verifying while it holds both keys."""
        merchant = self._state.merchant(_required_str(_body(request), "mchid"))
        if merchant is None:
            raise ControlError(404, "NOT_FOUND", "no such merchant")
        key = self._platform_keys.rotate(merchant.mchid, merchant.sign_type)
        return json_response(200, {"mchid": merchant.mchid, "sign_type": merchant.sign_type,
                                   "platform_serial": key.platform_serial, "public_key_id": key.public_key_id,
                                   "platform_public_key": key.signer.public_key_text()})

    def platform(self, request: Request) -> Response:
        return json_response(200, {
            sign_type: {"platform_serial": key.platform_serial, "public_key_id": key.public_key_id,
                        "platform_public_key": key.signer.public_key_text()}
            for sign_type, key in self._platform_keys.items()
        })

    # -- payer actions -----------------------------------------------------------------------------------

    def _one_order(self, body: Mapping[str, Any]) -> Order:
        out_trade_no = _required_str(body, "out_trade_no")
        mchid = body.get("mchid") if isinstance(body.get("mchid"), str) else None
        orders = self._state.orders_named(out_trade_no, mchid)
        if not orders:
            raise ControlError(404, "ORDER_NOT_EXIST", f"no order {out_trade_no}")
        if len(orders) > 1:
            raise ControlError(409, "AMBIGUOUS", "several merchants use this out_trade_no; pass mchid")
        return orders[0]

    def pay(self, request: Request) -> Response:
        body = _body(request)
        order = self._one_order(body)
        result = body.get("result", "success")
        if result not in ("success", "fail"):
            raise ControlError(400, "PARAM_ERROR", "result must be success or fail")
        openid = body.get("openid") if isinstance(body.get("openid"), str) else None
        paid = self._state.settle_payment(order.mchid, order.out_trade_no, result == "success", openid,
                                          _paid_at(body))
        if paid.trade_state == "SUCCESS":
            merchant = self._state.merchant(paid.mchid)
            assert merchant is not None
            self._callbacks.payment_succeeded(merchant, paid)
        return json_response(200, {"order": transaction_json(paid)})

    def userpaying(self, request: Request) -> Response:
        order = self._one_order(_body(request))
        updated = self._state.set_userpaying(order.mchid, order.out_trade_no)
        return json_response(200, {"order": transaction_json(updated)})

    def show_order(self, request: Request) -> Response:
        query = {"out_trade_no": request.path_params["out_trade_no"], "mchid": request.query.get("mchid")}
        order = self._one_order(query)
        refunds = [refund_json(r) for r in self._state.refunds_of(order.mchid, order.out_trade_no)]
        return json_response(200, {
            "order": transaction_json(order), "notify_url": order.request.notify_url,
            "refunded_fen": order.refunded_fen, "refunds": refunds,
        })

    def ledger(self, request: Request) -> Response:
        mchid = request.query.get("mchid")
        entries = self._state.ledger_entries(mchid)
        return json_response(200, {"entries": [
            {"entry_id": e.entry_id, "kind": e.kind, "occurred_at": e.occurred_at.isoformat(),
             "debit_account": e.debit_account, "credit_account": e.credit_account, "amount_fen": e.amount_fen,
             "fee_millifen": e.fee_millifen, "mchid": e.mchid, "out_trade_no": e.out_trade_no,
             "transaction_id": e.transaction_id, "out_refund_no": e.out_refund_no, "refund_id": e.refund_id}
            for e in entries
        ]})

    # -- deliveries and faults ---------------------------------------------------------------------------

    def deliveries(self, request: Request) -> Response:
        filters = {k: v for k, v in request.query.items() if k in ("event_type", "out_trade_no", "mchid")}
        attempts = [a.to_json() for a in self._deliverer.attempts()]
        suppressed = self._deliverer.suppressed()
        match = lambda row: all(row.get(k) == v for k, v in filters.items())  # noqa: E731
        return json_response(200, {
            "attempts": [a for a in attempts if match(a)], "suppressed": [s for s in suppressed if match(s)],
            "pending": self._deliverer.pending_count(),
        })

    def arm_fault(self, request: Request) -> Response:
        body = _body(request)
        delay_s = body.get("delay_s")
        count = body.get("count", 1)
        copies = body.get("copies", 3)
        if delay_s is not None and (not isinstance(delay_s, (int, float)) or delay_s < 0):
            raise ControlError(400, "PARAM_ERROR", "delay_s must be a number >= 0")
        if not isinstance(count, int) or not isinstance(copies, int):
            raise ControlError(400, "PARAM_ERROR", "count and copies must be integers")
        try:
            fault = self._faults.arm(_required_str(body, "mode"), count, None if delay_s is None else float(delay_s),
                                     str(body.get("path_prefix") or ""), copies)
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", str(exc)) from exc
        return json_response(200, {"fault": fault.to_json()})

    def list_faults(self, request: Request) -> Response:
        return json_response(200, {"faults": [f.to_json() for f in self._faults.armed()]})

    def clear_faults(self, request: Request) -> Response:
        self._faults.clear()
        return json_response(200, {"faults": []})

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"code": "NOT_FOUND", "message": f"no route {request.method} {request.path}"})
