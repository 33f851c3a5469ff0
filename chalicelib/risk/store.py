"""Risk rule documents in the config table, one item per version, and the current one cached like all config.

  RISK_RULES / v<000042>   a version: the document as put, who put it, when (kept: the history of the rules)
  RISK_RULES / CURRENT     the version in force, with its document (one GetItem loads it)

Putting a document writes the new version and moves CURRENT in one transaction, conditional on CURRENT still
being the version the writer read, so two operators cannot both make "version 7". Warm functions see the new
version within the config cache time (``PAYHUB_SECRETS_TTL_S``, 60 s deployed) and compile it once.
Provider credentials are not in the document: they are the secret ``payhub/<stage>/risk/providers``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.config.cache import TtlCache
from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.value_class import value_class
from chalicelib.risk.compiled import CompiledDocument, compiled_for
from chalicelib.risk.rules import RuleDocument, parse_document
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.transaction import Transaction, TransactionConflict

PK = "RISK_RULES"
_cache: TtlCache[Any] = TtlCache(ttl_s=settings().secrets_ttl_s)
_EMPTY = (0, RuleDocument())


class RulesChanged(Exception):
    """Another operator put a version meanwhile; read it and put again."""


@value_class
class Version:
    """One stored version of the rule document and who put it."""

    version: int
    document: dict[str, Any]
    put_by: str
    put_at: str


def _table() -> str:
    return settings().names.config_table


def current_raw() -> Version | None:
    item = client("dynamodb").get_item(TableName=_table(), Key=to_item({"pk": PK, "sk": "CURRENT"}),
                                       ConsistentRead=True).get("Item")
    if not item:
        return None
    values = from_item(item)
    return Version(int(values["version"]), json.loads(values["document"]), values["put_by"], values["put_at"])


def put_document(raw: dict[str, Any], *, put_by: str, audit: Callable[[Transaction, int, int], object] | None = None
                 ) -> int:
    """Validate (and compile) ``raw`` and make it the next version; returns its number. ``audit(tx, old, new)``
    adds the operator's audit record to the same transaction."""
    parse_document(raw)
    current = current_raw()
    version = (current.version if current else 0) + 1
    stamp = iso(utcnow())
    body = {"version": version, "document": json.dumps(raw, ensure_ascii=False, sort_keys=True), "put_by": put_by,
            "put_at": stamp}
    tx = Transaction()
    tx.put_new("version", _table(), {"pk": PK, "sk": f"v{version:06d}", **body})
    if current is None:
        tx.put_new("current", _table(), {"pk": PK, "sk": "CURRENT", **body})
    else:
        tx.update("current", _table(), {"pk": PK, "sk": "CURRENT"}, body, condition="version = :seen",
                  condition_values={":seen": current.version})
    if audit is not None:
        audit(tx, version - 1, version)
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise RulesChanged(f"rules moved to a newer version meanwhile (was {version - 1})") from exc
    _cache.invalidate()
    return version


def get_version(version: int) -> Version | None:
    item = client("dynamodb").get_item(TableName=_table(), Key=to_item({"pk": PK, "sk": f"v{version:06d}"})).get("Item")
    if not item:
        return None
    values = from_item(item)
    return Version(int(values["version"]), json.loads(values["document"]), values["put_by"], values["put_at"])


def _load() -> tuple[int, RuleDocument]:
    current = current_raw()
    if current is None:
        return _EMPTY
    return current.version, parse_document(current.document, check_expressions=False)


def active() -> CompiledDocument:
    """The rules in force: at most one GetItem per cache period, one compilation per version."""
    version, document = _cache.get("rules", _load)
    return compiled_for(version, document)


def invalidate_cache() -> None:
    _cache.invalidate()
