"""Sending a one-time code through Alibaba Cloud SMS (Dysmsapi ``SendSms``, API version 2017-05-25).

Aliyun's RPC-style signature: every parameter (``AccessKeyId``, ``Action``, ``Format``, ``SignatureMethod``
HMAC-SHA1, ``SignatureNonce``, ``SignatureVersion`` 1.0, ``Timestamp`` in UTC ISO 8601, ``Version`` and the call's
own ``PhoneNumbers``, ``SignName``, ``TemplateCode``, ``TemplateParam``) is percent-encoded (RFC 3986, ``~`` kept),
sorted by name and joined as ``k=v&...``; the string to sign is ``POST&%2F&`` + the percent-encoded query; the
signature is base64(HMAC-SHA1(AccessKeySecret + "&", that string)), sent as ``Signature``. Success is
``{"Code": "OK", "BizId": ...}``; ``isv.BUSINESS_LIMIT_CONTROL`` is Aliyun's own per-number flow control.

The code travels only in ``TemplateParam``; nothing here logs the parameters or the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from datetime import UTC, datetime
from urllib.parse import quote

from chalicelib.channels.base import HttpRequest
from chalicelib.domain.errors import ChannelError

log = logging.getLogger(__name__)


class SmsNotSent(ChannelError):
    """The provider did not accept the message (502 to the caller); ``code`` is its error code, never the content."""

    def __init__(self, code: str) -> None:
        super().__init__(f"SMS not sent: {code}", channel_code=code, refused=True)
        self.code = code


def _encode(value: str) -> str:
    return quote(value, safe="~")


def sign(params: dict[str, str], access_key_secret: str, method: str = "POST") -> str:
    canonical = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{_encode('/')}&{_encode(canonical)}"
    mac = hmac.new(f"{access_key_secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def send_code(base_url: str, access_key_id: str, access_key_secret: str, *, phone: str, sign_name: str,
              template_code: str, code: str, timeout_s: float = 3.0) -> str:
    """Send ``code`` to ``phone``; returns Aliyun's BizId. Raises SmsNotSent or ChannelError (unreachable)."""
    from chalicelib.risk.provider import transport

    params = {
        "AccessKeyId": access_key_id, "Action": "SendSms", "Format": "JSON", "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": secrets.token_hex(16), "SignatureVersion": "1.0",
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
        "PhoneNumbers": phone, "SignName": sign_name, "TemplateCode": template_code,
        "TemplateParam": json.dumps({"code": code}, separators=(",", ":")),
    }
    params["Signature"] = sign(params, access_key_secret)
    body = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in params.items()).encode()
    answer = transport().send(HttpRequest("POST", f"{base_url.rstrip('/')}/",
                                          {"Content-Type": "application/x-www-form-urlencoded"}, body),
                              timeout_s=timeout_s)
    try:
        result = json.loads(answer.body)
    except ValueError as exc:
        raise ChannelError("SMS provider answer unreadable", retryable=True) from exc
    if answer.status == 200 and result.get("Code") == "OK":
        return str(result.get("BizId", ""))
    log.warning("SMS provider refused: %s", result.get("Code"))
    raise SmsNotSent(str(result.get("Code") or f"HTTP {answer.status}"))
