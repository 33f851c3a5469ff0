"""Someone on the path between the hub and WeChat Pay (a bad proxy, TLS interception) rewrites WeChat's answers.

The hub runs whole (API over HTTP, moto, the SQS consumers) against the WeChat sandbox; a tampering proxy sits
inside the hub's channel transport, forwards every request to the sandbox and rewrites chosen answers: it strips
the signature, or re-signs with a key WeChat never held. A forged "paid" must not mark the payment succeeded, a
forged "no such order" must not close it, and a forged refusal must not fail a refund whose money moved.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from chalicelib.channels.base import HttpRequest, HttpResponse, Transport
from chalicelib.channels.registry import adapter
from chalicelib.channels.wechatpay.verification import verification_message
from chalicelib.crypto.rsa import sign_sha256
from chalicelib.domain.errors import ChannelError
from chalicelib.service import status_sync
from chalicelib.storage import state_repo
from tests.helpers import wait_for

Rewrite = Callable[[HttpRequest, HttpResponse], HttpResponse | None]
_SIGNATURE_HEADERS = ("wechatpay-signature", "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-serial",
                      "wechatpay-signature-type")


@dataclass
class TamperingProxy:
    """Forwards to the real transport; ``rewrite`` may replace the genuine answer (None keeps it)."""

    real: Transport
    rewrite: Rewrite
    rewritten: list[str] = field(default_factory=list)

    def send(self, request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        genuine = self.real.send(request, timeout_s=timeout_s)
        forged = self.rewrite(request, genuine)
        if forged is None:
            return genuine
        self.rewritten.append(f"{request.method} {request.url}")
        return forged


def _unsigned(status: int, payload: dict | None, genuine: HttpResponse) -> HttpResponse:
    headers = {k: v for k, v in genuine.headers.items() if k not in _SIGNATURE_HEADERS}
    return HttpResponse(status, headers, b"" if payload is None else json.dumps(payload).encode())


_IMPOSTOR = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)


def _resigned(status: int, payload: dict, genuine: HttpResponse) -> HttpResponse:
    """Signed as WeChat signs, with WeChat's serial, by a key WeChat never held."""
    body = json.dumps(payload).encode()
    timestamp, nonce = genuine.headers["wechatpay-timestamp"], "FORGEDNONCE0000000000000000000000"
    signature = base64.b64encode(sign_sha256(_IMPOSTOR, verification_message(timestamp, nonce, body))).decode()
    return HttpResponse(status, {**genuine.headers, "wechatpay-nonce": nonce, "wechatpay-signature": signature},
                        body)


FORGERIES = {"unsigned": _unsigned, "impostor_signed": _resigned}


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Rewrite], TamperingProxy]]:
    client = adapter("wechatpay")._client  # type: ignore[attr-defined]
    real = client._transport

    def install(rewrite: Rewrite) -> TamperingProxy:
        tampering = TamperingProxy(real, rewrite)
        monkeypatch.setattr(client, "_transport", tampering)
        return tampering

    yield install


def _status(merchant, payment) -> str:
    return str(merchant.get(f"/v1/payments/{payment['id']}")["status"])


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_paid_query_answer_does_not_succeed_the_payment(stack, merchant, proxy, forgery):
    payment = merchant.create_payment(method="wechat.native", amount=4321)
    attempt_id = payment["attempt_id"]

    def paid(request: HttpRequest, genuine: HttpResponse) -> HttpResponse | None:
        if request.method != "GET" or f"/out-trade-no/{attempt_id}" not in request.url:
            return None
        transaction = json.loads(genuine.body)
        assert transaction["trade_state"] == "NOTPAY"  # the truth, as the sandbox signed it
        transaction.update(trade_state="SUCCESS", transaction_id="4200000000000000000000000001",
                           success_time="2024-05-20T12:00:00+08:00", payer={"openid": "o-forged"})
        transaction["amount"].update(payer_total=4321, payer_currency="CNY")
        return FORGERIES[forgery](200, transaction, genuine)

    tampering = proxy(paid)
    with pytest.raises(ChannelError) as caught:
        status_sync.sync_attempt(attempt_id)
    assert caught.value.channel_code == ("RESPONSE_UNSIGNED" if forgery == "unsigned" else "RESPONSE_SIGNATURE_INVALID")
    assert not caught.value.refused
    assert tampering.rewritten, "the proxy never saw the query"
    assert _status(merchant, payment) == "pending"
    attempt = state_repo.get_attempt(attempt_id)
    assert attempt is not None and str(attempt.status) == "pending" and attempt.channel_transaction_id is None

    # The same query, answered genuinely by the sandbox, goes through and still says "not paid".
    proxy(lambda request, genuine: None)
    assert status_sync.sync_attempt(attempt_id) != "final"
    assert _status(merchant, payment) == "pending"


def test_a_forged_unsigned_not_found_does_not_close_the_payment(stack, merchant, proxy):
    payment = merchant.create_payment(method="wechat.native", amount=1200)
    attempt_id = payment["attempt_id"]

    def not_exist(request: HttpRequest, genuine: HttpResponse) -> HttpResponse | None:
        if not request.url.endswith(f"/out-trade-no/{attempt_id}/close"):
            return None
        return _unsigned(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}, genuine)

    proxy(not_exist)
    closed = merchant.call("POST", f"/v1/payments/{payment['id']}/close")
    assert closed.status_code == 502, closed.text  # the channel's answer could not be authenticated
    assert _status(merchant, payment) == "pending"


def test_a_forged_unsigned_refusal_does_not_fail_a_refund_whose_money_moved(stack, merchant, proxy, drain):
    payment = merchant.create_payment(method="wechat.native", amount=3000)
    answer = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]},
                           timeout=10)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: _status(merchant, payment) == "succeeded")

    def refused(request: HttpRequest, genuine: HttpResponse) -> HttpResponse | None:
        if request.method != "POST" or not request.url.endswith("/v3/refund/domestic/refunds"):
            return None
        assert genuine.status == 200  # WeChat took the refund; the proxy says it did not
        return _unsigned(400, {"code": "INVALID_REQUEST", "message": "退款金额超过可退金额"}, genuine)

    tampering = proxy(refused)
    created = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                            {"amount": 1000, "merchant_refund_no": "forged-refusal", "reason": "x"})
    assert created.status_code == 201, created.text
    refund_id = created.json()["id"]
    drain()
    assert tampering.rewritten
    seen = {merchant.get(f"/v1/refunds/{refund_id}")["status"]}
    assert "failed" not in seen
    # WeChat's signed REFUND.SUCCESS callback (and status sync's signed query) decide it.
    final = wait_for(lambda: (s := merchant.get(f"/v1/refunds/{refund_id}")["status"]) in ("succeeded", "failed") and s,
                     timeout_s=15)
    assert final == "succeeded"
    after = merchant.get(f"/v1/payments/{payment['id']}")
    assert (after["amount_refunded"], after["amount_refund_pending"]) == (1000, 0)
