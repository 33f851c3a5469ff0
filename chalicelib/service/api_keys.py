"""Merchant API keys as records of their own: several per merchant, rotated with an overlap, revoked at once.

  APIKEY#<sha256 of the key> / APIKEY    merchant_id, key_id, name, status (active | revoked), created_at,
                                         expires_at (set by a rotation), revoked_at (config table)

The key itself is shown once and never stored. ``rotate`` issues a new key and gives the old one an
``expires_at`` the operator chooses (the overlap during which the merchant deploys the new key); ``revoke``
ends a key now. Every change is written with its operator audit record in one transaction.

How fast a change reaches warm functions: ``authenticate`` keeps a key's record and its merchant's status
for ``Settings.auth_cache_ttl_s`` (2 s deployed) and reads them with consistent reads, so a revocation or a
suspension is refused everywhere within that time; an expiry is compared with the clock on every request.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from chalicelib.config.cache import TtlCache
from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from chalicelib.domain.models import Merchant
from chalicelib.domain.value_class import value_class
from chalicelib.service import audit
from chalicelib.storage import config_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item
from chalicelib.storage.config_repo import api_key_hash
from chalicelib.storage.transaction import Transaction, TransactionConflict

SK = "APIKEY"
MAX_LIVE_KEYS = 5  # per merchant: enough for a rotation in progress and a spare, few enough to review
MAX_OVERLAP_S = 30 * 24 * 3600
_auth_cache: TtlCache[Any] = TtlCache(ttl_s=settings().auth_cache_ttl_s)


@value_class
class NewApiKey:
    """A key just issued, with its secret (shown once)."""

    key: dict[str, Any]  # the public view of its record
    api_key: str  # shown once


def new_secret_key() -> str:
    return f"sk_{settings().stage}_{secrets.token_urlsafe(32)}"


def key_record(api_key: str, merchant_id: str, *, name: str, now: str) -> dict[str, Any]:
    digest = api_key_hash(api_key)
    return {"pk": f"APIKEY#{digest}", "sk": SK, "merchant_id": merchant_id, "key_id": _key_id(digest),
            "name": name, "status": "active", "created_at": now}


def _key_id(digest: str) -> str:
    return f"key_{digest[:20]}"


def _table() -> str:
    return settings().names.config_table


def public(record: dict[str, Any], now: str | None = None) -> dict[str, Any]:
    """What an operator may see of a key: never the key, never its hash (the id is a prefix of the hash, too
    short to test a guessed key against)."""
    now = now or iso(utcnow())
    status = record.get("status", "active")
    if status == "active" and record.get("expires_at") and record["expires_at"] <= now:
        status = "expired"
    return {"id": record.get("key_id") or _key_id(record["pk"].removeprefix("APIKEY#")), "object": "api_key",
            "merchant_id": record["merchant_id"], "name": record.get("name"), "status": status,
            "created_at": record.get("created_at"), "expires_at": record.get("expires_at"),
            "revoked_at": record.get("revoked_at"), "replaced_by": record.get("replaced_by")}


def usable(record: dict[str, Any] | None, now: str) -> bool:
    if record is None or record.get("status", "active") != "active":
        return False
    expires_at = record.get("expires_at")
    return not expires_at or now < expires_at


# --- authentication (every merchant request) -------------------------------------------------------------


def authenticate(key: str) -> Merchant:
    """The merchant whose live key this is, if that merchant is active. At most two consistent reads per
    key and merchant every ``auth_cache_ttl_s`` seconds on a warm function."""
    digest = api_key_hash(key)
    record = _auth_cache.get(f"key:{digest}", lambda: _get(f"APIKEY#{digest}"))
    if not usable(record, iso(utcnow())):
        raise AuthenticationFailed("invalid API key")
    merchant_id = record["merchant_id"]  # type: ignore[index]  # usable() ruled out None
    merchant = _auth_cache.get(f"merchant:{merchant_id}", lambda: config_repo.load_merchant(merchant_id,
                                                                                         consistent=True))
    if merchant is None or merchant.status != "active":
        raise AuthenticationFailed("invalid API key")
    return merchant  # type: ignore[no-any-return]


def _get(pk: str) -> dict[str, Any] | None:
    item = client("dynamodb").get_item(TableName=_table(), Key={"pk": {"S": pk}, "sk": {"S": SK}},
                                       ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def forget_cached() -> None:
    """Drop what this process cached (tests, and the CLI after its own change)."""
    _auth_cache.invalidate()


# --- lifecycle (operators) ---------------------------------------------------------------------------------


def _records(merchant_id: str) -> list[dict[str, Any]]:
    """A merchant's keys, oldest first: one filtered Scan of the config table (operators only, rarely)."""
    found: list[dict[str, Any]] = []
    for page in client("dynamodb").get_paginator("scan").paginate(
        TableName=_table(), FilterExpression="sk = :sk AND merchant_id = :m", ConsistentRead=True,
        ExpressionAttributeValues={":sk": {"S": SK}, ":m": {"S": merchant_id}},
    ):
        found += [from_item(raw) for raw in page.get("Items", [])]
    return sorted(found, key=lambda r: str(r.get("created_at", "")))


