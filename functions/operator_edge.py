"""What every operator route does at the edge: request id, operator-key auth, body parsing, error mapping.

Operator keys (``op_<stage>_...``) are never merchant keys, and the operator routes take no Idempotency-Key:
their answers can hold a new secret shown once, which must not be stored for replay. A retried create or
rotate makes a second key; the audit trail and ``list`` show it, and ``revoke`` ends it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import HubError
from chalicelib.service.operators import Operator, authenticate_operator
from functions.edge import error_response, json_response, request_id

log = logging.getLogger(__name__)


def operator_call(request: Request, run: Callable[[Operator], tuple[int, dict[str, Any]]]) -> Response:
    rid = request_id(request)
    try:
        operator = authenticate_operator(request.headers.get("authorization"))
        status, body = run(operator)
    except HubError as error:
        return error_response(error, rid)
    except Exception:
        log.exception("unexpected error", extra={"request_id": rid})
        return error_response(HubError("internal error"), rid)
    log.info("operator %s %s %s", operator.key_id, request.method, request.path, extra={"request_id": rid})
    return json_response(status, body, rid)
