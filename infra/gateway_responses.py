"""API Gateway's own answers (no route for the method and path, body too large, throttled, an integration
failure) in the hub's error shape ``{"error": {"code", "message", "param"?, "request_id"}}`` instead of
API Gateway's ``{"message": ...}``. Added to the REST API definition by the stack, and used by the local
server for the same situations, so clients meet one error shape wherever an answer comes from.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple


class GatewayAnswer(NamedTuple):
    status: int | None  # None: keep API Gateway's status (the DEFAULT_* families)
    code: str
    message: str
    param: str | None = None


ANSWERS: dict[str, GatewayAnswer] = {
    # API Gateway says "Missing Authentication Token" (403) for a path or method it has no route for.
    "MISSING_AUTHENTICATION_TOKEN": GatewayAnswer(404, "not_found", "no such route: check the method and the path"),
    "UNSUPPORTED_MEDIA_TYPE": GatewayAnswer(415, "unsupported_media_type", "send application/json", "Content-Type"),
    "REQUEST_TOO_LARGE": GatewayAnswer(413, "request_too_large", "the request body is too large"),
    "THROTTLED": GatewayAnswer(429, "rate_limited", "too many requests; retry later"),
    "DEFAULT_4XX": GatewayAnswer(None, "invalid_request", "the request was refused before reaching the hub"),
    "DEFAULT_5XX": GatewayAnswer(None, "internal_error", "internal error; it is safe to retry"),
}


def body(answer: GatewayAnswer, request_id: str) -> dict[str, Any]:
    error: dict[str, Any] = {"code": answer.code, "message": answer.message, "request_id": request_id}
    if answer.param:
        error["param"] = answer.param
    return {"error": error}


def definition() -> dict[str, Any]:
    """``x-amazon-apigateway-gateway-responses`` for the REST API's OpenAPI body. The request id comes from
    ``$context.requestId``, the same id the Lambda sees as the request's ``requestId``."""
    responses: dict[str, Any] = {}
    for kind, answer in ANSWERS.items():
        template = json.dumps(body(answer, "$context.requestId"))
        response: dict[str, Any] = {
            "responseTemplates": {"application/json": template},
            "responseParameters": {"gatewayresponse.header.Content-Type": "'application/json'"},
        }
        if answer.status is not None:
            response["statusCode"] = str(answer.status)
        responses[kind] = response
    return responses
