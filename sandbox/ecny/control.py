"""The control API (``/_sandbox/...``): plain JSON, no signatures. It stands for what happens on the bank's
and the payer's side (a wallet paying online or offline, the bank clearing offline payments, outages), never
for anything a merchant could call. Errors are ``{"code", "message"}`` with 400/404/409.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from sandbox.common.control import ControlError
from sandbox.common.control import json_body as _body
from sandbox.common.control import required_str as _required_str
from sandbox.common.delivery import Deliverer
from sandbox.common.httpserver import Request, Response, json_response

from . import statement
from .crypto import Sm2Key, public_key_hex
from .faults import FaultBook
from .notify import NotifySender
from .protocol import beijing, stamp_id, yuan
from .resources import batch_item_json, order_json
from .state import IllegalTransition, Merchant, OfflinePayment, Order, Refund, SandboxState

BATCH_ITEMS_MAX = 500


def _int(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ControlError(400, "PARAM_ERROR", f"{name} is required (integer)")
    return value


def order_view(order: Order, refunds: list[Refund]) -> dict[str, Any]:
    """The control API's view: everything in clear, for tests and developers."""
    return {
        "merchant_id": order.merchant_id, "out_order_no": order.out_order_no, "order_no": order.order_no,
        "status": order.status, "amount_fen": order.request.amount_fen, "notify_url": order.request.notify_url,
        "txn_id": order.txn_id, "pay_time": beijing(order.pay_time) if order.pay_time else None,
        "settle_time": beijing(order.booked_at) if order.booked_at else None, "offline": order.offline,
        "device_id": order.device_id, "payer_wallet": order.payer_wallet, "refunded_fen": order.refunded_fen,
        "refunds": [{"out_refund_no": r.request.out_refund_no, "refund_no": r.refund_no, "status": r.status,
                     "amount_fen": r.request.amount_fen} for r in refunds],
    }


def _offline_view(payment: OfflinePayment) -> dict[str, Any]:
    return {"item_id": payment.item_id, "merchant_id": payment.merchant_id, "out_order_no": payment.out_order_no,
            "amount_fen": payment.amount_fen, "offline_time": beijing(payment.offline_time),
            "device_id": payment.device_id}


