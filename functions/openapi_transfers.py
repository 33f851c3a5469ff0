"""The operator routes of bank transfers in (docs/transfers-in.md) in the OpenAPI document (functions/openapi.py
merges them in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_STATES = ["applied", "awaiting_approval", "review", "returning", "returned", "kept"]
SCHEMAS: dict[str, Any] = {
    "BankReceipt": {"type": "object", "required": ["id", "state", "amount", "currency"], "properties": {
        "id": {"type": "string"}, "object": {"const": "bank_receipt"}, "reserve_id": {"type": "string"},
        "bank_reference": {"type": "string"}, "amount": {"type": "integer"}, "currency": {"type": "string"},
        "state": {"enum": _STATES}, "kind": {"enum": ["exact", "partial", "over", "unknown", None]},
        "reason": {"type": ["string", "null"], "description": "why a person is needed: unknown, late, excess, "
                                                              "large, order_closed"},
        "unapplied": {"type": ["integer", "null"], "description": "what of it waits to be returned or applied"},
        "payer_account_no": {"type": "string"}, "payer_name": {"type": "string"},
        "postscript": {"type": "string"}, "return_reference": {"type": ["string", "null"]}}},
    "BankReceiptList": {"type": "object", "required": ["data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/BankReceipt"}}}},
    "ReceiptDecision": {"type": "object", "required": ["reason"], "additionalProperties": False, "properties": {
        "reason": {"type": "string", "minLength": 1, "description": "recorded in the audit trail"}}},
    "ReceiptAssignment": {"type": "object", "required": ["reason", "payment_id"], "additionalProperties": False,
                          "properties": {"reason": {"type": "string", "minLength": 1},
                                         "payment_id": {"type": "string", "description": "an open bank.transfer payment"}}},
}


def paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    def operator(operation: dict[str, Any]) -> dict[str, Any]:
        return {**operation, "security": [{"operator": []}], "tags": ["transfers in (operators)"]}

    def decision(summary: str, body: str = "ReceiptDecision") -> dict[str, Any]:
        return {"post": operator(op(summary, 200, "BankReceipt", body=body, params=("receipt_id",),
                                    errors=(400, 409, 422), upstream=True))}

    base = "/v1/operator/transfers/receipts"
    return {
        base: {"get": operator(op("Bank credits waiting for a person", 200, "BankReceiptList"))},
        base + "/{receipt_id}/approve": decision("Count a large credit for its order"),
        base + "/{receipt_id}/assign": decision("Count an unknown or late credit for a bank-transfer payment",
                                                "ReceiptAssignment"),
        base + "/{receipt_id}/return": decision("Transfer a credit's unapplied money back to its payer"),
        base + "/{receipt_id}/keep": decision("The merchant keeps an excess"),
    }
