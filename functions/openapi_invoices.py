"""The invoice routes' part of the OpenAPI document (functions/openapi.py merges it in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.invoices.inputs import CreateInvoiceInput, ReverseInvoiceInput


def schemas() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, model in (("CreateInvoice", CreateInvoiceInput), ("ReverseInvoice", ReverseInvoiceInput)):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[name] = schema
    found["Invoice"] = {"type": "object", "required": ["id", "status", "amount", "tax"], "properties": {
        "id": {"type": "string"}, "object": {"const": "invoice"},
        "status": {"enum": ["pending", "issuing", "issued", "failed", "reversed"]},
        "amount": {"type": "integer", "description": "fen, tax included"}, "tax": {"type": "integer"},
        "invoice_no": {"type": ["string", "null"]}, "verification_code": {"type": ["string", "null"]},
        "pdf": {"type": ["object", "null"], "description": "a link to the PDF that expires at expires_at"},
        "amount_reversed": {"type": "integer"}, "amount_reversal_due": {"type": "integer"},
        "reversals": {"type": "array", "items": {"type": "object"}}}}
    return found


def paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return {
        "/v1/invoices": {"post": op("Request an e-invoice (数电票) for paid payments", 201, "Invoice",
                                    body="CreateInvoice", idempotent=True, errors=(404,))},
        "/v1/invoices/{invoice_id}": {"get": op("Retrieve an invoice with a fresh link to its PDF", 200, "Invoice",
                                                params=("invoice_id",))},
        "/v1/invoices/{invoice_id}/reversals": {
            "post": op("Reverse an issued invoice with a red invoice (红冲)", 202, "Invoice", body="ReverseInvoice",
                       params=("invoice_id",), idempotent=True)},
    }
