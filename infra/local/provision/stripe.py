"""Stripe: an account at the Stripe sandbox, its webhook endpoint pointing at the hub, and the keys stored.

As an operator would: create the account (its secret and publishable keys), then create the webhook endpoint
for the hub's callback URL through the real API (``POST /v1/webhook_endpoints``), whose answer carries the
signing secret. Provisioning the same account id again issues a fresh secret key and replaces the endpoint
(and with it the signing secret).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

import urllib3

from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.config.settings import settings
from chalicelib.service.routing import callback_url
from chalicelib.storage import config_repo
from infra.local.provision.http import post_json

STRIPE_METHODS = ("stripe.card", "stripe.checkout")
STRIPE_CURRENCIES = ("USD", "EUR", "GBP", "HKD", "SGD", "JPY", "CNY", "AUD", "CAD", "CHF", "KRW", "BHD", "KWD", "ISK")
WEBHOOK_EVENTS = (
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.processing",
    "payment_intent.canceled", "payment_intent.requires_action", "payment_intent.amount_capturable_updated",
    "charge.refunded", "refund.created", "refund.updated", "refund.failed",
    "checkout.session.completed", "checkout.session.expired",
)
API_VERSION = "2024-06-20"


def _merchant_id_for(account_id: str) -> str:
    return "acct_" + hashlib.sha256(account_id.encode()).hexdigest()[:16].upper()


def _stripe(method: str, url: str, secret_key: str, params: list[tuple[str, str]] | None = None,
            idempotency_key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {secret_key}", "Stripe-Version": API_VERSION}
    body = None
    if method == "POST":
        headers.update({"Content-Type": "application/x-www-form-urlencoded",
                        "Idempotency-Key": idempotency_key or ""})
        body = urlencode(params or [])
    response = urllib3.request(method, url, body=body, headers=headers, timeout=10.0)
    if response.status != 200:
        raise RuntimeError(f"Stripe sandbox answered {response.status}: {response.data[:200]!r}")
    loaded: dict[str, Any] = json.loads(response.data)
    return loaded


def provision(sandbox_url: str, *, account_id: str = "stripe-demo", priority: int = 100, merchant_id: str | None = None,
              currencies: tuple[str, ...] = STRIPE_CURRENCIES, fee_rate_bps: int = 290,
              fixed_fee: int = 0, merchant_ids: tuple[str, ...] = ()) -> ChannelAccountConfig:
    """Register the account, point a webhook endpoint at the hub, store the config and its secrets.

    The sandbox charges ``fee_rate_bps`` plus ``fixed_fee`` per charge. Without a fixed part the account's fee
    schedule (setting ``fee_rate_bps``, used by reconciliation to check fees row by row) can state it exactly.
    """
    acct = merchant_id or _merchant_id_for(account_id)
    registered = post_json(f"{sandbox_url}/_sandbox/merchants", {
        "merchant_id": acct, "connect": True, "fee_rate_bps": fee_rate_bps, "fixed_fee": fixed_fee})
    secret_key = registered["secret_key"]
    hook_url = callback_url(settings().public_base_url, "stripe", account_id)
    for endpoint in _stripe("GET", f"{sandbox_url}/v1/webhook_endpoints?limit=100", secret_key)["data"]:
        if endpoint["url"] == hook_url:
            _stripe("DELETE", f"{sandbox_url}/v1/webhook_endpoints/{endpoint['id']}", secret_key)
    params = [("url", hook_url), ("api_version", API_VERSION)]
    params += [(f"enabled_events[{n}]", event) for n, event in enumerate(WEBHOOK_EVENTS)]
    endpoint = _stripe("POST", f"{sandbox_url}/v1/webhook_endpoints", secret_key, params,
                       idempotency_key=f"payhub:provision:{account_id}:{secret_key[-8:]}")
    config = ChannelAccountConfig(
        account_id=account_id, channel="stripe", priority=priority, methods=STRIPE_METHODS, currencies=currencies,
        api_base_url=sandbox_url, merchant_ids=merchant_ids,
        settings={"merchant_id": acct, "publishable_key": registered["publishable_key"], "stripe_version": API_VERSION,
                  "livemode": "false", "webhook_endpoint_id": endpoint["id"]},
    )
    if fixed_fee == 0:
        config = config.model_copy(update={"settings": {**config.settings, "fee_rate_bps": str(fee_rate_bps)}})
    config_repo.put_channel_account(config, {"secret_key": secret_key, "webhook_secrets": [endpoint["secret"]]})
    return config
