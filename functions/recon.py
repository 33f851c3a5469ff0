"""Reconciliation operator API: list runs, read one run (with links to its report files), list its items.

Operators authenticate with an operator key (``payhub operator-key create``), never a merchant key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.recon import views
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


ROUTES: list[Route] = [
    ("/v1/recon/runs", "GET", list_runs, JSON),
    ("/v1/recon/runs/{run_id}", "GET", get_run, JSON),
    ("/v1/recon/runs/{run_id}/items", "GET", list_items, JSON),
]
app = standalone_app("payhub-recon", __name__, ROUTES)
