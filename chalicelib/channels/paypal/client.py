"""Calls to the PayPal REST API through the shared ``Transport``: OAuth2 client credentials, bearer tokens cached
per account until shortly before they expire, ``PayPal-Request-Id`` for idempotency, and PayPal's error bodies
(``{"name", "message", "details": [{"issue"}], "debug_id"}``) turned into ``ChannelError``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.channels.base import HttpRequest, HttpResponse, Transport
from chalicelib.channels.paypal.credentials import PayPalCredentials
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.value_class import value_class

USER_AGENT = "payhub-paypal/1.0"
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)  # renew this long before PayPal's expires_in runs out
_MESSAGE_CHARS_MAX = 200
_TOKENS_MAX = 256


@value_class
class _Token:
    value: str = field(repr=False)  # a bearer token is a credential
    expires_at: datetime


class TokenCache:
    """Bearer tokens per OAuth client (keyed by a hash of base URL, client id and secret), shared by threads."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: datetime) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
        return token.value if token is not None and now < token.expires_at - TOKEN_REFRESH_MARGIN else None

    def put(self, key: str, value: str, expires_at: datetime) -> None:
        with self._lock:
            if len(self._tokens) >= _TOKENS_MAX:
                self._tokens.clear()  # a bound, not a policy: accounts are few, tokens are cheap to renew
            self._tokens[key] = _Token(value, expires_at)

    def drop(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)


def encode_body(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class PayPalClient:
    def __init__(self, transport: Transport, clock: Callable[[], datetime], timeout_s: float = 10.0) -> None:
        self._transport = transport
        self._clock = clock
        self._timeout_s = timeout_s
        self.tokens = TokenCache()

    # -- OAuth2 ------------------------------------------------------------------------------------------

    def access_token(self, credentials: PayPalCredentials) -> str:
        key = credentials.token_cache_key()
        cached = self.tokens.get(key, self._clock())
        if cached is not None:
            return cached
        basic = base64.b64encode(
            f"{credentials.client_id.reveal()}:{credentials.client_secret.reveal()}".encode()).decode()
        request = HttpRequest("POST", f"{credentials.api_base_url}/v1/oauth2/token", {
            "Authorization": f"Basic {basic}", "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT,
        }, b"grant_type=client_credentials")
        issued_at = self._clock()
        response = self._transport.send(request, timeout_s=self._timeout_s)
        if response.status != 200:
            error = channel_error(response)
            # A refused client (invalid_client) is a configuration problem, not the business operation's refusal.
            raise ChannelError(f"PayPal OAuth: {error.message}", channel_code=error.channel_code,
                               retryable=error.retryable)
        answer = _json_object(response)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int) or isinstance(expires_in, bool):
            raise ChannelError("PayPal OAuth answer lacks access_token or expires_in")
        self.tokens.put(key, token, issued_at + timedelta(seconds=expires_in))
        return token

    # -- API calls ---------------------------------------------------------------------------------------

    def call(self, credentials: PayPalCredentials, method: str, path_and_query: str,
             body: Mapping[str, Any] | None = None, *, request_id: str | None = None) -> HttpResponse:
        """One authenticated call; a 401 (token revoked or expired early) renews the token and sends once more."""
        payload = encode_body(body) if body is not None else b""
        for attempt in (1, 2):
            headers = {
                "Authorization": f"Bearer {self.access_token(credentials)}", "Accept": "application/json",
                "User-Agent": USER_AGENT, "Prefer": "return=representation",
            }
            if body is not None:
                headers["Content-Type"] = "application/json"
            if request_id is not None:
                headers["PayPal-Request-Id"] = request_id
            request = HttpRequest(method, credentials.api_base_url + path_and_query, headers, payload)
            response = self._transport.send(request, timeout_s=self._timeout_s)
            if response.status == 401 and attempt == 1:
                self.tokens.drop(credentials.token_cache_key())
                continue
            if not 200 <= response.status < 300:
                raise channel_error(response)
            return response
        raise AssertionError("unreachable")

    def call_json(self, credentials: PayPalCredentials, method: str, path_and_query: str,
                  body: Mapping[str, Any] | None = None, *, request_id: str | None = None) -> dict[str, Any]:
        return _json_object(self.call(credentials, method, path_and_query, body, request_id=request_id))


def _json_object(response: HttpResponse) -> dict[str, Any]:
    try:
        value = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChannelError("PayPal answered with a body that is not JSON") from exc
    if not isinstance(value, dict):
        raise ChannelError("PayPal answered with JSON that is not an object")
    return value


def channel_error(response: HttpResponse) -> ChannelError:
    """PayPal's error body -> ``ChannelError``; ``channel_code`` is the first ``details[].issue`` or the ``name``."""
    code, message, debug_id = f"HTTP_{response.status}", "", ""
    try:
        error = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        error = None
    if isinstance(error, dict):
        details = error.get("details")
        issue = details[0].get("issue") if isinstance(details, list) and details and isinstance(details[0], dict) else None
        code = str(issue or error.get("name") or error.get("error") or code)
        message = str(error.get("message") or error.get("error_description") or "")[:_MESSAGE_CHARS_MAX]
        debug_id = str(error.get("debug_id") or "")
    retryable = response.status >= 500 or response.status in (408, 429)
    # 400/404/409/422 carrying PayPal's own error body are definite answers about the request; 401/403 are about
    # our credentials, so they say nothing about the business operation.
    refused = isinstance(error, dict) and response.status in (400, 404, 409, 422) and not retryable
    detail = f"PayPal {response.status} {code}: {message}" + (f" (debug_id {debug_id})" if debug_id else "")
    return ChannelError(detail, channel_code=code, retryable=retryable, refused=refused)
