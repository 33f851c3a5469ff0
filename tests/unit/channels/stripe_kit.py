"""Stripe test kit: accounts, objects shaped like Stripe's, events signed the way Stripe signs them
(docs/channels/stripe.md#webhook-signature, written here from the protocol, not from the adapter), and a fake transport."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chalicelib.channels.base import HttpRequest, HttpResponse, InboundCallback
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets

NOW = datetime(2024, 5, 20, 4, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
ACCT = "acct_1PAYHUBTEST00001"
SECRET_KEY = "sk_test_51PAYHUBfakeKeyForUnitTestsOnly000000"
WHSEC = "whsec_test_current_0123456789abcdef"
WHSEC_OLD = "whsec_test_previous_fedcba9876543210"
API = "https://api.stripe.example"

Handler = Callable[[HttpRequest], HttpResponse]


def make_account(*, webhook_secrets: list[str] | None = None, secret_key: str = SECRET_KEY,
                 **settings: str) -> ChannelAccount:
    config = ChannelAccountConfig(
        account_id="stripe-test", channel="stripe", methods=("stripe.card",), currencies=("USD", "JPY", "BHD", "ISK"),
        api_base_url=API, settings={"merchant_id": ACCT, "publishable_key": "pk_test_kit", **settings},
    )
    secrets = {"secret_key": secret_key, "webhook_secrets": [WHSEC] if webhook_secrets is None else webhook_secrets}
    return ChannelAccount(config, ChannelSecrets(secrets))


def stripe_signature(body: bytes, secrets: list[str], ts: int = NOW_TS, *, extra: str = "") -> str:
    """``t=...,v1=...`` with one v1 per secret, as Stripe sends during a secret rotation."""
    parts = [f"t={ts}"]
    for secret in secrets:
        digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts) + extra


def intent(status: str = "succeeded", *, amount: int = 1000, currency: str = "usd", attempt_id: str = "att_test1",
           **fields: Any) -> dict[str, Any]:
    return {"id": "pi_3PkitIntent000001", "object": "payment_intent", "amount": amount, "currency": currency,
            "status": status, "client_secret": "pi_3PkitIntent000001_secret_abc", "metadata": {"attempt_id": attempt_id},
            "last_payment_error": None, "next_action": None, "latest_charge": None, "livemode": False, **fields}


def refund(status: str = "succeeded", *, amount: int = 300, refund_id: str = "re_ourRefund1", **fields: Any) -> dict[str, Any]:
    return {"id": "re_3PkitRefund00001", "object": "refund", "amount": amount, "currency": "usd", "status": status,
            "payment_intent": "pi_3PkitIntent000001", "charge": "ch_3Pkit", "metadata": {"refund_id": refund_id},
            "failure_reason": None, **fields}


def event(event_type: str, obj: dict[str, Any], *, event_id: str = "evt_1PkitEvent", livemode: bool = False,
          account: str | None = ACCT) -> bytes:
    body: dict[str, Any] = {"id": event_id, "object": "event", "api_version": "2024-06-20", "created": NOW_TS,
                            "data": {"object": obj}, "livemode": livemode, "pending_webhooks": 1,
                            "request": {"id": None, "idempotency_key": None}, "type": event_type}
    if account is not None:
        body["account"] = account
    return json.dumps(body, indent=2).encode()


def callback(body: bytes, header: str | None, received_at: datetime = NOW) -> InboundCallback:
    headers = {"content-type": "application/json; charset=utf-8"}
    if header is not None:
        headers["stripe-signature"] = header
    return InboundCallback(headers=headers, body=body, received_at=received_at)


def ok(payload: dict[str, Any], status: int = 200, **headers: str) -> HttpResponse:
    return HttpResponse(status=status, headers={"content-type": "application/json", "request-id": "req_kit", **headers},
                        body=json.dumps(payload).encode())


def error(status: int, error_type: str, code: str | None = None, message: str = "failed", **extra: Any) -> HttpResponse:
    body: dict[str, Any] = {"type": error_type, "message": message, **extra}
    if code:
        body["code"] = code
    return ok({"error": body}, status)


def form(request: HttpRequest) -> dict[str, str]:
    return dict(parse_qsl(request.body.decode()))


def query(request: HttpRequest) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(request.url).query))


@dataclass
class FakeTransport:
    """Records every request and answers from a queue of canned responses (or handlers)."""

    responses: list[HttpResponse | Handler] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)

    def send(self, request: HttpRequest, *, timeout_s: float = 10.0) -> HttpResponse:
        self.requests.append(request)
        if not self.responses:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.responses.pop(0)
        return answer if isinstance(answer, HttpResponse) else answer(request)
