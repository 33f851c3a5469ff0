"""Merchants, their API keys and channel accounts (config table) plus their secrets (Secrets Manager).

  MERCHANT#<id>     / PROFILE     the merchant
  APIKEY#<sha256>   / APIKEY      an API key's record: hash -> merchant, status, expiry (service/api_keys.py)
  OPERATOR_AUDIT    / aud_...     operator actions (service/audit.py)
  CHANNEL_ACCOUNTS  / <id>        a channel account's validated config document (one partition: routing
                                  reads them all with one Query, a callback reads one with one GetItem)
  ROUTING#<merchant> / CURRENT    the merchant's routing rules in force (version + document: one GetItem)
  ROUTING#<merchant> / V#<n>      every version ever put, kept for history and rollback (chalicelib/routing)
  PAYMENT_METHODS   / <method>    a payment method defined by configuration (chalicelib/routing/methods.py)
Secrets live under per-stage names (``payhub/<stage>/...``) and are cached with a short TTL, so a rotated
key is picked up within a minute without a deploy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.config.cache import TtlCache
from chalicelib.config.secret import Secret
from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.models import Merchant
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.transaction import Transaction

# The channel-account, routing and method classes are imported inside the functions that read them, so what reads
# only merchants and secrets here (the webhook worker, the sweeps) does not load their validators.
if TYPE_CHECKING:
    from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig
    from chalicelib.routing.method_definition import MethodDefinition
    from chalicelib.routing.rules import RoutingRules, StoredRouting

_cache: TtlCache[Any] = TtlCache(ttl_s=settings().secrets_ttl_s)
_ACCOUNTS_PK = "CHANNEL_ACCOUNTS"
_METHODS_PK = "PAYMENT_METHODS"


def _table() -> str:
    return settings().names.config_table


def api_key_hash(api_key: str) -> str:
    # API keys are 32 random bytes, so a plain SHA-256 cannot be brute-forced; no salt or KDF needed.
    return hashlib.sha256(api_key.encode()).hexdigest()


def _get(pk: str, sk: str) -> dict[str, Any] | None:
    item = client("dynamodb").get_item(TableName=_table(), Key=to_item({"pk": pk, "sk": sk})).get("Item")
    return from_item(item) if item else None


def put_merchant(merchant: Merchant, key_record: dict[str, Any], webhook_secret: str,
                 audit_item: Callable[[Transaction], object] | None = None) -> None:
    """Create a merchant with its first API key (and its audit record); refuses to overwrite a merchant.

    The webhook secret goes first: a merchant never exists without one."""
    put_secret(settings().names.merchant_webhook_secret(merchant.merchant_id), {"webhook_secret": webhook_secret})
    tx = Transaction()
    tx.put_new("merchant", _table(), {
        "pk": f"MERCHANT#{merchant.merchant_id}", "sk": "PROFILE", "merchant_id": merchant.merchant_id,
        "name": merchant.name, "late_success_policy": merchant.late_success_policy,
        "webhook_url": merchant.webhook_url, "status": merchant.status,
    })
    tx.put_new("key", _table(), key_record)
    if audit_item:
        audit_item(tx)
    tx.commit()


def set_merchant_status(merchant_id: str, status: str, expected: str, audit_item: Callable[[Transaction], object]) -> None:
    """Change a merchant's status if it is still ``expected``, with the audit record, in one transaction."""
    tx = Transaction()
    tx.update("merchant", _table(), {"pk": f"MERCHANT#{merchant_id}", "sk": "PROFILE"}, {"status": status},
              condition="attribute_exists(pk) AND (#status = :expected OR attribute_not_exists(#status))",
              condition_values={":expected": expected})
    audit_item(tx)
    tx.commit()
    _cache.invalidate(f"merchant:{merchant_id}")


def get_merchant(merchant_id: str) -> Merchant | None:
    """Cached like the rest of the config: a changed setting (late_success_policy) applies within the TTL.
    Authentication does not use this: it reads the status through its own short cache (service/api_keys.py)."""
    return _cache.get(f"merchant:{merchant_id}", lambda: load_merchant(merchant_id))


def load_merchant(merchant_id: str, *, consistent: bool = False) -> Merchant | None:
    item = client("dynamodb").get_item(TableName=_table(), ConsistentRead=consistent, Key=to_item(
        {"pk": f"MERCHANT#{merchant_id}", "sk": "PROFILE"})).get("Item")
    return _merchant_from(from_item(item)) if item else None


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


