"""Onboarding merchants: an id, an API key shown once, and a Standard Webhooks secret."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from chalicelib.config.settings import settings
from chalicelib.domain.errors import AuthenticationFailed, InvalidRequest
from chalicelib.domain.ids import new_id
from chalicelib.domain.models import Merchant
from chalicelib.service.webhook_targets import check_notify_url
from chalicelib.storage import config_repo


@dataclass(frozen=True)
class NewMerchant:
    merchant: Merchant
    api_key: str  # shown once; only its hash is stored
    webhook_secret: str


def create_merchant(name: str, *, webhook_url: str | None = None, late_success_policy: str = "refund",
                    merchant_id: str | None = None) -> NewMerchant:
    if late_success_policy not in ("accept", "refund"):
        raise InvalidRequest("late_success_policy must be accept or refund", param="late_success_policy")
    if webhook_url:
        check_notify_url(webhook_url, param="webhook_url")
    merchant = Merchant(merchant_id=merchant_id or new_id("mch"), name=name,
                        late_success_policy=late_success_policy, webhook_url=webhook_url)
    api_key = f"sk_{settings().stage}_{secrets.token_urlsafe(32)}"
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    config_repo.put_merchant(merchant, api_key, webhook_secret)
    return NewMerchant(merchant, api_key, webhook_secret)


def authenticate(authorization: str | None) -> Merchant:
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthenticationFailed("send your secret key as 'Authorization: Bearer sk_...'")
    key = authorization[len("Bearer "):].strip()
    # Keys are per stage: a dev key can never authenticate against prod, even if the hash matched.
    if not key.startswith(f"sk_{settings().stage}_"):
        raise AuthenticationFailed("invalid API key")
    merchant = config_repo.merchant_for_api_key(key)
    if merchant is None or merchant.status != "active":
        raise AuthenticationFailed("invalid API key")
    return merchant
