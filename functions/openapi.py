"""The OpenAPI 3.1 document of the merchant API. Request schemas come from the pydantic models the edge
validates with, and a test checks that every route here exists in the app and vice versa."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.service.inputs import CreatePaymentInput, CreateRefundInput

_ERROR = {"$ref": "#/components/schemas/Error"}


def _op(summary: str, ok: int, schema: str, *, body: str | None = None, params: tuple[str, ...] = (),
        query: tuple[str, ...] = (), idempotent: bool = False) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in params
    ] + [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in query]
    if idempotent:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": True,
                           "schema": {"type": "string", "maxLength": 255}})
    operation: dict[str, Any] = {
        "summary": summary, "parameters": parameters, "security": [{"bearer": []}],
        "responses": {str(ok): {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{schema}"}}}}, **{
            str(code): {"description": text, "content": {"application/json": {"schema": _ERROR}}}
            for code, text in ((400, "invalid request"), (401, "authentication failed"), (404, "not found"),
                               (409, "conflict"), (422, "unprocessable"))}},
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
    return operation


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "CreatePayment": CreatePaymentInput.model_json_schema(ref_template="#/components/schemas/{model}"),
        "CreateRefund": CreateRefundInput.model_json_schema(ref_template="#/components/schemas/{model}"),
        "Payment": {"type": "object", "required": ["id", "status", "amount", "currency"], "properties": {
            "id": {"type": "string"}, "object": {"const": "payment"}, "status": {
                "enum": ["pending", "processing", "succeeded", "failed", "closed"]},
            "amount": {"type": "integer"}, "currency": {"type": "string"}, "action": {"type": ["object", "null"]},
            "amount_captured": {"type": "integer"}, "amount_refunded": {"type": "integer"}}},
        "Refund": {"type": "object", "required": ["id", "status", "amount"], "properties": {
            "id": {"type": "string"}, "object": {"const": "refund"}, "payment_id": {"type": "string"},
            "status": {"enum": ["pending", "processing", "succeeded", "failed"]}, "amount": {"type": "integer"}}},
        "Event": {"type": "object", "properties": {"id": {"type": "string"}, "type": {"type": "string"},
                                                   "data": {"type": "object"}, "deliveries": {"type": "array"}}},
        "EventList": {"type": "object", "properties": {"data": {"type": "array", "items": {
            "$ref": "#/components/schemas/Event"}}, "has_more": {"type": "boolean"}}},
        "Redelivery": {"type": "object", "properties": {"id": {"type": "string"}, "redelivery": {"type": "string"}}},
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message", "request_id"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "param": {"type": "string"},
                "request_id": {"type": "string"}}}}},
    }
    for model in (CreatePaymentInput, CreateRefundInput):
        schemas.update(model.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {}))
    for name in ("CreatePayment", "CreateRefund"):
        schemas[name].pop("$defs", None)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Payment hub merchant API", "version": "1"},
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/v1/payments": {
                "post": _op("Create a payment", 201, "Payment", body="CreatePayment", idempotent=True),
                "get": _op("Find a payment by merchant_order_no", 200, "Payment", query=("merchant_order_no",)),
            },
            "/v1/payments/{payment_id}": {"get": _op("Retrieve a payment", 200, "Payment", params=("payment_id",))},
            "/v1/payments/{payment_id}/close": {
                "post": _op("Close an unpaid payment", 200, "Payment", params=("payment_id",), idempotent=True)},
            "/v1/payments/{payment_id}/refunds": {
                "post": _op("Refund a payment", 201, "Refund", body="CreateRefund", params=("payment_id",),
                            idempotent=True)},
            "/v1/refunds/{refund_id}": {"get": _op("Retrieve a refund", 200, "Refund", params=("refund_id",))},
            "/v1/events": {"get": _op("List webhook events", 200, "EventList", query=("limit", "starting_after"))},
            "/v1/events/{event_id}": {"get": _op("Retrieve an event with its deliveries", 200, "Event",
                                                 params=("event_id",))},
            "/v1/events/{event_id}/redeliver": {
                "post": _op("Deliver an event again", 202, "Redelivery", params=("event_id",), idempotent=True)},
        },
    }