def webhook_secrets(merchant_id: str) -> list[Secret]:
    """The secrets a delivery is signed with: the current one first, then each previous one still inside its
    rotation overlap. The expiry is compared on every call, so an overlap ends on time even while cached."""
    name = settings().names.merchant_webhook_secret(merchant_id)
    values = _cache.get(f"secret:{name}", lambda: get_secret(name))
    now = iso(utcnow())
    return [Secret(values["webhook_secret"])] + [
        Secret(old["webhook_secret"]) for old in values.get("previous", []) if now < old["expires_at"]]


def webhook_secret(merchant_id: str) -> Secret:
    """The current webhook secret (what a merchant created today verifies with)."""
    return webhook_secrets(merchant_id)[0]


def rotate_webhook_secret(merchant_id: str, new_secret: str, overlap_s: int) -> str:
    """Make ``new_secret`` current; the current one stays valid (deliveries carry both signatures) for
    ``overlap_s`` seconds. Previous secrets whose overlap is over are dropped, and all of them when ``overlap_s``
    is 0. Returns the old one's expiry (now, without overlap)."""
    name = settings().names.merchant_webhook_secret(merchant_id)
    values = get_secret(name)
    moment = utcnow()
    now, expires_at = iso(moment), iso(moment + timedelta(seconds=overlap_s))
    # No overlap means "replace now" (a leaked secret): every older secret ends with it.
    previous = [old for old in values.get("previous", []) if now < old["expires_at"]] if overlap_s > 0 else []
    if overlap_s > 0:
        previous.insert(0, {"webhook_secret": values["webhook_secret"], "expires_at": expires_at})
    put_secret(name, {"webhook_secret": new_secret, "previous": previous})
    return expires_at


# --- channel accounts ---------------------------------------------------------------------------------


def put_channel_account(config: ChannelAccountConfig, secrets: dict[str, Any] | None,
                        audit_item: Callable[[Transaction], object] | None = None) -> None:
    """Store the document, and its secrets when given. Secrets first: a document never points at nothing.
    The document and its audit record are written in one transaction."""
    if secrets is not None:
        put_secret(settings().names.channel_secret(config.account_id), secrets)
    tx = Transaction()
    tx.put("account", _table(), {
        "pk": _ACCOUNTS_PK, "sk": config.account_id, "document": config.model_dump_json(),
        "channel": config.channel,
    })
    if audit_item:
        audit_item(tx)
    tx.commit()
    _cache.invalidate()


def channel_account_document(account_id: str) -> dict[str, Any] | None:
    """The stored document as it is now (uncached): what an operator change replaces."""
    item = _get(_ACCOUNTS_PK, account_id)
    loaded: dict[str, Any] | None = json.loads(item["document"]) if item else None
    return loaded


def list_channel_accounts() -> list[ChannelAccountConfig]:
    from chalicelib.config.accounts import ChannelAccountConfig

    def load() -> list[ChannelAccountConfig]:
        found = []
        for page in client("dynamodb").get_paginator("query").paginate(
            TableName=_table(), KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": _ACCOUNTS_PK}},
        ):
            found += [ChannelAccountConfig.model_validate_json(from_item(i)["document"]) for i in page["Items"]]
        return sorted(found, key=lambda c: (c.priority, c.account_id))

    return list(_cache.get("accounts", load))


def channel_account_config(account_id: str) -> ChannelAccountConfig | None:
    """One account's document by id, without its secrets (a single GetItem, cached): for what needs its settings
    only (the fee schedule a capture books from, a report's channel), and so no channel key."""
    from chalicelib.config.accounts import ChannelAccountConfig

    def load() -> ChannelAccountConfig | None:
        item = _get(_ACCOUNTS_PK, account_id)
        return ChannelAccountConfig.model_validate_json(item["document"]) if item else None

    found: ChannelAccountConfig | None = _cache.get(f"account:{account_id}", load)
    return found


