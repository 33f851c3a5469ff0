"""The bills part of the OpenAPI document: lists of payments and refunds, bills, payer links, statements
(``functions/payments.py``, ``functions/refunds.py``, ``functions/bills.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.channels.registry import ADAPTERS, METHODS

MAX_LIMIT = 100  # chalicelib/bills/listing.py (not imported: the payments function loads it only to list)
_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 with a zone"}
_COMMON: dict[str, tuple[dict[str, Any], bool]] = {
    "limit": ({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, False),
    "cursor": ({"type": "string", "description": "next_cursor of the previous page, with the same filters"}, False),
    "created_from": (_TIME, False),
    "created_to": ({**_TIME, "description": "exclusive; ISO 8601 with a zone"}, False),
    "channel": ({"enum": sorted(ADAPTERS)}, False),
    "merchant_order_no": ({"type": "string", "minLength": 1}, False),
}
PAYMENT_QUERY = {**_COMMON, "status": ({"enum": ["pending", "processing", "succeeded", "failed", "closed"]}, False),
                 "method": ({"enum": list(METHODS)}, False)}
REFUND_QUERY = {**_COMMON, "status": ({"enum": ["pending", "processing", "succeeded", "failed"]}, False),
                "payment_id": ({"type": "string", "pattern": "^pay_"}, False)}


def _list(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["data", "has_more", "next_cursor"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
        "has_more": {"type": "boolean"}, "next_cursor": {"type": ["string", "null"]}}}


SCHEMAS: dict[str, Any] = {
    "PaymentList": _list("Payment"),
    "RefundList": _list("Refund"),
    "PaymentOrList": {"description": "with merchant_order_no alone: that payment; otherwise a list",
                      "oneOf": [{"$ref": "#/components/schemas/Payment"}, {"$ref": "#/components/schemas/PaymentList"}]},
    "Bill": {"type": "object", "required": ["id", "kind", "amount", "currency", "pdf_url", "payer_link"],
             "properties": {
                 "id": {"type": "string"}, "object": {"const": "bill"}, "kind": {"enum": ["payment", "refund"]},
                 "merchant": {"type": "object"}, "merchant_order_no": {"type": "string"},
                 "channel": {"type": ["string", "null"]}, "channel_transaction_id": {"type": ["string", "null"]},
                 "amount": {"type": "integer"}, "currency": {"type": "string"}, "fee": {"type": ["integer", "null"]},
                 "pdf_url": {"type": "string", "description": "the PDF, a signed URL valid 5 minutes"},
                 "payer_link": {"type": "object", "properties": {"url": {"type": "string"},
                                                                 "expires_at": {"type": "string"}}}}},
    "Statement": {"type": "object", "required": ["id", "month", "currency", "net"], "properties": {
        "id": {"type": "string"}, "object": {"const": "statement"}, "month": {"type": "string"},
        "currency": {"type": "string"}, "payments_total": {"type": "integer"}, "refunds_total": {"type": "integer"},
        "net": {"type": "integer"}, "ledger_movement": {"type": "integer"},
        "files": {"type": "object", "description": "pdf and csv: signed URLs valid 5 minutes"}}},
}


def paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    link_ttl = {"link_expires_in": ({"type": "integer", "minimum": 60, "maximum": 90 * 24 * 3600}, False)}
    payer = {"summary": "Open a payer's bill link (no API key: the signed token is the permission)",
             "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
             "security": [], "responses": {
                 "302": {"description": "to the PDF, a signed URL valid 5 minutes"},
                 "404": {"description": "no such link (altered or made up)", "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/Error"}}}},
                 "409": {"description": "no bill for this object any more", "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/Error"}}}},
                 "410": {"description": "the link has expired", "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/Error"}}}},
                 "503": {"description": "a service the hub needs is unavailable; safe to retry", "content": {
                     "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    return {
        "/v1/refunds": {"get": op("List refunds, newest first", 200, "RefundList", query=REFUND_QUERY)},
        "/v1/payments/{payment_id}/bill": {"get": op("A paid payment's bill", 200, "Bill", params=("payment_id",),
                                                     query=link_ttl, errors=(409,))},
        "/v1/refunds/{refund_id}/bill": {"get": op("A refund's bill", 200, "Bill", params=("refund_id",),
                                                   query=link_ttl, errors=(409,))},
        "/v1/bills/{token}": {"get": payer},
        "/v1/statements/{month}": {"get": op("A monthly statement with links to its PDF and CSV", 200, "Statement",
                                             params=("month",), query={"currency": ({"type": "string"}, False)})},
    }
