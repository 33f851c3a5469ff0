"""Invoices function: merchants request, read and reverse e-invoices; the invoice provider's callbacks."""

from __future__ import annotations

from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import HubError
from chalicelib.domain.models import Merchant
from chalicelib.invoices import callbacks, service
from chalicelib.invoices.inputs import CreateInvoiceInput, ReverseInvoiceInput
from chalicelib.storage.idempotency import RequestOrigin
from functions.edge import JSON, error_response, json_response, merchant_call, parse_body, request_id
from functions.standalone import Route, standalone_app


def create_invoice(request: Request) -> Response:
    def run(merchant: Merchant, origin: RequestOrigin | None) -> tuple[int, dict[str, Any]]:
        return 201, service.create_invoice(merchant, parse_body(request, CreateInvoiceInput), origin)

    return merchant_call(request, run, with_origin=True)


def get_invoice(request: Request, invoice_id: str) -> Response:
    return merchant_call(request, lambda m: (200, service.get_invoice(m, invoice_id)))


def reverse_invoice(request: Request, invoice_id: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        return 202, service.request_reversal(merchant, invoice_id, parse_body(request, ReverseInvoiceInput))

    return merchant_call(request, run)


def provider_callback(request: Request, merchant_id: str) -> Response:
    rid = request_id(request)
    try:
        return json_response(200, callbacks.receive(merchant_id, request.raw_body or b""), rid)
    except HubError as error:
        return error_response(error, rid)


FORM = ("application/x-www-form-urlencoded",)
ROUTES: list[Route] = [
    ("/v1/invoices", "POST", create_invoice, JSON),
    ("/v1/invoices/{invoice_id}", "GET", get_invoice, JSON),
    ("/v1/invoices/{invoice_id}/reversals", "POST", reverse_invoice, JSON),
    ("/invoice-callbacks/nuonuo/{merchant_id}", "POST", provider_callback, FORM),
]
app = standalone_app("payhub-invoices", __name__, ROUTES)
