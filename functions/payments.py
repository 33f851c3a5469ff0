"""Pre-order function: create, read, confirm and close payments; merchant events and redelivery; the OpenAPI
document."""

from __future__ import annotations

from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.models import Merchant
from chalicelib.service import confirmation, payments
from chalicelib.service.inputs import (
    ConfirmPaymentInput,
    CreatePaymentInput,
    RegisterAuthenticatorInput,
    StartStepUpInput,
    VerifyStepUpInput,
)
from chalicelib.storage.idempotency import Claim
from functions.edge import JSON, json_response, merchant_call, parse_body, request_id
from functions.standalone import Route, standalone_app


def create_payment(request: Request) -> Response:
    def run(merchant: Merchant, claim: Claim) -> tuple[int, dict[str, Any]]:
        return 201, payments.create_payment(merchant, parse_body(request, CreatePaymentInput), claim).public()

    return merchant_call(request, run, claim_status=201)


def find_payment(request: Request) -> Response:
    """``?merchant_order_no=`` alone: that payment (the lookup this route always answered); anything else, or
    nothing: the merchant's payments, newest first (chalicelib/bills/listing.py)."""
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        params = dict(request.query_params or {})
        if set(params) == {"merchant_order_no"}:
            if not params["merchant_order_no"]:
                raise InvalidRequest("merchant_order_no must not be empty", param="merchant_order_no")
            return 200, payments.find_by_order_no(merchant, params["merchant_order_no"]).public()
        from chalicelib.bills import listing  # only listing requests load it

        return 200, listing.list_page(merchant, "payment", params).public()

    return merchant_call(request, run)


def get_payment(request: Request, payment_id: str) -> Response:
    return merchant_call(request, lambda m: (200, payments.get_payment(m, payment_id).public()))


def confirm_payment(request: Request, payment_id: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, ConfirmPaymentInput)
        return 200, confirmation.confirm_payment(merchant, payment_id, body).public()

    return merchant_call(request, run)


def close_payment(request: Request, payment_id: str) -> Response:
    return merchant_call(request, lambda m: (200, payments.close_payment(m, payment_id).public()))


def start_step_up(request: Request, payment_id: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        from chalicelib.stepup import flow

        body = parse_body(request, StartStepUpInput)
        return 200, flow.start(merchant, payment_id, body.method, phone=body.phone)

    return merchant_call(request, run)


def verify_step_up(request: Request, payment_id: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        from chalicelib.stepup import flow

        body = parse_body(request, VerifyStepUpInput)
        return 200, flow.verify(merchant, payment_id, code=body.code, assertion=body.credential, cvv=body.cvv).public()

    return merchant_call(request, run)


def authenticator_options(request: Request, user_id: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        from chalicelib.stepup import flow

        return 200, flow.registration_options(merchant, user_id)

    return merchant_call(request, run)


def register_authenticator(request: Request, user_id: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        from chalicelib.stepup import flow

        return 201, flow.register(merchant, user_id, parse_body(request, RegisterAuthenticatorInput).credential)

    return merchant_call(request, run)


def list_events(request: Request) -> Response:
    # The merchant events' modules (and the Standard Webhooks library) load with the routes that read events: a
    # create needs none of them.
    from chalicelib.service import query_params, webhooks

    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        params = request.query_params or {}
        limit = query_params.limit(params.get("limit"), default=20, maximum=100)
        events, next_cursor = webhooks.list_events(merchant, limit, params.get("starting_after"))
        return 200, {"object": "list", "data": events, "has_more": next_cursor is not None,
                     "next_starting_after": next_cursor}

    return merchant_call(request, run)


def get_event(request: Request, event_id: str) -> Response:
    from chalicelib.service import webhooks

    return merchant_call(request, lambda m: (200, webhooks.get_event(m, event_id)))


def redeliver_event(request: Request, event_id: str) -> Response:
    from chalicelib.service import webhooks

    return merchant_call(request, lambda m: (202, webhooks.redeliver(m, event_id)))


def openapi(request: Request) -> Response:
    # Imported by the route that serves it: the document's modules load every request model of the hub (checkout,
    # invoices, operators) and build their JSON schemas, which no other request of this function needs.
    from functions.openapi import openapi_document

    return json_response(200, openapi_document(), request_id(request))


ROUTES: list[Route] = [
    ("/v1/payments", "POST", create_payment, JSON),
    ("/v1/payments", "GET", find_payment, JSON),
    ("/v1/payments/{payment_id}", "GET", get_payment, JSON),
    ("/v1/payments/{payment_id}/confirm", "POST", confirm_payment, JSON),
    ("/v1/payments/{payment_id}/close", "POST", close_payment, JSON),
    ("/v1/payments/{payment_id}/step_up", "POST", start_step_up, JSON),
    ("/v1/payments/{payment_id}/step_up/verify", "POST", verify_step_up, JSON),
    ("/v1/payers/{user_id}/authenticators/options", "POST", authenticator_options, JSON),
    ("/v1/payers/{user_id}/authenticators", "POST", register_authenticator, JSON),
    ("/v1/events", "GET", list_events, JSON),
    ("/v1/events/{event_id}", "GET", get_event, JSON),
    ("/v1/events/{event_id}/redeliver", "POST", redeliver_event, JSON),
    ("/v1/openapi.json", "GET", openapi, JSON),
]
app = standalone_app("payhub-payments", __name__, ROUTES)
