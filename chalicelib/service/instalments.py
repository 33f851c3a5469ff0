"""Instalment fee tables in configuration, and what a payment's instalments become.

  INSTALMENTS#<channel> / DEFAULT          the channel's fee table (config table)
  INSTALMENTS#<channel> / MERCHANT#<m>     one merchant's own table on that channel, replacing the default

A table is read through the configuration cache (live within its TTL, like routing rules and accounts); putting
one invalidates this process's copy and is audited in the transaction that writes it. Without a table a channel
offers no instalments (docs/instalments.md).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.config.cache import TtlCache
from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import InvalidRequest, NotFound
from chalicelib.domain.instalments import INSTALMENT_METHODS, FeeTable, InstalmentRefused, Schedule, schedule
from chalicelib.service import audit
from chalicelib.storage import config_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.transaction import Transaction

_cache: TtlCache[FeeTable | None] = TtlCache(ttl_s=settings().secrets_ttl_s)
_SCOPE_DEFAULT = "DEFAULT"


def _table() -> str:
    return settings().names.config_table


def _key(channel: str, merchant_id: str | None) -> dict[str, str]:
    return {"pk": f"INSTALMENTS#{channel}", "sk": f"MERCHANT#{merchant_id}" if merchant_id else _SCOPE_DEFAULT}


def _load(channel: str, merchant_id: str | None, *, consistent: bool = False) -> FeeTable | None:
    item = client("dynamodb").get_item(TableName=_table(), Key=to_item(_key(channel, merchant_id)),
                                       ConsistentRead=consistent).get("Item")
    return FeeTable.from_document(json.loads(from_item(item)["document"])) if item else None


def _cached(channel: str, merchant_id: str | None) -> FeeTable | None:
    return _cache.get(f"{channel}:{merchant_id or ''}", lambda: _load(channel, merchant_id))


def table_for(channel: str, merchant_id: str) -> FeeTable | None:
    """The fee table in force for ``merchant_id`` on ``channel``: its own, else the channel's default, else none."""
    return _cached(channel, merchant_id) or _cached(channel, None)


def put_table(actor: audit.Actor, document: dict[str, Any], *, merchant_id: str | None = None) -> dict[str, Any]:
    """Put a channel's default fee table, or one merchant's (``merchant_id``). Validated (the field at fault is
    named), audited with the table it replaces."""
    try:
        table = FeeTable.from_document(document)
    except InstalmentRefused as exc:
        raise InvalidRequest(exc.message, param=exc.param) from exc
    if merchant_id is not None and config_repo.load_merchant(merchant_id, consistent=True) is None:
        raise NotFound(f"no merchant {merchant_id}", param="merchant_id")
    before = _load(table.channel, merchant_id, consistent=True)
    tx = Transaction()
    tx.put("table", _table(), {**_key(table.channel, merchant_id), "document": json.dumps(table.document()),
                               "updated_at": iso(utcnow())})
    target = f"{table.channel}:{merchant_id}" if merchant_id else f"{table.channel}:default"
    audit.add(tx, actor, "instalments.put", target, before=before.document() if before else None,
              after=table.document())
    tx.commit()
    _cache.invalidate(f"{table.channel}:{merchant_id or ''}")
    return {"scope": merchant_id or "default", **table.document()}


def show_table(channel: str, merchant_id: str | None = None) -> dict[str, Any]:
    table = _load(channel, merchant_id, consistent=True)
    if table is None:
        raise NotFound(f"no instalment fee table for {channel} ({merchant_id or 'default'})", param="channel")
    return {"scope": merchant_id or "default", **table.document()}


def plan(merchant_id: str, method: str, amount: int, currency: str, count: int, fee_payer: str) -> Schedule:
    """The schedule a payment's ``instalments`` ask for, or a 400 naming the field: a method whose channel takes no
    instalments, a channel without a fee table for this merchant, a term not offered, an amount below its minimum."""
    channel = INSTALMENT_METHODS.get(method)
    if channel is None:
        raise InvalidRequest(f"{method} payments cannot be paid by instalments", param="instalments")
    if currency != "CNY":
        raise InvalidRequest("instalments are offered in CNY only", param="currency")
    table = table_for(channel, merchant_id)
    if table is None:
        raise InvalidRequest(f"instalments are not offered on {channel} for this merchant", param="instalments")
    try:
        return schedule(table, amount, count, fee_payer)
    except InstalmentRefused as exc:
        raise InvalidRequest(exc.message, param=exc.param) from exc


def offered(merchant_id: str, method: str, amount: int, currency: str) -> list[Schedule]:
    """The buyer-paid terms the checkout page may offer for ``method`` (none when the channel has no table)."""
    from chalicelib.domain.instalments import offers

    channel = INSTALMENT_METHODS.get(method)
    if channel is None or currency != "CNY":
        return []
    return offers(table_for(channel, merchant_id), amount)
