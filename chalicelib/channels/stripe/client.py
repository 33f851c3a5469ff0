"""Calls to the Stripe API through the shared ``Transport``: form-encoded bodies, Bearer key, pinned version.

Every POST carries an ``Idempotency-Key`` chosen by the caller from our own ids, so a retry from another
process (an SQS redelivery, a status-sync run) is deduplicated by Stripe as well (docs/channels/stripe.md#idempotency-keys).
Error bodies ``{"error": {"type", "code", "decline_code", "message"}}`` become ``ChannelError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from chalicelib.channels.base import HttpRequest, HttpResponse, Transport
from chalicelib.channels.stripe.credentials import StripeCredentials
from chalicelib.domain.errors import ChannelError

USER_AGENT = "payhub-stripe/1.0"
IDEMPOTENCY_KEY_CHARS_MAX = 255
_MESSAGE_CHARS_MAX = 200
_KEY_IN_TEXT = re.compile(r"\b(sk|rk|whsec)_[A-Za-z0-9_*]+")
Params = Mapping[str, Any]


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}[{key}]" if prefix else str(key), inner, out)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for index, inner in enumerate(value):
            _flatten(f"{prefix}[{index}]", inner, out)
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    else:
        out.append((prefix, str(value)))


def encode_params(params: Params | None) -> str:
    """Stripe's form encoding: nested keys ``a[b]=c``, lists as ``a[0]=x``, booleans as true/false."""
    pairs: list[tuple[str, str]] = []
    _flatten("", params or {}, pairs)
    return urlencode(pairs)


def scrub(text: str) -> str:
    """Stripe masks keys it echoes, but never let anything key-shaped into an error message."""
    return _KEY_IN_TEXT.sub(lambda m: f"{m.group(1)}_***", text)


class StripeClient:
    def __init__(self, transport: Transport, timeout_s: float = 20.0) -> None:
        self._transport = transport
        self._timeout_s = timeout_s

    def call(self, credentials: StripeCredentials, method: str, path: str, params: Params | None = None, *,
             idempotency_key: str | None = None, base_url: str | None = None) -> HttpResponse:
        """Send one request; return the 2xx response or raise ``ChannelError``."""
        encoded = encode_params(params)
        url = (base_url or credentials.api_base_url) + path
        headers = {
            "Authorization": f"Bearer {credentials.secret_key.reveal()}",
            "Stripe-Version": credentials.stripe_version,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        body = b""
        if method == "POST":
            if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_CHARS_MAX:
                raise ValueError("every Stripe POST needs an Idempotency-Key of at most 255 characters")
            headers["Idempotency-Key"] = idempotency_key
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = encoded.encode()
        elif encoded:
            url = f"{url}?{encoded}"
        response = self._transport.send(HttpRequest(method=method, url=url, headers=headers, body=body),
                                        timeout_s=self._timeout_s)
        if not 200 <= response.status < 300:
            raise channel_error(response)
        return response

    def call_json(self, credentials: StripeCredentials, method: str, path: str, params: Params | None = None, *,
                  idempotency_key: str | None = None) -> dict[str, Any]:
        response = self.call(credentials, method, path, params, idempotency_key=idempotency_key)
        return json_object(response.body)


def json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChannelError("Stripe answered with a body that is not JSON") from exc
    if not isinstance(value, dict):
        raise ChannelError("Stripe answered with JSON that is not an object")
    return value


def _error_fields(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    error = value.get("error") if isinstance(value, dict) else None
    return error if isinstance(error, dict) else None


def channel_error(response: HttpResponse) -> ChannelError:
    """Map Stripe's answer to the hub's error: retryable, a definite refusal, or unknown (only a query tells).

    - 409 (a concurrent request with the same key), 429 and 5xx are transient; ``Stripe-Should-Retry``
      overrides when Stripe sends it.
    - 400/402/404 are refusals: the request was not carried out (invalid, declined, no such object). An
      ``idempotency_error`` is not: something already happened under that key.
    - 401/403 are our credentials' problem, not the operation's: neither retryable nor refused.
    """
    error = _error_fields(response.body)
    error_type = str(error.get("type") or "") if error else ""
    code = ""
    if error:
        code = str(error.get("decline_code") or error.get("code") or error_type)
    code = code or f"HTTP_{response.status}"
    message = scrub(str(error.get("message") or ""))[:_MESSAGE_CHARS_MAX] if error else ""
    retryable = response.status in (409, 429) or response.status >= 500
    should_retry = response.headers.get("stripe-should-retry")
    if should_retry in ("true", "false"):
        retryable = should_retry == "true"
    refused = (error is not None and response.status in (400, 402, 404) and error_type != "idempotency_error"
               and not retryable)
    request_id = response.headers.get("request-id", "")
    detail = f"Stripe {response.status} {error_type or 'error'}/{code}: {message}"
    if request_id:
        detail += f" (request-id {request_id})"
    return ChannelError(detail, channel_code=code, retryable=retryable, refused=refused)
