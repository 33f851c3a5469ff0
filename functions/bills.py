"""Bills function: a bill per payment and refund (JSON, PDF link, payer link), the payer link itself, and the
monthly statements. The only routes that render PDFs (the hub's own writer, chalicelib/documents/), so only this
function loads it, and only when it renders."""

from __future__ import annotations

from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.bills import bills, links, statements, store
from chalicelib.bills.errors import StatementNotReady
from chalicelib.domain.errors import HubError, InvalidRequest
from chalicelib.domain.models import Merchant
from functions.edge import JSON, error_response, merchant_call, request_id, transient
from functions.standalone import Route, standalone_app

_BILL_PARAMS = frozenset({"link_expires_in"})


def _bill(request: Request, kind: str, object_id: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        params = request.query_params or {}
        for name in sorted(params):
            if name not in _BILL_PARAMS:
                raise InvalidRequest(f"unknown query parameter {name}", param=name)
        bill = bills.merchant_view(merchant, kind, object_id, link_ttl_s=links.ttl(params.get("link_expires_in")))
        bill["pdf_url"] = store.download_url(bills.stored_pdf_key(bill))
        return 200, bill

    return merchant_call(request, run)


def payment_bill(request: Request, payment_id: str) -> Response:
    return _bill(request, "payment", payment_id)


def refund_bill(request: Request, refund_id: str) -> Response:
    return _bill(request, "refund", refund_id)


def open_bill_link(request: Request, token: str) -> Response:
    """The payer's link: no API key, the signed token is the permission. Answers a redirect to the PDF."""
    rid = request_id(request)
    try:
        opened = links.open_token(token)
        bill = bills.bill_for(opened.merchant_id, opened.kind, opened.object_id)
        url = store.download_url(bills.stored_pdf_key(bill))
    except HubError as error:
        return error_response(error, rid)
    except Exception as exc:
        unavailable = transient(exc)
        if unavailable is None:
            raise
        return error_response(unavailable, rid)
    return Response(body="", status_code=302, headers={"Location": url, "Cache-Control": "no-store",
                                                       "X-Request-Id": rid})


def get_statement(request: Request, month: str) -> Response:
    def run(merchant: Merchant) -> tuple[int, dict[str, Any]]:
        params = request.query_params or {}
        for name in sorted(params):
            if name != "currency":
                raise InvalidRequest(f"unknown query parameter {name}", param=name)
        statements.parse_month(month)
        currency = params.get("currency", "CNY")
        if currency not in statements.currencies():
            raise InvalidRequest(f"currency must be one of {', '.join(statements.currencies())}", param="currency")
        summary = statements.published(merchant.merchant_id, month, currency)
        if summary is None:
            raise StatementNotReady(f"no statement for {month} in {currency} (yet)", param="month")
        summary["files"] = {ext: store.download_url(store.statement_key(merchant.merchant_id, month,
                                                                         f"{currency}.{ext}"))
                            for ext in ("pdf", "csv")}
        return 200, summary

    return merchant_call(request, run)


ROUTES: list[Route] = [
    ("/v1/payments/{payment_id}/bill", "GET", payment_bill, JSON),
    ("/v1/refunds/{refund_id}/bill", "GET", refund_bill, JSON),
    ("/v1/bills/{token}", "GET", open_bill_link, JSON),
    ("/v1/statements/{month}", "GET", get_statement, JSON),
]
app = standalone_app("payhub-bills", __name__, ROUTES)
