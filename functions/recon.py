"""Reconciliation operator API: list runs, read one run (with links to its report files), list its items, close
an item a person has reviewed (audited).

Operators authenticate with an operator key (``payhub operator-key create``), never a merchant key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import InvalidRequest
from chalicelib.recon import views
from chalicelib.service.json_body import read_object
from chalicelib.service.operators import Operator
from functions import operator_edge
from functions.edge import JSON
from functions.standalone import Route, standalone_app


def operator_call(request: Request, run: Callable[[], dict[str, Any]]) -> Response:
    return operator_edge.operator_call(request, lambda operator: (200, run()))


def list_runs(request: Request) -> Response:
    return operator_call(request, lambda: views.list_runs(dict(request.query_params or {})))


def get_run(request: Request, run_id: str) -> Response:
    return operator_call(request, lambda: views.get_run(run_id))


def list_items(request: Request, run_id: str) -> Response:
    return operator_call(request, lambda: views.list_items(run_id, dict(request.query_params or {})))


def close_item(request: Request, run_id: str, item_id: str) -> Response:
    def run(operator: Operator) -> tuple[int, dict[str, Any]]:
        from chalicelib.recon import review  # only a closing loads it

        body = read_object(request.raw_body)
        unknown = sorted(set(body) - {"note"})
        if unknown:
            raise InvalidRequest(f"unknown field {unknown[0]}", param=unknown[0])
        note = body.get("note")
        if not isinstance(note, str):
            raise InvalidRequest("note is required: what was found and done", param="note")
        # An item's id holds '#' (kind#object#difference), which a client sends as %23; one layer of the path
        # passes it on decoded, another not: decode here, once (ids never hold a literal %).
        return 200, review.close_item(operator.actor(), run_id, unquote(item_id), note)

    return operator_edge.operator_call(request, run)


ROUTES: list[Route] = [
    ("/v1/recon/runs", "GET", list_runs, JSON),
    ("/v1/recon/runs/{run_id}", "GET", get_run, JSON),
    ("/v1/recon/runs/{run_id}/items", "GET", list_items, JSON),
    ("/v1/recon/runs/{run_id}/items/{item_id}/close", "POST", close_item, JSON),
]
app = standalone_app("payhub-recon", __name__, ROUTES)
