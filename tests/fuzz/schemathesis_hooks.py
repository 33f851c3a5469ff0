"""Schemathesis hooks for the API fuzz run (loaded by the schemathesis process through SCHEMATHESIS_HOOKS).

Every request carries valid credentials for its API (the operator key for /v1/recon and /v1/operator, the merchant key
elsewhere), so cases reach validation and the core instead of stopping at 401. A POST's Idempotency-Key is
fresh unless the case is negative about that header: the fuzzer tests request handling, not replays of keys
that random generation happened to repeat (replay is tested on its own in tests/e2e/test_merchant_api.py).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers if case.headers is not None else {}
    operator = case.path.startswith(("/v1/recon/", "/v1/operator/"))
    key = os.environ["PAYHUB_FUZZ_OPERATOR_KEY" if operator else "PAYHUB_FUZZ_MERCHANT_KEY"]
    headers["Authorization"] = f"Bearer {key}"
    meta = case._meta  # noqa: SLF001 (schemathesis exposes the generation mode only here)
    header_is_negative = meta is not None and meta.is_negative_at(ParameterLocation.HEADER)
    if case.method.upper() == "POST" and not header_is_negative:
        headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"
    case.headers = headers