def _merchant(merchant_id: str) -> Merchant:
    merchant = config_repo.load_merchant(merchant_id, consistent=True)
    if merchant is None:
        raise NotFound(f"no merchant {merchant_id}", param="merchant_id")
    return merchant


def list_keys(merchant_id: str) -> list[dict[str, Any]]:
    _merchant(merchant_id)
    now = iso(utcnow())
    return [public(record, now) for record in _records(merchant_id)]


def _find(merchant_id: str, key_id: str) -> dict[str, Any]:
    for record in _records(merchant_id):
        if public(record)["id"] == key_id:
            return record
    raise NotFound(f"no API key {key_id} for merchant {merchant_id}", param="key_id")


def _check_name(name: str | None) -> str:
    name = (name or "").strip()
    if len(name) > 100:
        raise InvalidRequest("name must be at most 100 characters", param="name")
    return name


def _check_room(merchant_id: str, now: str) -> None:
    live = [r for r in _records(merchant_id) if usable(r, now)]
    if len(live) >= MAX_LIVE_KEYS:
        raise Conflict(f"merchant {merchant_id} already has {MAX_LIVE_KEYS} live API keys; revoke one first")


def create_key(actor: audit.Actor, merchant_id: str, *, name: str | None = None) -> NewApiKey:
    """An additional key for the merchant (the first one comes with the merchant)."""
    _merchant(merchant_id)
    name = _check_name(name)
    now = iso(utcnow())
    _check_room(merchant_id, now)
    api_key = new_secret_key()
    record = key_record(api_key, merchant_id, name=name, now=now)
    tx = Transaction()
    tx.put_new("key", _table(), record)
    audit.add(tx, actor, "api_key.create", merchant_id, after=public(record, now))
    tx.commit()
    return NewApiKey(public(record, now), api_key)


def rotate_key(actor: audit.Actor, merchant_id: str, key_id: str, *, overlap_s: int,
               name: str | None = None) -> tuple[NewApiKey, dict[str, Any]]:
    """A new key now; the old one keeps working for ``overlap_s`` seconds more, then stops by itself.

    Returns the new key and the old key's public view (with its ``expires_at``)."""
    if not 0 <= overlap_s <= MAX_OVERLAP_S:
        raise InvalidRequest(f"overlap_seconds must be between 0 and {MAX_OVERLAP_S}", param="overlap_seconds")
    _merchant(merchant_id)
    old = _find(merchant_id, key_id)
    moment = utcnow()
    now = iso(moment)
    if not usable(old, now):
        raise Conflict(f"API key {key_id} is {public(old, now)['status']}; only a live key can be rotated")
    _check_room(merchant_id, now)
    expires_at = iso(moment + timedelta(seconds=overlap_s))
    if old.get("expires_at") and old["expires_at"] < expires_at:
        expires_at = old["expires_at"]  # a rotation never extends a key's life
    api_key = new_secret_key()
    record = key_record(api_key, merchant_id, name=_check_name(name) or old.get("name", ""), now=now)
    after_old = {**old, "expires_at": expires_at, "replaced_by": record["key_id"]}
    tx = Transaction()
    tx.put_new("key", _table(), record)
    tx.update("old_key", _table(), {"pk": old["pk"], "sk": SK},
              {"expires_at": expires_at, "replaced_by": record["key_id"]},
              condition="#status = :active", condition_values={":active": "active"})
    audit.add(tx, actor, "api_key.rotate", merchant_id,
              before={"old_key": public(old, now)},
              after={"old_key": public(after_old, now), "new_key": public(record, now), "overlap_seconds": overlap_s})
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise Conflict(f"API key {key_id} was revoked meanwhile") from exc
    return NewApiKey(public(record, now), api_key), public(after_old, now)


def revoke_key(actor: audit.Actor, merchant_id: str, key_id: str) -> dict[str, Any]:
    """Ends the key now (every warm function refuses it within ``auth_cache_ttl_s``). Revoking twice is
    harmless and audited once."""
    _merchant(merchant_id)
    old = _find(merchant_id, key_id)
    now = iso(utcnow())
    if old.get("status", "active") == "revoked":
        return public(old, now)
    after = {**old, "status": "revoked", "revoked_at": now}
    tx = Transaction()
    tx.update("key", _table(), {"pk": old["pk"], "sk": SK}, {"status": "revoked", "revoked_at": now},
              condition="attribute_exists(pk) AND (attribute_not_exists(#status) OR #status <> :revoked)",
              condition_values={":revoked": "revoked"})
    audit.add(tx, actor, "api_key.revoke", merchant_id, before=public(old, now), after=public(after, now))
    try:
        tx.commit()
    except TransactionConflict:
        return public(_find(merchant_id, key_id), now)  # revoked by someone else meanwhile
    _auth_cache.invalidate(f"key:{old['pk'].removeprefix('APIKEY#')}")  # this process at once; others in the TTL
    return public(after, now)
