"""Operator API: merchants' API keys (create, rotate with overlap, revoke), suspension, webhook-secret
rotation, risk rules and the risk decisions on a payment, the checker's decision on a payout batch awaiting
approval, the decisions on payer businesses' bank credits that wait for a person (docs/transfers-in.md), and
the audit trail of every operator action. Operator keys only (``payhub operator-key create``).

Answers that carry a new key or secret show it once; nothing here logs one.
"""

from __future__ import annotations

from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import InvalidRequest
from chalicelib.service import api_keys, audit, merchants
from chalicelib.service.json_body import read_object
from chalicelib.service.operator_inputs import CreateApiKeyInput, RotateInput, WebhookSecretRotateInput
from chalicelib.service.operators import Operator
from functions.edge import JSON, parse_body
from functions.operator_edge import operator_call
from functions.standalone import Route, standalone_app


def list_api_keys(request: Request, merchant_id: str) -> Response:
    return operator_call(request, lambda op: (200, {"object": "list", "data": api_keys.list_keys(merchant_id)}))


def create_api_key(request: Request, merchant_id: str) -> Response:
    def run(op: Operator) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, CreateApiKeyInput)
        created = api_keys.create_key(op.actor(), merchant_id, name=body.name)
        return 201, {**created.key, "api_key": created.api_key}

    return operator_call(request, run)


def rotate_api_key(request: Request, merchant_id: str, key_id: str) -> Response:
    def run(op: Operator) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, RotateInput)
        created, old = api_keys.rotate_key(op.actor(), merchant_id, key_id, overlap_s=body.overlap_seconds,
                                           name=body.name)
        return 201, {**created.key, "api_key": created.api_key, "rotated": old}

    return operator_call(request, run)


def revoke_api_key(request: Request, merchant_id: str, key_id: str) -> Response:
    return operator_call(request, lambda op: (200, api_keys.revoke_key(op.actor(), merchant_id, key_id)))


def suspend_merchant(request: Request, merchant_id: str) -> Response:
    return operator_call(request, lambda op: (200, merchants.set_status(op.actor(), merchant_id, "suspended")))


def reactivate_merchant(request: Request, merchant_id: str) -> Response:
    return operator_call(request, lambda op: (200, merchants.set_status(op.actor(), merchant_id, "active")))


def rotate_webhook_secret(request: Request, merchant_id: str) -> Response:
    def run(op: Operator) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, WebhookSecretRotateInput)
        return 201, merchants.rotate_webhook_secret(op.actor(), merchant_id, overlap_s=body.overlap_seconds)

    return operator_call(request, run)


def get_risk_rules(request: Request) -> Response:
    from chalicelib.risk import operations

    return operator_call(request, lambda op: (200, operations.current_rules()))


def put_risk_rules(request: Request) -> Response:
    def run(op: Operator) -> tuple[int, dict[str, Any]]:
        from chalicelib.risk import operations

        return 201, operations.put_rules(op.actor(), read_object(request.raw_body))

    return operator_call(request, run)


def get_payment_risk(request: Request, payment_id: str) -> Response:
    from chalicelib.risk import operations

    return operator_call(request, lambda op: (200, operations.payment_risk(payment_id)))


def list_audit(request: Request) -> Response:
    def run(op: Operator) -> tuple[int, dict[str, Any]]:
        params = dict(request.query_params or {})
        unknown = set(params) - {"limit", "starting_after", "action", "target"}
        if unknown:
            raise InvalidRequest(f"unknown query parameter {sorted(unknown)[0]}", param=sorted(unknown)[0])
        try:
            limit = int(params.get("limit", "50"))
        except ValueError as exc:
            raise InvalidRequest("limit must be an integer", param="limit") from exc
        data, after = audit.list_records(limit=limit, starting_after=params.get("starting_after"),
                                         action=params.get("action"), target=params.get("target"))
        return 200, {"object": "list", "data": data, "has_more": after is not None, "next_starting_after": after}

    return operator_call(request, run)


