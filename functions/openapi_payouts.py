"""The payout routes' part of the OpenAPI document (functions/openapi.py merges it in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.domain.payouts import MAX_AMOUNT_MINOR, MAX_ITEMS

_ITEM_STATES = ["pending", "processing", "succeeded", "failed", "returned"]
_ITEM = {"type": "object", "required": ["item_ref", "amount", "payee_account_no", "payee_name"],
         "additionalProperties": False, "properties": {
             "item_ref": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"},
             "amount": {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT_MINOR, "description": "minor units"},
             "payee_account_no": {"type": "string", "pattern": "^[0-9]{6,32}$"},
             "payee_name": {"type": "string", "minLength": 1, "maxLength": 60},
             "payee_bank_name": {"type": "string", "maxLength": 60, "description": "with payee_bank_code, another bank"},
             "payee_bank_code": {"type": "string", "pattern": "^[0-9]{12}$", "description": "CNAPS code"},
             "purpose": {"type": "string", "maxLength": 50}}}
SCHEMAS: dict[str, Any] = {
    "CreatePayoutBatch": {"type": "object", "required": ["merchant_batch_no"], "additionalProperties": False,
                          "properties": {
                              "merchant_batch_no": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
                                                    "description": "yours: the same number and content is one batch"},
                              "currency": {"type": "string", "default": "CNY"},
                              "items": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": _ITEM},
                              "file": {"type": "string", "description": "instead of items: a CSV payout file's text "
                                       "(header item_ref,amount,payee_account_no,payee_name[,payee_bank_name,"
                                       "payee_bank_code,purpose])"}}},
    "PayoutBatch": {"type": "object", "required": ["id", "state", "items", "total"], "properties": {
        "id": {"type": "string"}, "object": {"const": "payout_batch"}, "merchant_batch_no": {"type": "string"},
        "state": {"enum": ["awaiting_approval", "rejected", "processing", "completed"]},
        "items": {"type": "integer"}, "total": {"type": "integer"}, "currency": {"type": "string"},
        "approval": {"type": "object"}, "items_by_state": {"type": "object"}}},
    "PayoutReport": {"type": "object", "required": ["items", "total", "valid", "problems"], "properties": {
        "items": {"type": "integer"}, "total": {"type": "integer"}, "valid": {"type": "boolean"},
        "problems": {"type": "array", "items": {"type": "object", "properties": {
            "line": {"type": "integer"}, "field": {"type": "string"}, "message": {"type": "string"}}}}}},
    "PayoutDecision": {"type": "object", "required": ["reason"], "additionalProperties": False, "properties": {
        "reason": {"type": "string", "minLength": 1, "description": "recorded in the audit trail"}}},
    "PayoutItemList": {"type": "object", "required": ["data", "has_more"], "properties": {
        "data": {"type": "array", "items": {"type": "object", "properties": {
            "line": {"type": "integer"}, "state": {"enum": _ITEM_STATES}}}},
        "has_more": {"type": "boolean"}, "next_after": {"type": ["integer", "null"]}}},
}


def paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    result = op("The batch's result file: one CSV line per item with how it ended", 200, "PayoutBatch",
                params=("batch_id",))
    result["responses"]["200"] = {"description": "OK", "content": {"text/csv": {"schema": {"type": "string"}}}}

    def checker(summary: str) -> dict[str, Any]:
        operation = op(summary, 200, "PayoutBatch", body="PayoutDecision", params=("batch_id",), errors=(400, 409, 422))
        return {**operation, "security": [{"operator": []}], "tags": ["payouts (operators)"]}

    return {
        "/v1/operator/payout_batches/{batch_id}/approve": {"post": checker(
            "Approve a batch awaiting approval (not its maker): its funds are reserved and it is sent")},
        "/v1/operator/payout_batches/{batch_id}/reject": {"post": checker(
            "Reject a batch awaiting approval (not its maker): nothing moves")},
        "/v1/payout_batches": {"post": op(
            "Create a batch of up to 10,000 payouts: validated whole, sent at once or after approval", 201,
            "PayoutBatch", body="CreatePayoutBatch", idempotent=True)},
        "/v1/payout_batches/validate": {"post": op("Validate a batch: the report, nothing written", 200,
                                                   "PayoutReport", body="CreatePayoutBatch", idempotent=True)},
        "/v1/payout_batches/{batch_id}": {"get": op("Retrieve a batch with its items per state", 200, "PayoutBatch",
                                                    params=("batch_id",))},
        "/v1/payout_batches/{batch_id}/items": {"get": op(
            "A batch's items in line order", 200, "PayoutItemList", params=("batch_id",), query={
                "state": ({"enum": _ITEM_STATES}, False), "after": ({"type": "integer", "minimum": 0}, False),
                "limit": ({"type": "integer", "minimum": 1, "maximum": 1000}, False)})},
        "/v1/payout_batches/{batch_id}/result": {"get": result},
        "/v1/payout_batches/{batch_id}/retry": {"post": op(
            "Send the failed and returned items again, under new references", 200, "PayoutBatch",
            params=("batch_id",), idempotent=True)},
    }
