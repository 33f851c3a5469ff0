"""Route tables become Chalice blueprints, and each route group also runs as its own Lambda.

A route module declares ``ROUTES`` (path, method, handler(request, **path_params)). ``blueprint(...)``
builds a fresh Blueprint from it each time it is called: Chalice consumes a blueprint's options when it is
registered, so one blueprint cannot serve two apps. ``app.py`` registers every group in one app (what
``chalice local`` serves and Chalice packages); each module's own ``app`` holds only its group, and infra
points that group's API Gateway integrations at a function whose handler is ``functions.<group>.app``, so
a flood of merchant traffic cannot starve channel callbacks and each function imports only its module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chalice import Blueprint, Chalice, Response
from chalice.app import Request

from chalicelib.domain.errors import NotFound
from chalicelib.observability import configure_logging
from functions import framework_errors, imported
from functions.edge import error_response, request_id

Handler = Callable[..., Response]
Route = tuple[str, str, Handler, Sequence[str]]  # path, method, handler, content types


def blueprint(import_name: str, routes: Sequence[Route]) -> Blueprint:
    bp = Blueprint(import_name)
    for path, method, handler, content_types in routes:
        bp.route(path, methods=[method], content_types=list(content_types),
                 name=handler.__name__)(_bind(bp, handler))
    return bp


MAX_PATH_PARAM = 255  # every id the hub issues is far shorter; DynamoDB refuses keys over 1 KiB with an error


def _control(value: str) -> bool:
    """A control character (C0, DEL, C1) or a lone surrogate: the test a character class compiled at import would make,
    without its ~0.6 ms of CPU at every API function's cold start (path parameters are short)."""
    return any(c < "\x20" or "\x7f" <= c <= "\x9f" or "\ud800" <= c <= "\udfff" for c in value)


def _bind(bp: Blueprint, handler: Handler) -> Callable[..., Response]:
    def view(**params: Any) -> Response:
        request: Request = bp.current_request
        for name, value in params.items():
            # No object has such an id: answered as not found before any lookup could choke on it.
            if not 1 <= len(value) <= MAX_PATH_PARAM or _control(value):
                return error_response(NotFound(f"no such {name.removesuffix('_id')}", param=name),
                                      request_id(request))
        return handler(request, **params)

    view.__name__ = handler.__name__
    view.__doc__ = handler.__doc__
    return view


def standalone_app(name: str, import_name: str, routes: Sequence[Route]) -> Chalice:
    configure_logging()
    app = Chalice(app_name=name)
    app.register_blueprint(blueprint(import_name, routes))
    framework_errors.install(app)
    imported()  # a route module's last line builds its app: its import is over
    return app
