"""The invoice-provider adapter for Nuonuo's open platform (诺诺开放平台), as docs/invoices.md describes it.

Every call is a POST to ``<api_base_url>/open/v1/services?senid=&nonce=&timestamp=&appkey=`` with the business
method in the ``method`` header, the seller's ``accessToken`` and tax number (``userTax``), and ``X-Nuonuo-Sign``:
base64(HMAC-SHA1(appSecret, "a=services&l=v1&p=open&k=<appKey>&i=<senid>&n=<nonce>&t=<timestamp>&f=<body>")),
computed over the exact body sent. Nuonuo does not sign its answers: https (certificate checked) is what
authenticates them, and plain http is refused except to a loopback sandbox (chalicelib/channels/transport.py).

Outcomes are sorted the way charging sorts them: ``E0000`` accepted; ``E9106`` (order number or form id already
used) means an earlier send arrived, so the caller queries instead; any other ``E9xxx`` is a business refusal
(nothing was issued); anything else (a gateway code, a 5xx, a timeout, an unreadable answer) leaves the outcome
unknown, and only a query by our own serial number can tell.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

from chalicelib.channels.base import HttpRequest
from chalicelib.channels.transport import UrllibTransport
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.value_class import value_class
from chalicelib.invoices.config import InvoicingSettings

SUCCESS, DUPLICATE, NOT_FOUND = "E0000", "E9106", "E9500"
BILLING = "nuonuo.OpeMplatform.requestBillingNew"
QUERY = "nuonuo.OpeMplatform.queryInvoiceResult"
SAVE_RED_FORM = "nuonuo.OpeMplatform.saveInvoiceRedConfirm"
QUERY_RED_FORM = "nuonuo.OpeMplatform.queryInvoiceRedConfirm"
# queryInvoiceResult ``status``: 2 开票完成; 20 开票中, 21 开票成功签章中; 22 开票失败, 24 签章失败.
ISSUED, FAILED, PENDING = "2", "22", frozenset({"20", "21", "24"})
_transport: UrllibTransport | None = None


class ProviderUnknown(ChannelError):
    """The provider's answer does not tell what happened: query by our serial number before anything else."""


class ProviderRefused(ChannelError):
    """A definite business refusal: nothing was issued."""

    def __init__(self, code: str, describe: str) -> None:
        super().__init__(f"invoice provider refused ({code}): {describe}", channel_code=code, refused=True)
        self.describe = describe


def sign(app_secret: str, app_key: str, senid: str, nonce: str, timestamp: str, body: str) -> str:
    message = f"a=services&l=v1&p=open&k={app_key}&i={senid}&n={nonce}&t={timestamp}&f={body}"
    return base64.b64encode(hmac.new(app_secret.encode(), message.encode(), hashlib.sha1).digest()).decode()


@value_class
class Answer:
    code: str
    describe: str
    result: Any


class NuonuoClient:
    def __init__(self, config: InvoicingSettings, credentials: dict[str, str]) -> None:
        global _transport
        self._config = config
        self._secret = credentials["app_secret"]
        self._token = credentials["access_token"]
        _transport = _transport or UrllibTransport()
        self._transport = _transport

    def call(self, method: str, payload: dict[str, Any]) -> Answer:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        senid, nonce, timestamp = uuid.uuid4().hex, str(10_000_000 + secrets.randbelow(90_000_000)), str(int(time.time()))
        query = urlencode({"senid": senid, "nonce": nonce, "timestamp": timestamp, "appkey": self._config.app_key})
        headers = {"Content-Type": "application/json; charset=UTF-8", "method": method, "accessToken": self._token,
                   "userTax": self._config.seller_tax_no,
                   "X-Nuonuo-Sign": sign(self._secret, self._config.app_key, senid, nonce, timestamp, body)}
        url = f"{self._config.api_base_url.rstrip('/')}/open/v1/services?{query}"
        try:
            response = self._transport.send(HttpRequest("POST", url, headers, body.encode()), timeout_s=10.0)
        except ChannelError as exc:
            raise ProviderUnknown(f"{method}: {exc.message}", channel_code="UNREACHABLE") from exc
        if response.status != 200:
            raise ProviderUnknown(f"{method}: HTTP {response.status}", channel_code=f"HTTP_{response.status}")
        try:
            loaded = json.loads(response.body)
            answer = Answer(str(loaded["code"]), str(loaded.get("describe") or ""), loaded.get("result"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderUnknown(f"{method}: unreadable answer", channel_code="UNREADABLE") from exc
        return answer

    def _business(self, method: str, payload: dict[str, Any]) -> Answer:
        """E0000 and E9106/E9500 come back; other E9xxx refuse; anything else is unknown."""
        answer = self.call(method, payload)
        if answer.code in (SUCCESS, DUPLICATE, NOT_FOUND):
            return answer
        if answer.code.startswith("E9"):
            raise ProviderRefused(answer.code, answer.describe)
        raise ProviderUnknown(f"{method}: gateway answered {answer.code}", channel_code=answer.code)

    def request_billing(self, order: dict[str, Any]) -> Answer:
        return self._business(BILLING, {"order": order})

    def query_order(self, order_no: str) -> dict[str, Any] | None:
        """The provider's record of our order, or None when it never received it."""
        return self._first(self._business(QUERY, {"orderNos": [order_no], "isOfferInvoiceDetail": "0"}))

    def query_serial(self, serial_no: str) -> dict[str, Any] | None:
        return self._first(self._business(QUERY, {"serialNos": [serial_no], "isOfferInvoiceDetail": "0"}))

    @staticmethod
    def _first(answer: Answer) -> dict[str, Any] | None:
        if answer.code == NOT_FOUND:
            return None
        if answer.code != SUCCESS or not isinstance(answer.result, list) or not answer.result:
            raise ProviderUnknown(f"query answered {answer.code} without a record", channel_code=answer.code)
        found: dict[str, Any] = answer.result[0]
        return found

    def save_red_form(self, form: dict[str, Any]) -> Answer:
        return self._business(SAVE_RED_FORM, form)

    def query_red_form(self, bill_id: str) -> dict[str, Any] | None:
        answer = self._business(QUERY_RED_FORM, {"identity": "0", "billId": bill_id})
        forms = (answer.result or {}).get("list") if isinstance(answer.result, dict) else None
        return forms[0] if forms else None

    def download(self, url: str) -> bytes:
        """An issued invoice's PDF. Only from the provider's own host: the URL comes from its answer."""
        if urlsplit(url).hostname != urlsplit(self._config.api_base_url).hostname:
            raise ProviderUnknown("the invoice file is not on the provider's host", channel_code="FOREIGN_URL")
        response = self._transport.send(HttpRequest("GET", url), timeout_s=15.0)
        if response.status != 200 or not response.body.startswith(b"%PDF"):
            raise ProviderUnknown(f"invoice file: HTTP {response.status}", channel_code="FILE_UNAVAILABLE")
        return response.body
