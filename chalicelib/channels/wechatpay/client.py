"""Signed calls to the WeChat Pay v3 API through the shared ``Transport``.

Serialises each body once and signs exactly those bytes, verifies response signatures when WeChat sent
them, and turns ``{"code","message"}`` error bodies into ``ChannelError`` with the channel's code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from chalicelib.channels.base import HttpRequest, HttpResponse, Transport
from chalicelib.channels.wechatpay.credentials import WeChatCredentials
from chalicelib.channels.wechatpay.signing import SCHEME_BY_SIGN_TYPE, new_nonce
from chalicelib.channels.wechatpay.verification import SignatureInvalid, check_signed
from chalicelib.domain.errors import ChannelError

USER_AGENT = "payhub-wechatpay/1.0"
# WeChat asks callers to retry these with the same parameters; 5xx and 429 are transient by nature.
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED", "SYSTEMERROR", "BANKERROR"})
_MESSAGE_CHARS_MAX = 200


def encode_body(body: Mapping[str, Any] | None) -> bytes:
    if body is None:
        return b""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class WeChatPayClient:
    def __init__(self, transport: Transport, clock: Callable[[], datetime], timeout_s: float = 10.0) -> None:
        self._transport = transport
        self._clock = clock
        self._timeout_s = timeout_s

    def call(
        self,
        credentials: WeChatCredentials,
        method: str,
        path_and_query: str,
        body: Mapping[str, Any] | None = None,
        *,
        verify: bool = True,
    ) -> HttpResponse:
        """Send one signed request; return the 2xx response or raise ``ChannelError``."""
        url = credentials.api_base_url + path_and_query
        payload = encode_body(body)
        signer = credentials.signer()
        timestamp = int(self._clock().timestamp())
        headers = {
            "Authorization": signer.authorization(method, url, payload, timestamp=timestamp, nonce=new_nonce()),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HttpRequest(method=method, url=url, headers=headers, body=payload)
        response = self._transport.send(request, timeout_s=self._timeout_s)
        if verify and "wechatpay-signature" in response.headers:
            self._verify(credentials, response)
        if not 200 <= response.status < 300:
            raise _channel_error(response)
        return response

    def call_json(
        self, credentials: WeChatCredentials, method: str, path_and_query: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        response = self.call(credentials, method, path_and_query, body)
        try:
            value = json.loads(response.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ChannelError("WeChat Pay answered with a body that is not JSON") from exc
        if not isinstance(value, dict):
            raise ChannelError("WeChat Pay answered with JSON that is not an object")
        return value

    def _verify(self, credentials: WeChatCredentials, response: HttpResponse) -> None:
        # Responses may omit Wechatpay-Signature-Type; they are signed in the account's own scheme.
        default_scheme = SCHEME_BY_SIGN_TYPE[credentials.sign_type]
        try:
            check_signed(response.headers, response.body, credentials.platform_keys, self._clock(),
                         default_scheme=default_scheme)
        except SignatureInvalid as exc:
            raise ChannelError(f"WeChat Pay response failed verification: {exc}",
                               channel_code="RESPONSE_SIGNATURE_INVALID") from None


def _channel_error(response: HttpResponse) -> ChannelError:
    code, message = f"HTTP_{response.status}", ""
    try:
        error = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        error = None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or "")[:_MESSAGE_CHARS_MAX]
    retryable = response.status >= 500 or response.status == 429 or code in RETRYABLE_CODES
    # A 4xx with WeChat's own error code is a definite refusal; 401 SIGN_ERROR is about our request's
    # signature (a key problem on our side), not about the business operation, so it is not one.
    refused = isinstance(error, dict) and 400 <= response.status < 500 and response.status != 401 and not retryable
    request_id = response.headers.get("request-id", "")
    detail = f"WeChat Pay {response.status} {code}: {message}" + (f" (request-id {request_id})" if request_id else "")
    return ChannelError(detail, channel_code=code, retryable=retryable, refused=refused)
