"""Face verification through Tencent Cloud FaceID (人脸核身, API version 2018-03-01).

``DetectAuth`` (``RuleId``, ``RedirectUrl``) starts a verification and answers a ``BizToken`` and the ``Url`` the
payer opens (liveness check, then comparison with the identity photo). ``GetDetectInfoEnhanced`` (``BizToken``,
``RuleId``) is the query: ``Text.ErrCode`` 0 means the check completed, ``Text.LiveStatus`` 0 that the liveness
check passed, ``Text.Sim`` the similarity 0..100. Tencent Cloud API 3.0 signs each call with TC3-HMAC-SHA256:
``Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/faceid/tc3_request, SignedHeaders=content-type;host,
Signature=<hex>``, over the canonical request (method, ``/``, empty query, the two headers, SHA-256 of the body),
with keys derived date -> service -> "tc3_request" from ``"TC3" + SecretKey``; ``X-TC-Action``,
``X-TC-Timestamp`` and ``X-TC-Version`` name the call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chalicelib.channels.base import HttpRequest
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.value_class import value_class

SERVICE = "faceid"
VERSION = "2018-03-01"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def authorization(secret_id: str, secret_key: str, *, host: str, body: bytes, timestamp: int) -> str:
    canonical = "\n".join(["POST", "/", "", f"content-type:application/json; charset=utf-8\nhost:{host}\n",
                           "content-type;host", hashlib.sha256(body).hexdigest()])
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{SERVICE}/tc3_request"
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), SERVICE), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"


def _call(base_url: str, secret_id: str, secret_key: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.risk.provider import transport

    body = json.dumps(payload, separators=(",", ":")).encode()
    host = urlsplit(base_url).netloc
    now = int(time.time())
    headers = {"Content-Type": "application/json; charset=utf-8", "Host": host, "X-TC-Action": action,
               "X-TC-Timestamp": str(now), "X-TC-Version": VERSION,
               "Authorization": authorization(secret_id, secret_key, host=host, body=body, timestamp=now)}
    answer = transport().send(HttpRequest("POST", f"{base_url.rstrip('/')}/", headers, body), timeout_s=5.0)
    try:
        result = json.loads(answer.body)["Response"]
    except (ValueError, KeyError) as exc:
        raise ChannelError("face provider answer unreadable", retryable=True) from exc
    if "Error" in result:
        raise ChannelError(f"face provider refused {action}: {result['Error'].get('Code')}",
                           channel_code=str(result["Error"].get("Code")), refused=True)
    return dict(result)


@value_class
class FaceResult:
    completed: bool  # the payer finished the check (else: still waiting)
    passed: bool
    similarity: float
    live: bool


def start(base_url: str, secret_id: str, secret_key: str, *, rule_id: str, redirect_url: str) -> tuple[str, str]:
    """(BizToken, Url for the payer)."""
    result = _call(base_url, secret_id, secret_key, "DetectAuth", {"RuleId": rule_id, "RedirectUrl": redirect_url})
    return str(result["BizToken"]), str(result["Url"])


def query(base_url: str, secret_id: str, secret_key: str, *, rule_id: str, biz_token: str,
          min_similarity: float) -> FaceResult:
    result = _call(base_url, secret_id, secret_key, "GetDetectInfoEnhanced",
                   {"BizToken": biz_token, "RuleId": rule_id, "InfoType": "0"})
    text = result.get("Text") or {}
    if text.get("ErrCode") is None:
        return FaceResult(False, False, 0.0, False)
    similarity = float(text.get("Sim") or 0)
    live = text.get("LiveStatus") == 0
    passed = text.get("ErrCode") == 0 and live and similarity >= min_similarity
    return FaceResult(True, passed, similarity, live)
