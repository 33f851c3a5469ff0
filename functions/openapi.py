"""The OpenAPI 3.1 document of the merchant API. Request schemas come from the pydantic models the edge's
validation is generated from (chalicelib/validation), and a test checks that every route here exists in the app and
vice versa."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.checkout.inputs import CreateCheckoutSessionInput
from chalicelib.service.inputs import (
    ConfirmPaymentInput,
    CreatePaymentInput,
    CreateRefundInput,
    RegisterAuthenticatorInput,
    StartStepUpInput,
    VerifyStepUpInput,
)
from functions import openapi_bills, openapi_invoices, openapi_payouts, openapi_recon, openapi_transfers

_ERROR = {"$ref": "#/components/schemas/Error"}
ACTION_TYPES = ("jsapi_params", "qr_code", "redirect_url", "app_params", "form_post", "three_ds", "sms_verification",
                "step_up", "bank_transfer")
_ERROR_TEXT = {
    400: "invalid request: the error's param names the field", 401: "authentication failed",
    402: "refused by risk control (risk_denied), or the payer must pass a step-up first (step_up_required)",
    404: "not found (another merchant's objects too)", 409: "conflict with the object's state, or the same "
    "Idempotency-Key still in flight", 415: "the body is not application/json", 422: "well-formed but cannot be "
    "carried out, or an Idempotency-Key reused for another request", 429: "too many requests; retry later",
    502: "the channel failed; nothing changed, safe to retry with the same Idempotency-Key",
    503: "a service the hub needs is unavailable; safe to retry",
}
# Every operation may be throttled (API Gateway) or meet an unavailable dependency (DynamoDB, the key service).
_ALWAYS = (401, 429, 503)
LIMIT = {"type": "integer", "minimum": 1, "maximum": 100}
ID = {"type": "string", "minLength": 1, "maxLength": 255}
QueryParams = dict[str, tuple[dict[str, Any], bool]]  # name -> (schema, required)


def _op(summary: str, ok: int, schema: str, *, body: str | None = None, params: tuple[str, ...] = (),
        param_schema: dict[str, Any] | None = None,
        query: QueryParams | None = None, idempotent: bool = False, upstream: bool = False,
        errors: tuple[int, ...] = ()) -> dict[str, Any]:
    """One operation with every status it can answer. ``upstream``: it calls a channel or the key service,
    so it may answer 502. POSTs answer 409 (key in flight), 415 and 422 (key reused) on top of ``errors``."""
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": param_schema or ID} for name in params
    ] + [{"name": name, "in": "query", "required": required, "schema": param_schema}
         for name, (param_schema, required) in (query or {}).items()]
    statuses = set(_ALWAYS) | set(errors) | ({404} if params else set())
    if query:
        statuses.add(400)
    if idempotent:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": True,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255}})
        statuses |= {400, 409, 415, 422}
    if upstream:
        statuses.add(502)
    operation: dict[str, Any] = {
        "summary": summary, "parameters": parameters, "security": [{"bearer": []}],
        "responses": {str(ok): {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{schema}"}}}}, **{
            str(code): {"description": _ERROR_TEXT[code], "content": {"application/json": {"schema": _ERROR}}}
            for code in sorted(statuses)}},
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
        "ConfirmPayment": ConfirmPaymentInput.model_json_schema(ref_template="#/components/schemas/{model}"),
        "StartStepUp": StartStepUpInput.model_json_schema(ref_template="#/components/schemas/{model}"),
        "VerifyStepUp": VerifyStepUpInput.model_json_schema(ref_template="#/components/schemas/{model}"),
        "RegisterAuthenticator": RegisterAuthenticatorInput.model_json_schema(
            ref_template="#/components/schemas/{model}"),
        "StepUp": {"type": "object", "additionalProperties": True},
        "Payment": {"type": "object", "required": ["id", "status", "amount", "currency"], "properties": {
            "id": {"type": "string"}, "object": {"const": "payment"}, "status": {
                "enum": ["requires_step_up", "pending", "processing", "succeeded", "failed", "closed"]},
            "amount": {"type": "integer"}, "currency": {"type": "string"}, "action": {"$ref": "#/components/schemas/Action"},
            "amount_captured": {"type": "integer"}, "amount_refunded": {"type": "integer"},
            "card": {"$ref": "#/components/schemas/CardSummary"}}},
        "Action": {"type": ["object", "null"], "description": "What the payer's client must do next.",
                   "required": ["type"], "properties": {"type": {"enum": list(ACTION_TYPES)}},
                   "additionalProperties": True},
        "CardSummary": {"type": ["object", "null"], "description": "The card a card method was paid with; the "
                        "number itself is only held encrypted.", "properties": {
                            "token": {"type": "string"}, "brand": {"type": "string"}, "last4": {"type": "string"},
                            "exp_month": {"type": "integer"}, "exp_year": {"type": "integer"},
                            "fingerprint": {"type": "string", "description": "the same card gives the same "
                                            "fingerprint for your account"}}},
        "CreateCheckoutSession": CreateCheckoutSessionInput.model_json_schema(
            ref_template="#/components/schemas/{model}"),
        "CheckoutSession": {"type": "object", "required": ["id", "payment_id", "support_ref"], "properties": {
            "id": {"type": "string"}, "object": {"const": "checkout_session"}, "payment_id": {"type": "string"},
            "url": {"type": "string", "description": "the hosted page; only in the create's answer"},
            "support_ref": {"type": "string"}, "payment": {"$ref": "#/components/schemas/Payment"}}},
        "Refund": {"type": "object", "required": ["id", "status", "amount"], "properties": {
            "id": {"type": "string"}, "object": {"const": "refund"}, "payment_id": {"type": "string"},
            "status": {"enum": ["pending", "processing", "succeeded", "failed"]}, "amount": {"type": "integer"}}},
        "Event": {"type": "object", "properties": {"id": {"type": "string"}, "type": {"type": "string"},
                                                   "data": {"type": "object"}, "deliveries": {"type": "array"}}},
        "EventList": {"type": "object", "properties": {"data": {"type": "array", "items": {
            "$ref": "#/components/schemas/Event"}}, "has_more": {"type": "boolean"}}},
        "Redelivery": {"type": "object", "properties": {"id": {"type": "string"}, "redelivery": {"type": "string"}}},
        "Error": {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {"error": {
            "type": "object", "required": ["code", "message", "request_id"], "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string", "description": "for people; may change"},
                "param": {"type": "string", "description": "the field, parameter or header to fix"},
                "request_id": {"type": "string"}}}}},
    }
    for model in (CreatePaymentInput, CreateRefundInput, ConfirmPaymentInput, CreateCheckoutSessionInput,
                  StartStepUpInput, VerifyStepUpInput, RegisterAuthenticatorInput):
        schemas.update(model.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {}))
    for name in ("CreatePayment", "CreateRefund", "ConfirmPayment", "CreateCheckoutSession"):
        schemas[name].pop("$defs", None)
    schemas.update(openapi_recon.SCHEMAS)
    schemas.update(openapi_bills.SCHEMAS)
    schemas.update(openapi_invoices.schemas())
    schemas.update(openapi_payouts.SCHEMAS)
    schemas.update(openapi_transfers.SCHEMAS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Payment hub merchant API", "version": "1"},
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                                            **openapi_recon.SECURITY}},
        "paths": {
            "/v1/payments": {
                "post": _op("Create a payment", 201, "Payment", body="CreatePayment", idempotent=True, upstream=True,
                            errors=(402,)),
                "get": _op("List payments, newest first; with merchant_order_no alone, that payment", 200,
                           "PaymentOrList", errors=(404,), query=openapi_bills.PAYMENT_QUERY),
            },
            "/v1/payments/{payment_id}": {"get": _op("Retrieve a payment", 200, "Payment", params=("payment_id",))},
            "/v1/payments/{payment_id}/confirm": {
                "post": _op("Confirm a payment: the payer's SMS code, or after the payer returned from a redirect",
                            200, "Payment", body="ConfirmPayment", params=("payment_id",), idempotent=True,
                            upstream=True, errors=(402,))},
            "/v1/payments/{payment_id}/close": {
                "post": _op("Close an unpaid payment", 200, "Payment", params=("payment_id",), idempotent=True,
                            upstream=True)},
            "/v1/payments/{payment_id}/step_up": {
                "post": _op("Start the step-up risk control asked for (SMS code, face, WebAuthn)", 200, "StepUp",
                            body="StartStepUp", params=("payment_id",), idempotent=True, upstream=True)},
            "/v1/payments/{payment_id}/step_up/verify": {
                "post": _op("Answer the step-up: the code, the assertion, or (face) ask the provider", 200, "Payment",
                            body="VerifyStepUp", params=("payment_id",), idempotent=True, upstream=True)},
            "/v1/payers/{user_id}/authenticators/options": {
                "post": _op("WebAuthn registration options for a payer's platform authenticator", 200, "StepUp",
                            params=("user_id",), idempotent=True)},
            "/v1/payers/{user_id}/authenticators": {
                "post": _op("Register a payer's platform authenticator", 201, "StepUp",
                            body="RegisterAuthenticator", params=("user_id",), idempotent=True)},
            "/v1/payments/{payment_id}/refunds": {
                "post": _op("Refund a payment", 201, "Refund", body="CreateRefund", params=("payment_id",),
                            idempotent=True, errors=(402,))},
            "/v1/refunds/{refund_id}": {"get": _op("Retrieve a refund", 200, "Refund", params=("refund_id",))},
            "/v1/events": {"get": _op("List webhook events", 200, "EventList", errors=(404,), query={
                "limit": (LIMIT, False), "starting_after": ({"type": "string"}, False)})},
            "/v1/events/{event_id}": {"get": _op("Retrieve an event with its deliveries", 200, "Event",
                                                 params=("event_id",))},
            "/v1/events/{event_id}/redeliver": {
                "post": _op("Deliver an event again", 202, "Redelivery", params=("event_id",), idempotent=True)},
            "/v1/checkout_sessions": {
                "post": _op("Create a hosted checkout session (its url is in this answer only)", 201,
                            "CheckoutSession", body="CreateCheckoutSession", idempotent=True)},
            "/v1/checkout_sessions/{session_id}": {
                "get": _op("Retrieve a checkout session with its payment and attempts", 200, "CheckoutSession",
                           params=("session_id",))},
            **openapi_recon.paths(_op),
            **openapi_bills.paths(_op),
            **openapi_invoices.paths(_op),
            **openapi_payouts.paths(_op),
            **openapi_transfers.paths(_op),
        },
    }
