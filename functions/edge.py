"""What every merchant route does at the edge: request id, auth, body parsing, idempotency, error mapping."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import HubError, InvalidRequest, TemporarilyUnavailable
from chalicelib.service.json_body import MAX_BODY_BYTES, read_object
from chalicelib.service.merchants import authenticate
from chalicelib.storage import idempotency

if TYPE_CHECKING:  # pydantic-core is imported by what parses a body; the recon API's GET routes never load it
    from chalicelib.validation.light import LightModel

log = logging.getLogger(__name__)  # not "payhub.*": Chalice owns that logger (level ERROR, no propagation)
M = TypeVar("M", bound="LightModel")
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
    response = json_response(error.http_status, _error_body(error, rid), rid)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


# DynamoDB, SQS, KMS... answering "slow down" or "not now": the request did not happen (or, for a transaction sent
# under its token, happens once however often it is sent), so the merchant may send it again shortly.
_TRANSIENT_AWS_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling", "RequestLimitExceeded",
    "TooManyRequestsException", "InternalServerError", "ServiceUnavailable", "ServiceUnavailableException",
    "TransactionInProgressException", "LimitExceededException", "KMSInternalException", "RequestThrottled",
})


def transient(exc: Exception) -> TemporarilyUnavailable | None:
    """The hub's own AWS dependency failed in a way a retry can cure; None for anything else."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        reasons = {r.get("Code") for r in exc.response.get("CancellationReasons") or []}
        if code in _TRANSIENT_AWS_CODES or (code == "TransactionCanceledException"
                                            and reasons & {"ThrottlingError", "TransactionConflict",
                                                           "ProvisionedThroughputExceeded"}):
            return TemporarilyUnavailable(f"the hub's storage is busy ({code}); retry with the same Idempotency-Key")
    if isinstance(exc, ConnectionError | HTTPClientError):
        return TemporarilyUnavailable("the hub's storage could not be reached; retry with the same Idempotency-Key")
    return None


def parse_body(request: Request, model: type[M]) -> M:
    from pydantic_core import ValidationError

    raw = read_object(request.raw_body)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidRequest(f"{field}: {first['msg']}" if field else first["msg"], param=field) from exc


def merchant_call(request: Request, run: Callable[..., tuple[int, dict[str, Any]]], *,
                  with_origin: bool = False, claim_status: int | None = None,
                  max_body_bytes: int = MAX_BODY_BYTES) -> Response:
    """Authenticate, run under the Idempotency-Key for POSTs, and map errors to the API's error body.

    ``with_origin``: ``run(merchant, origin)`` is given the request's ``RequestOrigin`` (Idempotency-Key and
    body fingerprint), which a route that creates a record keeps on it so a retry can find its work again.
    ``claim_status``: instead, ``run(merchant, claim)`` takes the key inside its own transactions and stores its
    ``claim_status`` answer there (``idempotency.Claim``): no write of the edge's own on the way through.
    ``max_body_bytes``: the body's limit, for the one route that takes large ones (payout batches)."""
    rid = request_id(request)
    lock: idempotency.Lock | None = None  # set once this request owns the key
    claim: idempotency.Claim | None = None
    try:
        merchant = authenticate(request.headers.get("authorization"))
        if request.method == "POST":
            key = request.headers.get("idempotency-key")
            if not key:
                raise InvalidRequest("POST requests need an Idempotency-Key header", param="Idempotency-Key")
            # The route pattern plus its parameters: the same key on another payment is another request. A body
            # that is not a JSON object of valid Unicode is refused here, before it is hashed or the key taken.
            fingerprint = idempotency.request_hash(
                request.method, request.path,
                [request.uri_params or {}, read_object(request.raw_body, max_bytes=max_body_bytes)])
            if claim_status is not None:
                claim = idempotency.Claim(idempotency.new_lock(merchant.merchant_id, key, fingerprint), claim_status)
            else:
                taken = idempotency.begin(merchant.merchant_id, key, fingerprint)
                if isinstance(taken, idempotency.StoredResponse):
                    return json_response(taken.status, taken.body, rid)
                lock = taken
        if claim is not None:
            try:
                status, payload = run(merchant, claim)
            finally:
                lock = claim.lock if claim.taken and not claim.answered else None  # what is left to settle
            if claim.answered:
                return json_response(status, payload, rid)
        else:
            status, payload = run(merchant, lock.origin if lock else None) if with_origin else run(merchant)
    except idempotency.Replay as replay:
        return json_response(replay.response.status, replay.response.body, rid)
    except HubError as error:
        if lock and (error.http_status >= 500 or isinstance(error, InvalidRequest)):
            # A server failure, or input rejected before any work: nothing to replay, the key is free again.
            _settle(lock, None)
        elif lock:  # a refusal after the work started (409, 422) is this request's answer: replay it
            _settle(lock, idempotency.StoredResponse(error.http_status, _error_body(error, rid)))
        if error.http_status >= 500:
            log.error("request failed: %s", error.code, extra={"request_id": rid, "error": error.message})
        return error_response(error, rid)
    except Exception as exc:
        if lock:
            _settle(lock, None)
        unavailable = transient(exc)
        if unavailable is not None:
            log.warning("request failed on a transient fault: %s", unavailable.message, extra={"request_id": rid})
            return error_response(unavailable, rid)
        log.exception("unexpected error", extra={"request_id": rid})
        return error_response(HubError("internal error; it is safe to retry with the same Idempotency-Key"), rid)
    if lock:
        _settle(lock, idempotency.StoredResponse(status, payload))
    return json_response(status, payload, rid)


def _settle(lock: idempotency.Lock, response: idempotency.StoredResponse | None) -> None:
    """Store the answer (or release the key). The work is done either way: a failure here is logged, and the
    merchant still gets the real answer. When the answer cannot be stored, the key is released instead, so a retry
    runs again and finds its own work (records keep the request's origin) rather than waiting out the lock."""
    try:
        if response is None:
            idempotency.abandon(lock)
        else:
            idempotency.complete(lock, response)
        return
    except ClientError:
        log.exception("could not settle Idempotency-Key", extra={"merchant_id": lock.merchant_id})
    if response is not None:
        try:
            idempotency.abandon(lock)
        except ClientError:
            log.exception("could not release Idempotency-Key either; it frees itself after the lock timeout",
                          extra={"merchant_id": lock.merchant_id})

