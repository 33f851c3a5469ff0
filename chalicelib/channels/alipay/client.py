"""Signed calls to the Alipay gateway through the shared ``Transport``.

A request is the common parameters plus ``biz_content`` (serialised once, signed as sent), form-encoded.
An answer is trusted only once the ``sign`` over the exact ``<method>_response`` text verifies with one of the
account's Alipay public keys; only then may an error count as a definite refusal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from chalicelib.channels.alipay import signing
from chalicelib.channels.alipay.credentials import AlipayCredentials
from chalicelib.channels.alipay.envelope import MalformedAnswer, members, response_key
from chalicelib.channels.alipay.states import beijing_time
from chalicelib.channels.base import HttpRequest, Transport
from chalicelib.domain.errors import ChannelError

CHARSET = "utf-8"
SUCCESS_CODE = "10000"
UNKNOWN_CODE = "20000"  # service unavailable: query, then retry with the same parameters
# Sub codes Alipay asks callers to retry with the same parameters.
RETRYABLE_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error", "isp.unknown-error"})
# Gateway refusals about our own credentials: nothing happened, but it is a key/config problem on our side,
# not an answer about the business operation (WeChat's 401 SIGN_ERROR is treated the same way).
CREDENTIAL_SUB_CODES = frozenset({
    "isv.invalid-signature", "isv.invalid-signature-type", "isv.missing-signature", "isv.missing-signature-type",
    "isv.invalid-app-id", "isv.missing-app-id", "isv.app-unonline",
})
_MESSAGE_CHARS_MAX = 200
UNSIGNED = "RESPONSE_UNSIGNED"
_CODE_SHAPE = re.compile(r"[^A-Za-z0-9_. \-]")  # what an unsigned answer claims is logged: code-like text only


def encode_biz_content(biz: Mapping[str, Any]) -> str:
    return json.dumps(biz, ensure_ascii=False, separators=(",", ":"))


class AlipayClient:
    def __init__(self, transport: Transport, clock: Callable[[], datetime], timeout_s: float = 10.0) -> None:
        self._transport = transport
        self._clock = clock
        self._timeout_s = timeout_s

    def signed_params(self, credentials: AlipayCredentials, method: str, biz: Mapping[str, Any], *,
                      notify_url: str | None = None, return_url: str | None = None) -> dict[str, str]:
        """Common parameters + ``biz_content`` + ``sign``: what the gateway receives (from us or a browser)."""
        params = {
            "app_id": credentials.app_id, "method": method, "format": "JSON", "charset": CHARSET,
            "sign_type": credentials.sign_type, "timestamp": beijing_time(self._clock()), "version": "1.0",
            "biz_content": encode_biz_content(biz),
        }
        if notify_url:
            params["notify_url"] = notify_url
        if return_url:
            params["return_url"] = return_url
        params["sign"] = credentials.sign(signing.sign_content(params))
        return params

    def call(self, credentials: AlipayCredentials, method: str, biz: Mapping[str, Any], *,
             notify_url: str | None = None) -> dict[str, Any]:
        """POST one signed request; return the verified ``<method>_response`` object when its code is 10000."""
        params = self.signed_params(credentials, method, biz, notify_url=notify_url)
        request = HttpRequest(
            method="POST", url=f"{credentials.gateway_url}?{urlencode({'charset': CHARSET})}",
            headers={"Content-Type": f"application/x-www-form-urlencoded;charset={CHARSET}",
                     "Accept": "application/json", "User-Agent": "payhub-alipay/1.0"},
            body=urlencode(params, encoding=CHARSET).encode("ascii"),
        )
        response = self._transport.send(request, timeout_s=self._timeout_s)
        if response.status != 200:
            raise ChannelError(f"Alipay gateway answered HTTP {response.status} to {method}",
                               channel_code=f"HTTP_{response.status}", retryable=response.status >= 500)
        answer, verified = self._read(credentials, method, response.body)
        if str(answer.get("code")) != SUCCESS_CODE:
            raise channel_error(method, answer, verified=verified)
        if not verified:
            raise ChannelError(f"Alipay {method} answer carries no signature; not believed", channel_code=UNSIGNED)
        return answer

    def _read(self, credentials: AlipayCredentials, method: str, body: bytes) -> tuple[dict[str, Any], bool]:
        """The response object and whether its signature verified. A present but wrong signature is an error;
        an absent one is tolerated only so that an unsigned gateway error can still be read (never trusted)."""
        try:
            text = body.decode(CHARSET)
            raw = members(text)
        except (UnicodeDecodeError, MalformedAnswer) as exc:
            raise ChannelError(f"Alipay {method} answer is malformed: {exc}", channel_code="MALFORMED_ANSWER") from None
        key = response_key(method)
        raw_object = raw.get(key) or raw.get("error_response")
        if raw_object is None:
            raise ChannelError(f"Alipay {method} answer lacks {key}", channel_code="MALFORMED_ANSWER")
        answer = json.loads(raw_object)
        if not isinstance(answer, dict):
            raise ChannelError(f"Alipay {method} answer is not an object", channel_code="MALFORMED_ANSWER")
        signature = json.loads(raw["sign"]) if "sign" in raw else None
        if signature is None:
            return answer, False
        if not isinstance(signature, str) or signing.verify_with_any(
                credentials.sign_type, credentials.alipay_public_keys, raw_object.encode(CHARSET), signature) is None:
            raise ChannelError(f"Alipay {method} answer failed signature verification",
                               channel_code="RESPONSE_SIGNATURE_INVALID")
        return answer, True


def channel_error(method: str, answer: Mapping[str, Any], *, verified: bool) -> ChannelError:
    code = str(answer.get("code") or "")
    sub_code = str(answer.get("sub_code") or "")
    message = str(answer.get("sub_msg") or answer.get("msg") or "")[:_MESSAGE_CHARS_MAX]
    retryable = code == UNKNOWN_CODE or sub_code in RETRYABLE_SUB_CODES
    if not verified:
        # Callers act on sub codes (ACQ.TRADE_NOT_EXIST closes an attempt, ACQ.TRADE_HAS_SUCCESS records a payment):
        # an unsigned answer only says what it claims, in the message. Resending is safe at Alipay (our numbers
        # dedupe), so a claimed "try again" may still be retried; it is never a refusal.
        claimed = _CODE_SHAPE.sub("?", f"{code} {sub_code or '-'}"[:80])
        return ChannelError(f"Alipay {method} unsigned answer claiming {claimed}; not believed",
                            channel_code=UNSIGNED, retryable=retryable)
    # A business refusal (40004) or a parameter refusal (400xx) is definite only when Alipay signed it.
    refused = code.startswith("400") and not retryable and sub_code not in CREDENTIAL_SUB_CODES
    detail = f"Alipay {method} {code} {sub_code or '-'}: {message}"
    return ChannelError(detail, channel_code=sub_code or code or "UNKNOWN", retryable=retryable, refused=refused)


def download(transport: Transport, url: str, *, timeout_s: float = 30.0) -> bytes:
    """GET a file Alipay pointed us to (a bill). The URL is short-lived and carries its own token; nothing of
    ours (no signature, no key) is sent with it."""
    if not url.startswith(("https://", "http://")):
        raise ChannelError("Alipay download URL is not http(s)", channel_code="MALFORMED_ANSWER")
    response = transport.send(HttpRequest(method="GET", url=url, headers={"User-Agent": "payhub-alipay/1.0"}),
                              timeout_s=timeout_s)
    if response.status != 200:
        raise ChannelError(f"Alipay download answered HTTP {response.status}", channel_code=f"HTTP_{response.status}",
                           retryable=True)
    return response.body
