"""PayPal: an app (client id + secret) at the PayPal sandbox, a webhook registered for the hub's callback URL
through PayPal's own webhooks API, and the sandbox's test root CA plus its signing certificates pinned by URL
(the sandbox's certificate URL is plain http on 127.0.0.1, which the hub never fetches)."""

from __future__ import annotations

import base64
import json
from typing import Any

import urllib3

from chalicelib.channels.paypal.notifications import SUPPORTED_EVENTS
from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.config.settings import settings
from chalicelib.service.routing import callback_url
from chalicelib.storage import config_repo
from infra.local.provision.http import post_json

PAYPAL_METHODS = ("paypal.wallet",)
PAYPAL_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "HKD", "SGD", "AUD", "CAD", "CHF", "TWD", "THB", "MYR")


def _rest(method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    response = urllib3.request(method, url, headers=headers, body=body, timeout=10.0)
    if response.status not in (200, 201):
        raise RuntimeError(f"PayPal sandbox answered {response.status}: {response.data[:200]!r}")
    loaded: dict[str, Any] = json.loads(response.data)
    return loaded


def register_webhook(sandbox_url: str, client_id: str, client_secret: str, url: str) -> str:
    """What a developer does in PayPal's dashboard, through the REST API: returns the webhook id."""
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    token = _rest("POST", f"{sandbox_url}/v1/oauth2/token",
                  {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
                  b"grant_type=client_credentials")["access_token"]
    body = json.dumps({"url": url, "event_types": [{"name": name} for name in sorted(SUPPORTED_EVENTS)]}).encode()
    created = _rest("POST", f"{sandbox_url}/v1/notifications/webhooks",
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, body)
    return str(created["id"])


def provision(sandbox_url: str, *, account_id: str = "paypal-demo", priority: int = 100,
              webhook_verification: str = "certificate", merchant_id: str | None = None,
              currencies: tuple[str, ...] = PAYPAL_CURRENCIES, merchant_ids: tuple[str, ...] = (),
              brand_name: str = "Payhub Demo Store") -> ChannelAccountConfig:
    """Create an app at the sandbox, register the hub's webhook, store the account config and its secrets."""
    app = post_json(f"{sandbox_url}/_sandbox/merchants", {"merchant_id": merchant_id} if merchant_id else {})
    webhook_id = register_webhook(sandbox_url, app["client_id"], app["client_secret"],
                                  callback_url(settings().public_base_url, "paypal", account_id))
    config = ChannelAccountConfig(
        account_id=account_id, channel="paypal", priority=priority, methods=PAYPAL_METHODS, merchant_ids=merchant_ids,
        currencies=currencies, api_base_url=sandbox_url,
        settings={"merchant_id": app["merchant_id"], "webhook_id": webhook_id,
                  "webhook_verification": webhook_verification, "brand_name": brand_name},
    )
    config_repo.put_channel_account(config, {
        "client_id": app["client_id"], "client_secret": app["client_secret"],
        "webhook_cert_roots": app["cert_roots"], "webhook_certs": app["webhook_certs"],
    })
    return config