def decide_payout_batch(request: Request, batch_id: str, approve: bool) -> Response:
    def run(op: Operator) -> tuple[int, dict[str, Any]]:
        from chalicelib.service import payouts  # only a checker's decision loads it

        body = read_object(request.raw_body)
        unknown = sorted(set(body) - {"reason"})
        if unknown:
            raise InvalidRequest(f"unknown field {unknown[0]}", param=unknown[0])
        reason = body.get("reason")
        if not isinstance(reason, str):
            raise InvalidRequest("reason is required", param="reason")
        return 200, payouts.decide(op.actor(), batch_id, approve=approve, reason=reason)

    return operator_call(request, run)


def approve_payout_batch(request: Request, batch_id: str) -> Response:
    return decide_payout_batch(request, batch_id, True)


def reject_payout_batch(request: Request, batch_id: str) -> Response:
    return decide_payout_batch(request, batch_id, False)


def list_receipts(request: Request) -> Response:
    def run(op: Operator) -> tuple[int, dict[str, Any]]:
        from chalicelib.service import transfers_in

        return 200, {"object": "list", "data": transfers_in.needing_a_person()}

    return operator_call(request, run)


def decide_receipt(request: Request, receipt_id: str, decision: str) -> Response:
    """An operator's decision on a bank credit waiting for a person (audited in the decision's transaction)."""

    def run(op: Operator) -> tuple[int, dict[str, Any]]:
        from chalicelib.service import transfers_in

        body = read_object(request.raw_body)
        allowed = {"reason", "payment_id"} if decision == "assign" else {"reason"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise InvalidRequest(f"unknown field {unknown[0]}", param=unknown[0])
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidRequest("reason is required", param="reason")
        if decision == "assign":
            payment_id = body.get("payment_id")
            if not isinstance(payment_id, str) or not payment_id:
                raise InvalidRequest("payment_id is required", param="payment_id")
            return 200, transfers_in.assign(op.actor(), receipt_id, payment_id, reason)
        act = {"approve": transfers_in.approve, "keep": transfers_in.keep, "return": transfers_in.return_to_payer}
        return 200, act[decision](op.actor(), receipt_id, reason)

    return operator_call(request, run)


def approve_receipt(request: Request, receipt_id: str) -> Response:
    return decide_receipt(request, receipt_id, "approve")


def assign_receipt(request: Request, receipt_id: str) -> Response:
    return decide_receipt(request, receipt_id, "assign")


def return_receipt(request: Request, receipt_id: str) -> Response:
    return decide_receipt(request, receipt_id, "return")


def keep_receipt(request: Request, receipt_id: str) -> Response:
    return decide_receipt(request, receipt_id, "keep")


_KEYS = "/v1/operator/merchants/{merchant_id}/api-keys"
_RECEIPT = "/v1/operator/transfers/receipts/{receipt_id}"
ROUTES: list[Route] = [
    (_KEYS, "GET", list_api_keys, JSON),
    (_KEYS, "POST", create_api_key, JSON),
    (_KEYS + "/{key_id}/rotate", "POST", rotate_api_key, JSON),
    (_KEYS + "/{key_id}/revoke", "POST", revoke_api_key, JSON),
    ("/v1/operator/merchants/{merchant_id}/suspend", "POST", suspend_merchant, JSON),
    ("/v1/operator/merchants/{merchant_id}/reactivate", "POST", reactivate_merchant, JSON),
    ("/v1/operator/merchants/{merchant_id}/webhook-secret/rotate", "POST", rotate_webhook_secret, JSON),
    ("/v1/operator/audit", "GET", list_audit, JSON),
    ("/v1/operator/risk/rules", "GET", get_risk_rules, JSON),
    ("/v1/operator/risk/rules", "POST", put_risk_rules, JSON),
    ("/v1/operator/payments/{payment_id}/risk", "GET", get_payment_risk, JSON),
    ("/v1/operator/payout_batches/{batch_id}/approve", "POST", approve_payout_batch, JSON),
    ("/v1/operator/payout_batches/{batch_id}/reject", "POST", reject_payout_batch, JSON),
    ("/v1/operator/transfers/receipts", "GET", list_receipts, JSON),
    (_RECEIPT + "/approve", "POST", approve_receipt, JSON),
    (_RECEIPT + "/assign", "POST", assign_receipt, JSON),
    (_RECEIPT + "/return", "POST", return_receipt, JSON),
    (_RECEIPT + "/keep", "POST", keep_receipt, JSON),
]
app = standalone_app("payhub-operator", __name__, ROUTES)
