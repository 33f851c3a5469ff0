"""Signed calls to the ACP gateway through the shared ``Transport``: sign, POST the form, verify the answer.

Every answer must be signed by a trusted UnionPay certificate; an answer that is not (or is not HTTP 200,
or cannot be read) leaves the outcome unknown, so it becomes ``ChannelError`` that is *not* a refusal: only
a query may then decide what happened. Errors never echo the fields sent (they may carry card data).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from chalicelib.channels.base import HttpRequest, Transport
from chalicelib.channels.unionpay.credentials import UnionPayCredentials
from chalicelib.channels.unionpay.signing import sign_fields
from chalicelib.channels.unionpay.verification import SignatureInvalid, check_signed
from chalicelib.channels.unionpay.wire import MalformedMessage, decode_answer, encode_form
from chalicelib.domain.errors import ChannelError

FRONT_PATH = "/gateway/api/frontTransReq.do"
APP_PATH = "/gateway/api/appTransReq.do"
BACK_PATH = "/gateway/api/backTransReq.do"
QUERY_PATH = "/gateway/api/queryTrans.do"
USER_AGENT = "payhub-unionpay/1.0"
_MESSAGE_CHARS_MAX = 120
BOUND_FIELDS = ("merId", "orderId", "txnTime")


class AcpClient:
    def __init__(self, transport: Transport, clock: Callable[[], datetime], timeout_s: float = 10.0) -> None:
        self._transport = transport
        self._clock = clock
        self._timeout_s = timeout_s

    def sign(self, credentials: UnionPayCredentials, fields: Mapping[str, str]) -> dict[str, str]:
        return sign_fields(fields, credentials.merchant_private_key, credentials.cert_id)

    def call(self, credentials: UnionPayCredentials, url: str, fields: Mapping[str, str]) -> dict[str, str]:
        """POST one signed request; return the verified answer's fields (any respCode)."""
        body = encode_form(self.sign(credentials, fields))
        request = HttpRequest(method="POST", url=url, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8", "User-Agent": USER_AGENT})
        response = self._transport.send(request, timeout_s=self._timeout_s)
        if response.status != 200:
            raise ChannelError(f"UnionPay answered HTTP {response.status}", channel_code=f"HTTP_{response.status}",
                               retryable=response.status >= 500 or response.status == 429)
        try:
            answer = decode_answer(response.body)
        except MalformedMessage as exc:
            raise ChannelError(f"UnionPay answer unreadable: {exc}", channel_code="ANSWER_MALFORMED") from None
        try:
            check_signed(answer, credentials, self._clock())
        except SignatureInvalid as exc:
            code = answer.get("respCode", "")
            raise ChannelError(f"UnionPay answer (respCode {code[:4]}) failed verification: {exc}",
                               channel_code="RESPONSE_SIGNATURE_INVALID") from None
        _check_bound(fields, answer)
        return answer

    def gateway_url(self, credentials: UnionPayCredentials, path: str) -> str:
        return credentials.api_base_url + path


def _check_bound(sent: Mapping[str, str], answer: Mapping[str, str]) -> None:
    """A signed answer must be about the message we sent. ACP answers carry no request nonce and no time window,
    so a genuine answer about another order could be replayed by anyone on the path. UnionPay echoes merId,
    orderId and txnTime in its answers (they are signed, so nobody can strip them): each one echoed must be ours."""
    for name in BOUND_FIELDS:
        echoed = answer.get(name)
        if name in sent and echoed is not None and echoed != sent[name]:
            raise ChannelError(f"UnionPay answer is about another {name} than the message sent",
                               channel_code="ANSWER_MISMATCH")


def describe(answer: Mapping[str, str]) -> str:
    """``respCode respMsg`` for error messages (UnionPay's own words, trimmed)."""
    return f"{answer.get('respCode', '')} {answer.get('respMsg', '')[:_MESSAGE_CHARS_MAX]}".strip()
