"""Signed calls to the WeChat Pay v3 API through the shared ``Transport``.

Serialises each body once and signs exactly those bytes. WeChat signs every answer it gives a correctly signed
request, so every 2xx answer must carry a ``Wechatpay-Signature`` that verifies (within the 300 s window, with the
platform key ``Wechatpay-Serial`` names); one without is refused as unauthenticated: anyone on the path could
have written it. The one exception is the bill file download, vouched for by the SHA-1 of the signed tradebill
answer (``bill.py``). Error answers become ``ChannelError`` with WeChat's code only when they are signed; an
unsigned error (a proxy's 502, WeChat's own 401 to a request it could not authenticate, or a forgery) tells us
nothing about the operation, so it carries only its HTTP status and is never a refusal.
"""

from __future__ import annotations

import json
import re
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
UNSIGNED = "RESPONSE_UNSIGNED"
_CODE_SHAPE = re.compile(r"[^A-Za-z0-9_.\-]")  # what an unsigned body claims is logged, so only code-like text


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
        success = 200 <= response.status < 300
        signed = verify and "wechatpay-signature" in response.headers
        if signed:
            self._verify(credentials, response)
        elif verify and success:
            raise ChannelError(f"WeChat Pay answered {response.status} without Wechatpay-Signature; not believed",
                               channel_code=UNSIGNED)
        if not success:
            raise _channel_error(response, authenticated=signed)
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


def _channel_error(response: HttpResponse, *, authenticated: bool) -> ChannelError:
    """``authenticated``: the error answer's signature verified. Only then is its code WeChat's word (callers act
    on codes: ORDER_NOT_EXIST makes a close succeed, ORDERPAID a success be recorded); an unsigned one keeps
    ``HTTP_<status>`` as its code, names what it claimed in the message only, and is never a refusal."""
    status_code, code, message = f"HTTP_{response.status}", "", ""
    try:
        error = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        error = None
    if isinstance(error, dict):
        code = str(error.get("code") or "")[:_MESSAGE_CHARS_MAX]
        message = str(error.get("message") or "")[:_MESSAGE_CHARS_MAX]
    request_id = response.headers.get("request-id", "")
    suffix = f" (request-id {request_id})" if request_id else ""
    transient = response.status >= 500 or response.status == 429
    if not authenticated:
        # Resending is safe whatever the answer was (WeChat dedupes on our numbers), so a 5xx/429 stays retryable.
        claimed = f", claiming {_CODE_SHAPE.sub('?', code[:64])}" if code else ""
        return ChannelError(f"WeChat Pay {response.status} unsigned{claimed}; not believed{suffix}",
                            channel_code=status_code, retryable=transient)
    code = code or status_code
    retryable = transient or code in RETRYABLE_CODES
    # A 4xx with WeChat's own error code is a definite refusal; 401 SIGN_ERROR is about our request's
    # signature (a key problem on our side), not about the business operation, so it is not one.
    refused = isinstance(error, dict) and 400 <= response.status < 500 and response.status != 401 and not retryable
    detail = f"WeChat Pay {response.status} {code}: {message}{suffix}"
    return ChannelError(detail, channel_code=code, retryable=retryable, refused=refused)