class ControlApi:
    def __init__(self, state: SandboxState, faults: FaultBook, deliverer: Deliverer, notify: NotifySender,
                 statement_faults: list[dict[str, Any]], shared_bank_key: tuple[Sm2Key, str]) -> None:
        self._state = state
        self._faults = faults
        self._deliverer = deliverer
        self._notify = notify
        self._statement_faults = statement_faults
        self._shared_bank_key = shared_bank_key

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except ControlError as exc:
                return json_response(exc.status, {"code": exc.code, "message": exc.message})
            except IllegalTransition as exc:
                return json_response(409, {"code": "ILLEGAL_TRANSITION", "message": str(exc)})

        return wrapped

    # -- merchants and keys ------------------------------------------------------------------------------

    def register_merchant(self, request: Request) -> Response:
        body = _body(request)
        merchant_id = _required_str(body, "merchant_id")
        try:
            public_key = public_key_hex(_required_str(body, "merchant_public_key"))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", f"merchant_public_key: {exc}") from exc
        fee_rate_bps = body.get("fee_rate_bps", 0)
        if not isinstance(fee_rate_bps, int) or isinstance(fee_rate_bps, bool) or not 0 <= fee_rate_bps <= 10_000:
            raise ControlError(400, "PARAM_ERROR", "fee_rate_bps must be an integer 0..10000")
        merchant = self._state.register_merchant(merchant_id, _required_str(body, "merchant_key_serial"), public_key,
                                                 fee_rate_bps, self._shared_bank_key)
        return json_response(200, {
            "merchant_id": merchant.merchant_id, "bank_key_serial": merchant.bank_key_serial,
            "bank_public_key": merchant.bank_key.public_hex, "data_key_id": merchant.data_key_id,
            "data_key": merchant.data_key.hex(),
        })

    def rotate_bank_key(self, request: Request) -> Response:
        """The bank issues a new signing key for one merchant: answers and notifications emitted from now on
        carry the new serial; a notification already emitted keeps its key on every retry."""
        merchant = self._state.rotate_bank_key(_required_str(_body(request), "merchant_id"), Sm2Key.generate())
        if merchant is None:
            raise ControlError(404, "NOT_FOUND", "no such merchant")
        return json_response(200, {"merchant_id": merchant.merchant_id, "bank_key_serial": merchant.bank_key_serial,
                                   "bank_public_key": merchant.bank_key.public_hex})

    # -- the payer -----------------------------------------------------------------------------------------

    def _one_order(self, out_order_no: str, merchant_id: Any) -> Order:
        orders = self._state.orders_named(out_order_no, merchant_id if isinstance(merchant_id, str) else None)
        orders = [o for o in orders if not o.forgotten]
        if not orders:
            raise ControlError(404, "ORDER_NOT_FOUND", f"no order {out_order_no}")
        if len(orders) > 1:
            raise ControlError(409, "AMBIGUOUS", "several merchants use this out_trade_no; pass merchant_id")
        return orders[0]

    def _merchant(self, merchant_id: str) -> Merchant:
        merchant = self._state.merchant(merchant_id)
        if merchant is None:
            raise ControlError(404, "NOT_FOUND", f"no merchant {merchant_id}")
        return merchant

    def pay(self, request: Request) -> Response:
        """The payer confirms in an online wallet; the bank notifies the merchant (success or failure)."""
        body = _body(request)
        order = self._one_order(_required_str(body, "out_trade_no"), body.get("merchant_id"))
        result = body.get("result", "success")
        if result not in ("success", "fail"):
            raise ControlError(400, "PARAM_ERROR", "result must be success or fail")
        paid = self._state.pay_online(order.merchant_id, order.out_order_no, result == "success")
        merchant = self._merchant(paid.merchant_id)
        self._notify.payment(merchant, paid.request.notify_url, order_json(merchant, paid))
        return json_response(200, {"order": order_view(paid, [])})

    def offline_pay(self, request: Request) -> Response:
        """An offline wallet (e.g. a hardware card tapped on the terminal) pays: recorded, not yet reported."""
        body = _body(request)
        order = self._one_order(_required_str(body, "out_trade_no"), body.get("merchant_id"))
        device_id = body.get("device_id") if isinstance(body.get("device_id"), str) else None
        payment = self._state.record_offline(order.merchant_id, order.out_order_no, device_id)
        return json_response(200, {"offline_payment": _offline_view(payment),
                                   "pending": len(self._state.pending_offline())})

    def offline_batch(self, request: Request) -> Response:
        """The bank clears the pending offline payments now and reports them, one batch per merchant and
        notify URL (at most 500 items each); or, with ``resend_batch_no``, re-sends a batch already sent."""
        body = _body(request)
        if "resend_batch_no" in body:
            notify_id = self._notify.resend_batch(_required_str(body, "resend_batch_no"))
            if notify_id is None:
                raise ControlError(404, "NOT_FOUND", "no such batch was sent")
            return json_response(200, {"batches": [{"batch_no": body["resend_batch_no"], "notify_id": notify_id,
                                                    "resent": True}]})
        merchant_id = body.get("merchant_id") if isinstance(body.get("merchant_id"), str) else None
        groups: dict[tuple[str, str], list[tuple[OfflinePayment, Order]]] = {}
        for payment, order in self._state.clear_offline(merchant_id):
            groups.setdefault((order.merchant_id, order.request.notify_url), []).append((payment, order))
        sent = []
        for (owner, url), cleared in groups.items():
            merchant = self._merchant(owner)
            for start in range(0, len(cleared), BATCH_ITEMS_MAX):
                chunk = cleared[start:start + BATCH_ITEMS_MAX]
                items = [batch_item_json(merchant, payment, order) for payment, order in chunk]
                batch = {"batch_no": stamp_id("OB", 6), "count": len(items),
                         "total_amount": yuan(sum(p.amount_fen for p, _ in chunk)), "currency": "CNY", "items": items}
                notify_id = self._notify.batch(merchant, url, batch)
                sent.append({"batch_no": batch["batch_no"], "notify_id": notify_id, "merchant_id": owner,
                             "count": len(items), "total_amount": batch["total_amount"],
                             "items": [{"item_id": p.item_id, "out_trade_no": p.out_order_no} for p, _ in chunk]})
        return json_response(200, {"batches": sent})

    # -- looking ---------------------------------------------------------------------------------------------

    def show_order(self, request: Request) -> Response:
        order = self._one_order(request.path_params["out_trade_no"], request.query.get("merchant_id"))
        pending = [_offline_view(p) for p in self._state.pending_offline()
                   if (p.merchant_id, p.out_order_no) == (order.merchant_id, order.out_order_no)]
        view = order_view(order, self._state.refunds_of(order.merchant_id, order.out_order_no))
        return json_response(200, {"order": view, "offline_pending": pending})

    def forget(self, request: Request) -> Response:
        order = self._one_order(request.path_params["out_trade_no"], request.query.get("merchant_id"))
        self._state.forget(order.merchant_id, order.out_order_no)
        return json_response(200, {"forgotten": order.out_order_no})

    def ledger(self, request: Request) -> Response:
        entries = self._state.ledger_entries(request.query.get("merchant_id"))
        return json_response(200, {"entries": [
            {"entry_id": e.entry_id, "kind": e.kind, "booked_at": e.booked_at.isoformat(), "debit_account": e.debit_account,
             "credit_account": e.credit_account, "amount_fen": e.amount_fen, "fee_fen": e.fee_fen,
             "merchant_id": e.merchant_id, "out_order_no": e.out_order_no, "order_no": e.order_no, "txn_id": e.txn_id,
             "offline": e.offline, "out_refund_no": e.out_refund_no, "refund_no": e.refund_no}
            for e in entries
        ]})

    def deliveries(self, request: Request) -> Response:
        filters = {k: v for k, v in request.query.items() if k in ("notify_type", "merchant_id", "batch_no")}
        order = request.query.get("out_trade_no")

        def match(row: Mapping[str, Any]) -> bool:
            if order is not None and order not in str(row.get("out_trade_no", "")).split(","):
                return False
            return all(row.get(k) == v for k, v in filters.items())

        attempts = [a.to_json() for a in self._deliverer.attempts()]
        return json_response(200, {
            "attempts": [a for a in attempts if match(a)],
            "suppressed": [s for s in self._deliverer.suppressed() if match(s)],
            "pending": self._deliverer.pending_count(),
        })

    # -- faults --------------------------------------------------------------------------------------------

    def arm_fault(self, request: Request) -> Response:
        body = _body(request)
        name = body.get("fault") or body.get("mode")
        delay_s, count, copies = body.get("delay_s"), body.get("count", 1), body.get("copies", 3)
        if not isinstance(name, str):
            raise ControlError(400, "PARAM_ERROR", "fault is required")
        if delay_s is not None and (not isinstance(delay_s, (int, float)) or delay_s < 0):
            raise ControlError(400, "PARAM_ERROR", "delay_s must be a number >= 0")
        if not isinstance(count, int) or not isinstance(copies, int):
            raise ControlError(400, "PARAM_ERROR", "count and copies must be integers")
        try:
            fault = self._faults.arm(name, count, None if delay_s is None else float(delay_s),
                                     str(body.get("path_prefix") or ""), copies)
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
        try:
            date.fromisoformat(_required_str(body, "day"))
        except ValueError as exc:
            raise ControlError(400, "PARAM_ERROR", "day must be YYYY-MM-DD") from exc
        kind = _required_str(body, "kind")
        if kind not in statement.FAULT_KINDS:
            raise ControlError(400, "PARAM_ERROR", f"kind must be one of {sorted(statement.FAULT_KINDS)}")
        if kind not in ("corrupt", "withhold") and not (body.get("out_trade_no") or body.get("out_refund_no")):
            raise ControlError(400, "PARAM_ERROR", "out_trade_no (or out_refund_no) is required")
        needs = {"extra_row": "amount", "amount": "delta", "fee": "fee", "withhold": "amount"}
        if kind in needs:
            _int(body, needs[kind])
        if kind in ("currency", "status"):
            _required_str(body, kind)
        self._statement_faults.append(dict(body))
        return json_response(200, {"statement_faults": self._statement_faults})

    def list_statement_faults(self, request: Request) -> Response:
        return json_response(200, {"statement_faults": self._statement_faults})

    def clear_statement_faults(self, request: Request) -> Response:
        self._statement_faults.clear()
        return json_response(200, {"statement_faults": []})

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"code": "NOT_FOUND", "message": f"no route {request.method} {request.path}"})
