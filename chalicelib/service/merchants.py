"""Merchants: onboarding (an id, a first API key shown once, a Standard Webhooks secret), suspension, and the
rotation of the webhook secret. Every operator change is audited in the transaction that makes it."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from chalicelib.domain.ids import new_id
from chalicelib.domain.models import Merchant
from chalicelib.domain.value_class import value_class
from chalicelib.service import api_keys, audit
from chalicelib.service.webhook_targets import check_notify_url
from chalicelib.storage import config_repo
from chalicelib.storage.transaction import TransactionConflict

MAX_WEBHOOK_OVERLAP_S = 30 * 24 * 3600


@value_class
class NewMerchant:
    """A merchant just created, with its credentials (shown once)."""

    merchant: Merchant
    api_key: str  # shown once; only its hash is stored
    webhook_secret: str


def public(merchant: Merchant) -> dict[str, Any]:
    return {"id": merchant.merchant_id, "object": "merchant", "name": merchant.name, "status": merchant.status,
            "late_success_policy": merchant.late_success_policy, "webhook_url": merchant.webhook_url}


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_merchant(name: str, *, webhook_url: str | None = None, late_success_policy: str = "refund",
                    merchant_id: str | None = None, actor: audit.Actor | None = None) -> NewMerchant:
    if late_success_policy not in ("accept", "refund"):
        raise InvalidRequest("late_success_policy must be accept or refund", param="late_success_policy")
    if webhook_url:
        check_notify_url(webhook_url, param="webhook_url")
    merchant = Merchant(merchant_id=merchant_id or new_id("mch"), name=name,
                        late_success_policy=late_success_policy, webhook_url=webhook_url)
    api_key = api_keys.new_secret_key()
    webhook_secret = new_webhook_secret()
    record = api_keys.key_record(api_key, merchant.merchant_id, name="initial", now=iso(utcnow()))
    who = actor or audit.Actor.cli()
    config_repo.put_merchant(merchant, record, webhook_secret, audit_item=lambda tx: audit.add(
        tx, who, "merchant.create", merchant.merchant_id,
        after={"merchant": public(merchant), "api_key": api_keys.public(record)}))
    return NewMerchant(merchant, api_key, webhook_secret)


def authenticate(authorization: str | None) -> Merchant:
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthenticationFailed("send your secret key as 'Authorization: Bearer sk_...'")
    key = authorization[len("Bearer "):].strip()
    # Keys are per stage: a dev key can never authenticate against prod, even if the hash matched.
    if not key.startswith(f"sk_{settings().stage}_"):
        raise AuthenticationFailed("invalid API key")
    return api_keys.authenticate(key)


def _existing(merchant_id: str) -> Merchant:
    merchant = config_repo.load_merchant(merchant_id, consistent=True)
    if merchant is None:
        raise NotFound(f"no merchant {merchant_id}", param="merchant_id")
    return merchant


def set_status(actor: audit.Actor, merchant_id: str, status: str) -> dict[str, Any]:
    """Suspend (``suspended``) or reactivate (``active``) a merchant. A suspended merchant's keys are refused
    by every warm function within ``auth_cache_ttl_s``; its webhooks already queued are still delivered."""
    if status not in ("active", "suspended"):
        raise InvalidRequest("status must be active or suspended", param="status")
    merchant = _existing(merchant_id)
    if merchant.status == status:
        return public(merchant)
    changed = Merchant(**{**merchant.__dict__, "status": status})
    try:
        config_repo.set_merchant_status(merchant_id, status, merchant.status, lambda tx: audit.add(
            tx, actor, "merchant.suspend" if status == "suspended" else "merchant.reactivate", merchant_id,
            before={"status": merchant.status}, after={"status": status}))
    except TransactionConflict as exc:
        raise Conflict(f"merchant {merchant_id} changed meanwhile; read it and try again") from exc
    api_keys.forget_cached()
    return public(changed)


def rotate_webhook_secret(actor: audit.Actor, merchant_id: str, *, overlap_s: int) -> dict[str, Any]:
    """A new webhook secret, shown once. For ``overlap_s`` seconds every delivery carries a signature with
    each secret (Standard Webhooks allows several), so the merchant can switch whenever it likes."""
    if not 0 <= overlap_s <= MAX_WEBHOOK_OVERLAP_S:
        raise InvalidRequest(f"overlap_seconds must be between 0 and {MAX_WEBHOOK_OVERLAP_S}",
                             param="overlap_seconds")
    _existing(merchant_id)
    secret = new_webhook_secret()
    previous_expires_at = config_repo.rotate_webhook_secret(merchant_id, secret, overlap_s)
    # Secrets Manager takes no part in a DynamoDB transaction: the record follows the rotation it describes.
    audit.record(actor, "webhook_secret.rotate", merchant_id,
                 after={"overlap_seconds": overlap_s, "previous_expires_at": previous_expires_at})
    return {"merchant_id": merchant_id, "webhook_secret": secret, "previous_expires_at": previous_expires_at}
