"""Refunds function: create and read refunds."""

from __future__ import annotations

from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.domain.models import Merchant
from chalicelib.service import refunds
from chalicelib.service.inputs import CreateRefundInput
from chalicelib.storage.idempotency import RequestOrigin
from functions.edge import JSON, merchant_call, parse_body
from functions.standalone import Route, standalone_app


def create_refund(request: Request, payment_id: str) -> Response:
    def run(merchant: Merchant, origin: RequestOrigin | None) -> tuple[int, dict[str, Any]]:
        body = parse_body(request, CreateRefundInput)
        return 201, refunds.create_refund(merchant, payment_id, body, origin).public()

    return merchant_call(request, run, with_origin=True)


def get_refund(request: Request, refund_id: str) -> Response:
    return merchant_call(request, lambda m: (200, refunds.get_refund(m, refund_id).public()))


def list_refunds(request: Request) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        from chalicelib.bills import listing  # only listing requests load it

        return 200, listing.list_page(merchant, "refund", dict(request.query_params or {})).public()

    return merchant_call(request, run)


ROUTES: list[Route] = [
    ("/v1/payments/{payment_id}/refunds", "POST", create_refund, JSON),
    ("/v1/refunds", "GET", list_refunds, JSON),
    ("/v1/refunds/{refund_id}", "GET", get_refund, JSON),
]
app = standalone_app("payhub-refunds", __name__, ROUTES)
