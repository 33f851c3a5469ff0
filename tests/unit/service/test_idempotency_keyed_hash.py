"""Idempotency fingerprints of requests that carry a card or an SMS code are keyed (KMS HMAC), never a plain
SHA-256 that could be reversed by trying every card number or code."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from chalicelib.config.settings import settings
from chalicelib.storage import idempotency
from chalicelib.vault import cards
from chalicelib.vault.cards import CardVault
from tests.fakes.kms import FakeKms

CARD_BODY = {"merchant_order_no": "o1", "amount": 100, "currency": "CNY", "description": "d",
             "method": "unionpay.card", "card": {"number": "6212345678901265", "exp_month": 12, "exp_year": 2031}}


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> FakeKms:
    fake = FakeKms()
    vault = CardVault(fake, dataclasses.replace(settings()))
    monkeypatch.setattr(cards, "vault", lambda: vault)
    return fake


def plain(method: str, path: str, body: object) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/payments", [{}, CARD_BODY]),
    ("/v1/payments/{payment_id}/confirm", [{"payment_id": "pay_1"}, {"sms_code": "123456"}]),
    ("/v1/payments/{payment_id}/confirm", [{"payment_id": "pay_1"}, {"cvv": "123"}]),
    ("/v1/payments", [{}, '{"card": {"number": "6212345678901265"'])  # not JSON: hashed as text
])
def test_bodies_with_payer_secrets_get_a_keyed_fingerprint(kms: FakeKms, path: str, body: object) -> None:
    digest = idempotency.request_hash("POST", path, body)
    assert digest.startswith("k1:") and plain("POST", path, body) not in digest
    assert kms.calls == ["GenerateMac"]
    assert idempotency.request_hash("POST", path, body) == digest  # stable: replays still match
    other = json.loads(json.dumps(body).replace("6212345678901265", "6212345678901273").replace("123", "124"))
    assert idempotency.request_hash("POST", path, other) != digest


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/payments", [{}, {**{k: v for k, v in CARD_BODY.items() if k != "card"}, "method": "wechat.native"}]),
    ("/v1/payments/{payment_id}/confirm", [{"payment_id": "pay_1"}, {}]),
    ("/v1/payments/{payment_id}/refunds", [{"payment_id": "pay_1"}, {"amount": 1, "cvv": "123"}]),
])
def test_other_requests_keep_the_plain_hash_and_never_call_kms(kms: FakeKms, path: str, body: object) -> None:
    assert idempotency.request_hash("POST", path, body) == plain("POST", path, body)
    assert kms.calls == []