def channel_account(account_id: str) -> ChannelAccount | None:
    """One account by id: a single GetItem (callbacks and workers need exactly one), cached with its secrets."""
    from chalicelib.config.accounts import ChannelAccount, ChannelSecrets

    config = channel_account_config(account_id)
    if config is None:
        return None
    name = settings().names.channel_secret(account_id)
    return ChannelAccount(config, ChannelSecrets(_cache.get(f"secret:{name}", lambda: get_secret(name))))


# --- routing rules and configured methods (chalicelib/routing) -----------------------------------------


def put_routing(merchant_id: str, rules: RoutingRules, audit_item: Callable[[Transaction], object] | None = None,
                ) -> StoredRouting:
    """Store ``rules`` as the merchant's next version and make it current, in one transaction that fails if
    another writer got there first (two operators never both think their version is in force)."""
    from chalicelib.routing.rules import StoredRouting

    current = _get_consistent(f"ROUTING#{merchant_id}", "CURRENT")
    version = int(current["version"]) + 1 if current else 1
    stored = StoredRouting(merchant_id=merchant_id, version=version, created_at=iso(utcnow()), rules=rules)
    document = stored.model_dump_json()
    tx = Transaction()
    tx.put_new("version", _table(), {"pk": f"ROUTING#{merchant_id}", "sk": f"V#{version:08d}", "document": document})
    if current:
        tx.update("current", _table(), {"pk": f"ROUTING#{merchant_id}", "sk": "CURRENT"},
                  {"version": version, "document": document},
                  condition="version = :seen", condition_values={":seen": current["version"]})
    else:
        tx.put_new("current", _table(), {"pk": f"ROUTING#{merchant_id}", "sk": "CURRENT", "version": version,
                                         "document": document})
    if audit_item:
        audit_item(tx)
    tx.commit()
    _cache.invalidate(f"routing:{merchant_id}")
    return stored


def routing(merchant_id: str) -> StoredRouting | None:
    """The merchant's rules in force, cached like every other configuration (live within the cache time)."""
    from chalicelib.routing.rules import StoredRouting

    def load() -> StoredRouting | None:
        item = _get(f"ROUTING#{merchant_id}", "CURRENT")
        return StoredRouting.model_validate_json(item["document"]) if item else None

    found: StoredRouting | None = _cache.get(f"routing:{merchant_id}", load)
    return found


def routing_versions(merchant_id: str) -> list[StoredRouting]:
    from chalicelib.routing.rules import StoredRouting

    found = []
    for page in client("dynamodb").get_paginator("query").paginate(
        TableName=_table(), KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
        ExpressionAttributeValues={":pk": {"S": f"ROUTING#{merchant_id}"}, ":v": {"S": "V#"}},
    ):
        found += [StoredRouting.model_validate_json(from_item(i)["document"]) for i in page["Items"]]
    return found


def put_method_definition(definition: MethodDefinition,
                          audit_item: Callable[[Transaction], object] | None = None) -> None:
    tx = Transaction()
    tx.put("method", _table(), {"pk": _METHODS_PK, "sk": definition.method, "document": definition.model_dump_json()})
    if audit_item:
        audit_item(tx)
    tx.commit()
    _cache.invalidate("methods")


def list_method_definitions() -> list[MethodDefinition]:
    from chalicelib.routing.method_definition import MethodDefinition

    def load() -> list[MethodDefinition]:
        found = []
        for page in client("dynamodb").get_paginator("query").paginate(
            TableName=_table(), KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": _METHODS_PK}},
        ):
            found += [MethodDefinition.model_validate_json(from_item(i)["document"]) for i in page["Items"]]
        return found

    return list(_cache.get("methods", load))


def _get_consistent(pk: str, sk: str) -> dict[str, Any] | None:
    item = client("dynamodb").get_item(TableName=_table(), ConsistentRead=True,
                                       Key=to_item({"pk": pk, "sk": sk})).get("Item")
    return from_item(item) if item else None


# --- Secrets Manager ----------------------------------------------------------------------------------


def put_secret(name: str, values: dict[str, Any]) -> None:
    sm = client("secretsmanager")
    payload = json.dumps(values)
    try:
        sm.put_secret_value(SecretId=name, SecretString=payload)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        # Under the stage's own key, not the AWS-managed one: the roles that read secrets are granted decrypt
        # on that key (infra/stack.py), and revoking it revokes every secret of the stage at once.
        sm.create_secret(Name=name, SecretString=payload, KmsKeyId=settings().names.kms_alias)
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
