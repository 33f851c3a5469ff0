"""Merchants, their API keys and channel accounts (config table) plus their secrets (Secrets Manager).

  MERCHANT#<id>     / PROFILE     the merchant
  APIKEY#<sha256>   / APIKEY      API key hash -> merchant (the key itself is never stored)
  CHANNEL_ACCOUNTS  / <id>        a channel account's validated config document (one partition: routing
                                  reads them all with one Query, a callback reads one with one GetItem)
Secrets live under per-stage names (``payhub/<stage>/...``) and are cached with a short TTL, so a rotated
key is picked up within a minute without a deploy.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.config.cache import TtlCache
from chalicelib.config.secret import Secret
from chalicelib.config.settings import settings
from chalicelib.domain.models import Merchant
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item

_cache: TtlCache[Any] = TtlCache(ttl_s=settings().secrets_ttl_s)
_ACCOUNTS_PK = "CHANNEL_ACCOUNTS"


def _table() -> str:
    return settings().names.config_table


def api_key_hash(api_key: str) -> str:
    # API keys are 32 random bytes, so a plain SHA-256 cannot be brute-forced; no salt or KDF needed.
    return hashlib.sha256(api_key.encode()).hexdigest()


def _get(pk: str, sk: str) -> dict[str, Any] | None:
    item = client("dynamodb").get_item(TableName=_table(), Key=to_item({"pk": pk, "sk": sk})).get("Item")
    return from_item(item) if item else None


def put_merchant(merchant: Merchant, api_key: str, webhook_secret: str) -> None:
    """Create a merchant with its first API key; refuses to overwrite an existing merchant."""
    client("dynamodb").transact_write_items(TransactItems=[
        {"Put": {"TableName": _table(), "ConditionExpression": "attribute_not_exists(pk)", "Item": to_item({
            "pk": f"MERCHANT#{merchant.merchant_id}", "sk": "PROFILE", "merchant_id": merchant.merchant_id,
            "name": merchant.name, "late_success_policy": merchant.late_success_policy,
            "webhook_url": merchant.webhook_url, "status": merchant.status,
        })}},
        {"Put": {"TableName": _table(), "ConditionExpression": "attribute_not_exists(pk)", "Item": to_item({
            "pk": f"APIKEY#{api_key_hash(api_key)}", "sk": "APIKEY", "merchant_id": merchant.merchant_id,
        })}},
    ])
    put_secret(settings().names.merchant_webhook_secret(merchant.merchant_id), {"webhook_secret": webhook_secret})


def merchant_for_api_key(api_key: str) -> Merchant | None:
    digest = api_key_hash(api_key)

    def load() -> Merchant | None:
        link = _get(f"APIKEY#{digest}", "APIKEY")
        return get_merchant(link["merchant_id"]) if link else None

    return _cache.get(f"apikey:{digest}", load)


def get_merchant(merchant_id: str) -> Merchant | None:
    """Cached like the rest of the config: a changed setting (late_success_policy) applies within the TTL."""
    return _cache.get(f"merchant:{merchant_id}", lambda: _load_merchant(merchant_id))


def _load_merchant(merchant_id: str) -> Merchant | None:
    item = _get(f"MERCHANT#{merchant_id}", "PROFILE")
    return _merchant_from(item) if item else None


def _merchant_from(item: dict[str, Any]) -> Merchant:
    return Merchant(
        merchant_id=item["merchant_id"], name=item["name"],
        late_success_policy=item.get("late_success_policy", "refund"),
        webhook_url=item.get("webhook_url"), status=item.get("status", "active"),
    )


def list_merchants() -> list[Merchant]:
    """Operator listing (CLI only): one filtered Scan; the profiles come back whole, no read per merchant."""
    merchants = []
    for page in client("dynamodb").get_paginator("scan").paginate(
        TableName=_table(), FilterExpression="sk = :sk", ExpressionAttributeValues={":sk": {"S": "PROFILE"}},
    ):
        merchants += [_merchant_from(from_item(raw)) for raw in page.get("Items", [])]
    return merchants


def webhook_secret(merchant_id: str) -> Secret:
    name = settings().names.merchant_webhook_secret(merchant_id)
    values = _cache.get(f"secret:{name}", lambda: get_secret(name))
    return Secret(values["webhook_secret"])


# --- channel accounts ---------------------------------------------------------------------------------


def put_channel_account(config: ChannelAccountConfig, secrets: dict[str, Any] | None) -> None:
    """Store the document, and its secrets when given. Secrets first: a document never points at nothing."""
    if secrets is not None:
        put_secret(settings().names.channel_secret(config.account_id), secrets)
    client("dynamodb").put_item(TableName=_table(), Item=to_item({
        "pk": _ACCOUNTS_PK, "sk": config.account_id, "document": config.model_dump_json(),
        "channel": config.channel,
    }))
    _cache.invalidate()


def list_channel_accounts() -> list[ChannelAccountConfig]:
    def load() -> list[ChannelAccountConfig]:
        found = []
        for page in client("dynamodb").get_paginator("query").paginate(
            TableName=_table(), KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": _ACCOUNTS_PK}},
        ):
            found += [ChannelAccountConfig.model_validate_json(from_item(i)["document"]) for i in page["Items"]]
        return sorted(found, key=lambda c: (c.priority, c.account_id))

    return list(_cache.get("accounts", load))


def channel_account(account_id: str) -> ChannelAccount | None:
    """One account by id: a single GetItem (callbacks and workers need exactly one), cached with its secrets."""

    def load() -> ChannelAccountConfig | None:
        item = _get(_ACCOUNTS_PK, account_id)
        return ChannelAccountConfig.model_validate_json(item["document"]) if item else None

    config = _cache.get(f"account:{account_id}", load)
    if config is None:
        return None
    name = settings().names.channel_secret(account_id)
    return ChannelAccount(config, ChannelSecrets(_cache.get(f"secret:{name}", lambda: get_secret(name))))


# --- Secrets Manager ----------------------------------------------------------------------------------


def put_secret(name: str, values: dict[str, Any]) -> None:
    sm = client("secretsmanager")
    payload = json.dumps(values)
    try:
        sm.put_secret_value(SecretId=name, SecretString=payload)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        sm.create_secret(Name=name, SecretString=payload)
    _cache.invalidate(f"secret:{name}")


def get_secret(name: str) -> dict[str, Any]:
    try:
        value = client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    except ClientError as exc:
        raise KeyError(f"secret {name} is not readable: {exc.response['Error']['Code']}") from exc
    loaded: dict[str, Any] = json.loads(value)
    return loaded


def invalidate_cache() -> None:
    _cache.invalidate()
