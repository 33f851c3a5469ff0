"""Signed calls to the bank's e-CNY gateway through the shared ``Transport``.

Each body is serialised once and those bytes are signed and sent. Every answer below 500 must carry the
bank's signature over ``RESPONSE\\n<our nonce>\\n...`` (the statement file download is the one unsigned
answer; an SM3 digest from a signed answer vouches for it). Answers are ``{"code", "msg", "data"}`` with
HTTP 200 for every business outcome, the Chinese bank-gateway convention; ``code`` decides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from chalicelib.channels.base import HttpRequest, HttpResponse, Transport
from chalicelib.channels.ecny import signing
from chalicelib.channels.ecny.credentials import ECNYCredentials
from chalicelib.domain.errors import ChannelError

USER_AGENT = "payhub-ecny/1.0"
SUCCESS = "SUCCESS"
# The gateway asks callers to resend these unchanged; our clock being off is fixed by a fresh timestamp.
RETRYABLE_CODES = frozenset({"SYSTEM_BUSY", "SYSTEM_ERROR", "TIMESTAMP_EXPIRED", "STATEMENT_NOT_READY"})
# Definite business refusals: nothing happened at the bank. Auth failures (SIGN_INVALID, MERCHANT_INVALID)
# are about our keys, not the operation, so they are not refusals; any other code leaves the outcome unknown.
REFUSAL_CODES = frozenset({
    "PARAM_ERROR", "ORDER_NOT_FOUND", "REFUND_NOT_FOUND", "ORDER_PAID", "ORDER_CLOSED", "ORDER_NOT_PAID",
    "REFUND_EXCEEDS", "BALANCE_INSUFFICIENT",
})
# "This number already exists at the bank (with other fields)": something was made under our number before,
# perhaps by the very request whose answer we lost. Not a refusal (that could release a refund that is moving
# money) and not worth resending unchanged: the outcome is unknown, and only a query tells.
EXISTS_CODES = frozenset({"ORDER_EXISTS", "REFUND_EXISTS"})
_MESSAGE_CHARS_MAX = 200
_CODE_SHAPE = re.compile(r"[^A-Za-z0-9_.\-]")  # an unsigned body's claim is logged: code-like text only


def encode_body(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ECNYClient:
    def __init__(self, transport: Transport, clock: Callable[[], datetime], timeout_s: float = 10.0) -> None:
        self._transport = transport
        self._clock = clock
        self._timeout_s = timeout_s

    def call(self, credentials: ECNYCredentials, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST one signed request; return the answer's ``data`` object or raise ``ChannelError``."""
        response, nonce = self._send(credentials, path, body)
        self._verify(credentials, response, nonce)
        return _data(response)

    def download(self, credentials: ECNYCredentials, path: str, body: Mapping[str, Any]) -> bytes:
        """POST for a file: a 200 answer is the raw file (unsigned); anything else is a signed error answer."""
        response, nonce = self._send(credentials, path, body)
        if response.status == 200 and not response.headers.get("content-type", "").startswith("application/json"):
            return response.body
        self._verify(credentials, response, nonce)
        _data(response)  # raises the bank's error
        raise ChannelError("e-CNY gateway answered a file download with JSON and no error")

    def _send(self, credentials: ECNYCredentials, path: str, body: Mapping[str, Any]) -> tuple[HttpResponse, str]:
        payload = encode_body(body)
        full_path = _path_of(credentials.api_base_url) + path
        timestamp, nonce = str(int(self._clock().timestamp())), signing.new_nonce()
        message = signing.request_message(full_path, timestamp, nonce, payload)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            signing.HEADER_MERCHANT: credentials.merchant_id,
            signing.HEADER_TIMESTAMP: timestamp,
            signing.HEADER_NONCE: nonce,
            signing.HEADER_SERIAL: credentials.merchant_key_serial,
            signing.HEADER_SIGNATURE: signing.sign(credentials.merchant_private_key, credentials.merchant_public_key,
                                                   message),
        }
        request = HttpRequest("POST", credentials.api_base_url + path, headers, payload)
        response = self._transport.send(request, timeout_s=self._timeout_s)
        if response.status >= 500 or response.status == 429:
            # Gateways and proxies in front of the bank answer these unsigned: resend later. The code such a body
            # claims counts only when the bank signed it (callers act on codes: ORDER_NOT_FOUND closes an
            # attempt); otherwise it is named in the message and nothing more.
            if self._signed_by_bank(credentials, response, nonce):
                raise ChannelError(f"e-CNY gateway {response.status}{_code_suffix(response)}", retryable=True,
                                   channel_code=_code_of(response) or f"HTTP_{response.status}")
            claimed = f", claiming{_code_suffix(response)}" if _code_of(response) else ""
            raise ChannelError(f"e-CNY gateway {response.status} (unsigned{claimed}; not believed)",
                               retryable=True, channel_code=f"HTTP_{response.status}")
        return response, nonce

    def _signed_by_bank(self, credentials: ECNYCredentials, response: HttpResponse, request_nonce: str) -> bool:
        try:
            self._verify(credentials, response, request_nonce)
        except ChannelError:
            return False
        return True

    def _verify(self, credentials: ECNYCredentials, response: HttpResponse, request_nonce: str) -> None:
        def message_for(timestamp: str, nonce: str) -> bytes:
            return signing.response_message(request_nonce, timestamp, nonce, response.body)

        try:
            signing.check_signed(response.headers, message_for, credentials.bank_public_keys, self._clock())
        except signing.SignatureInvalid as exc:
            # Unverified: we cannot tell what the bank did, so neither a refusal nor safely retryable.
            raise ChannelError(f"e-CNY gateway answer failed verification: {exc}",
                               channel_code="RESPONSE_SIGNATURE_INVALID") from None


def _path_of(base_url: str) -> str:
    """The path prefix of the configured base URL (``https://gw.bank/ecny-gw`` -> ``/ecny-gw``)."""
    after_scheme = base_url.split("://", 1)[-1]
    slash = after_scheme.find("/")
    return after_scheme[slash:].rstrip("/") if slash >= 0 else ""


def _answer(response: HttpResponse) -> dict[str, Any] | None:
    try:
        value = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _code_of(response: HttpResponse) -> str | None:
    answer = _answer(response)
    code = answer.get("code") if answer else None
    return code if isinstance(code, str) and code else None


def _code_suffix(response: HttpResponse) -> str:
    code = _code_of(response)
    return f" {_CODE_SHAPE.sub('?', code[:64])}" if code else ""


def _data(response: HttpResponse) -> dict[str, Any]:
    answer = _answer(response)
    if answer is None:
        raise ChannelError(f"e-CNY gateway answered {response.status} with a body that is not a JSON object")
    code = answer.get("code")
    if response.status == 200 and code == SUCCESS:
        data = answer.get("data", {})
        if not isinstance(data, dict):
            raise ChannelError("e-CNY gateway answer has a data field that is not an object")
        return data
    code_text = code if isinstance(code, str) and code else f"HTTP_{response.status}"
    message = str(answer.get("msg") or "")[:_MESSAGE_CHARS_MAX]
    raise ChannelError(f"e-CNY gateway {response.status} {code_text}: {message}", channel_code=code_text,
                       retryable=code_text in RETRYABLE_CODES, refused=code_text in REFUSAL_CODES)
