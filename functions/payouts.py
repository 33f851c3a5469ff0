"""Payouts function: a merchant's batch payouts (create, validate, read, items, result file, retry)."""

from __future__ import annotations

import re
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import HubError, InvalidRequest
from chalicelib.domain.models import Merchant
from chalicelib.service import payouts
from chalicelib.service.json_body import read_object
from chalicelib.service.merchants import authenticate
from functions.edge import JSON, error_response, merchant_call, request_id
from functions.standalone import Route, standalone_app

BATCH_BODY_BYTES = 4 * 1024 * 1024  # 10,000 items of ~250 bytes with room to spare; API Gateway takes 10 MB


def _batch_body(request: Request) -> dict[str, Any]:
    return read_object(request.raw_body, max_bytes=BATCH_BODY_BYTES)


def create_batch(request: Request) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        maker = {"via": "merchant_api", "id": merchant.merchant_id}
        return 201, payouts.create_batch(merchant.merchant_id, _batch_body(request), maker=maker)

    return merchant_call(request, run, max_body_bytes=BATCH_BODY_BYTES)


def validate_batch(request: Request) -> Response:
    return merchant_call(request, lambda m: (200, payouts.check(_batch_body(request)).public()),
                         max_body_bytes=BATCH_BODY_BYTES)


def get_batch(request: Request, batch_id: str) -> Response:
    return merchant_call(request, lambda m: (200, payouts.get_batch(batch_id, m.merchant_id)))


def list_items(request: Request, batch_id: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        query = dict(request.query_params or {})
        after, limit = query.get("after"), query.get("limit", "100")
        if (after is not None and not re.fullmatch(r"[0-9]{1,9}", after)) or not re.fullmatch(r"[0-9]{1,9}", limit):
            raise InvalidRequest("after and limit are whole numbers", param="after" if after else "limit")
        return 200, payouts.list_items(batch_id, merchant.merchant_id, state=query.get("state"),
                                       after=int(after) if after else None, limit=int(limit))

    return merchant_call(request, run)


def retry_batch(request: Request, batch_id: str) -> Response:
    return merchant_call(request, lambda m: (200, payouts.retry_failed(m.merchant_id, batch_id)))


def result_file(request: Request, batch_id: str) -> Response:
    rid = request_id(request)
    try:
        merchant = authenticate(request.headers.get("authorization"))
        body = payouts.result_csv(batch_id, merchant.merchant_id)
    except HubError as error:
        return error_response(error, rid)
    return Response(body=body, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "X-Request-Id": rid,
        "Content-Disposition": f'attachment; filename="{batch_id}-result.csv"'})


ROUTES: list[Route] = [
    ("/v1/payout_batches", "POST", create_batch, JSON),
    ("/v1/payout_batches/validate", "POST", validate_batch, JSON),
    ("/v1/payout_batches/{batch_id}", "GET", get_batch, JSON),
    ("/v1/payout_batches/{batch_id}/items", "GET", list_items, JSON),
    ("/v1/payout_batches/{batch_id}/result", "GET", result_file, JSON),
    ("/v1/payout_batches/{batch_id}/retry", "POST", retry_batch, JSON),
]
app = standalone_app("payhub-payouts", __name__, ROUTES)
