"""Chalice answers some requests itself, before any route runs: a method the path does not have (405), a
Content-Type the route does not take (415), an exception that escaped a handler (500). Its body for those is
``{"Code", "Message"}``; this middleware rewrites it into the hub's ``{"error": {...}}`` so that every answer
of the API has one shape. Answers of the hub itself pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.domain.errors import HubError
from functions.edge import error_response, request_id

# Chalice's error code -> (the hub's code, the header the client should fix, or None)
_CODES: dict[str, tuple[str, str | None]] = {
    "MethodNotAllowedError": ("method_not_allowed", None),
    "UnsupportedMediaType": ("unsupported_media_type", "Content-Type"),
    "BadRequest": ("invalid_request", "Accept"),
    "BadRequestError": ("invalid_request", None),
    "NotFoundError": ("not_found", None),
    "InternalServerError": ("internal_error", None),
}


class _FrameworkError(HubError):
    def __init__(self, status: int, code: str, message: str, param: str | None) -> None:
        super().__init__(message, param=param)
        self.http_status = status
        self.code = code


def _message(status: int, chalice_code: str, chalice_message: str, request: Request) -> str:
    if status == 405:
        return f"{request.method} is not allowed on this path"
    if status == 415:
        sent = chalice_message.removeprefix("Unsupported media type: ")[:100]
        return f"Content-Type {sent!r} is not supported by this route"
    if status >= 500:
        return "internal error"  # never Chalice's text: it may describe the failure
    return chalice_message or chalice_code


def reshape(request: Request, response: Response) -> Response:
    body: Any = response.body
    if not (isinstance(body, dict) and set(body) == {"Code", "Message"} and response.status_code >= 400):
        return response
    chalice_code, chalice_message = str(body["Code"]), str(body["Message"])
    code, param = _CODES.get(chalice_code, ("internal_error" if response.status_code >= 500 else "invalid_request",
                                            None))
    error = _FrameworkError(response.status_code, code, _message(response.status_code, chalice_code,
                                                                   chalice_message, request), param)
    shaped = error_response(error, request_id(request))
    if "Allow" in response.headers:
        shaped.headers["Allow"] = response.headers["Allow"]
    return shaped


def hub_error_shape(request: Request, get_response: Callable[[Request], Response]) -> Response:
    return reshape(request, get_response(request))


def install(app: Chalice) -> None:
    app.register_middleware(hub_error_shape, "http")
