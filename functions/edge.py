"""What every merchant route does at the edge: request id, auth, body parsing, idempotency, error mapping."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Response
from chalice.app import Request
from pydantic import BaseModel, ValidationError

from chalicelib.domain.errors import HubError, InvalidRequest
from chalicelib.domain.models import Merchant
from chalicelib.service.merchants import authenticate
from chalicelib.storage import idempotency

log = logging.getLogger(__name__)  # not "payhub.*": Chalice owns that logger (level ERROR, no propagation)
M = TypeVar("M", bound=BaseModel)
JSON_HEADERS = {"Content-Type": "application/json"}
JSON = ("application/json",)


def request_id(request: Request) -> str:
    context = request.context or {}
    return str(context.get("requestId") or f"req_{uuid.uuid4().hex[:20]}")


def json_response(status: int, body: dict[str, Any], rid: str) -> Response:
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status,
                    headers={**JSON_HEADERS, "X-Request-Id": rid})


def _error_body(error: HubError, rid: str) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message, "request_id": rid}
    if error.param:
        body["param"] = error.param
    return {"error": body}


def error_response(error: HubError, rid: str) -> Response:
    return json_response(error.http_status, _error_body(error, rid), rid)


def parse_body(request: Request, model: type[M]) -> M:
    try:
        raw = json.loads(request.raw_body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("request body is not valid JSON") from exc
    if not isinstance(raw, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidRequest(f"{field}: {first['msg']}" if field else first["msg"], param=field) from exc


def merchant_call(request: Request, run: Callable[[Merchant], tuple[int, dict[str, Any]]]) -> Response:
    """Authenticate, run under the Idempotency-Key for POSTs, and map errors to the API's error body."""
    rid = request_id(request)
    held: tuple[str, str] | None = None  # (merchant_id, key) once this request owns the key
    try:
        merchant = authenticate(request.headers.get("authorization"))
        if request.method == "POST":
            key = request.headers.get("idempotency-key")
            if not key:
                raise InvalidRequest("POST requests need an Idempotency-Key header", param="Idempotency-Key")
            fingerprint = idempotency.request_hash(request.method, request.path, _body_for_hash(request.raw_body))
            stored = idempotency.begin(merchant.merchant_id, key, fingerprint)
            if stored is not None:
                return json_response(stored.status, stored.body, rid)
            held = (merchant.merchant_id, key)
        status, payload = run(merchant)
    except HubError as error:
        if held and error.http_status >= 500:
            idempotency.abandon(*held)
        elif held:  # a 4xx is the answer to this request: replay it like a success
            idempotency.complete(*held, idempotency.StoredResponse(error.http_status, _error_body(error, rid)))
        if error.http_status >= 500:
            log.error("request failed: %s", error.code, extra={"request_id": rid, "error": error.message})
        return error_response(error, rid)
    except Exception:
        if held:
            idempotency.abandon(*held)
        log.exception("unexpected error", extra={"request_id": rid})
        return error_response(HubError("internal error; it is safe to retry with the same Idempotency-Key"), rid)
    if held:
        idempotency.complete(*held, idempotency.StoredResponse(status, payload))
    return json_response(status, payload, rid)


def _body_for_hash(raw: bytes | None) -> Any:
    """Parsed JSON when it parses, so whitespace and key order do not make a 'different' body."""
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return (raw or b"").decode(errors="replace")
