"""Rate snapshots: put by an operator (audited) or loaded from a rates file, kept append-only, and locked by a
payment presented in one currency and settled in another.

  FX#<pair> / <as_of>#<rate_id>    one snapshot (config table): rate, source, as_of, valid_until, who put it

A snapshot is never changed or deleted: a payment that locked it can always show where its rate came from.
"Latest valid" is the newest ``as_of`` not in the future whose ``valid_until`` has not passed; an older snapshot
still valid is used only when every newer one has expired (an operator publishing a short-lived correction).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain import fx
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import FxRateUnavailable, InvalidRequest
from chalicelib.domain.fx import FxError, Locked, RateSnapshot
from chalicelib.domain.ids import new_id
from chalicelib.domain.money import Money
from chalicelib.service import audit
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.transaction import Transaction

log = logging.getLogger(__name__)
MAX_VALID_MINUTES = 7 * 24 * 60  # a rate older than a week is not a rate
SCAN_LIMIT = 50  # snapshots read newest first when looking for a valid one


def _table() -> str:
    return settings().names.config_table


def put_rate(actor: audit.Actor, pair: str, rate: str, source: str, valid_minutes: int, *,
             as_of: datetime | None = None) -> dict[str, Any]:
    """Store a new snapshot, valid from ``as_of`` (now) for ``valid_minutes``, with its audit record in the same
    transaction. Every refusal names its field."""
    if not isinstance(valid_minutes, int) or isinstance(valid_minutes, bool) or not 1 <= valid_minutes <= MAX_VALID_MINUTES:
        raise InvalidRequest(f"valid_minutes must be an integer from 1 to {MAX_VALID_MINUTES}", param="valid_minutes")
    moment = as_of or utcnow()
    try:
        canonical = format(fx.parse_rate(rate).normalize(), "f")
        snapshot = RateSnapshot(rate_id=new_id("fxr"), pair=pair, rate=canonical, source=source, as_of=iso(moment),
                                valid_until=iso(moment + timedelta(minutes=valid_minutes)))
    except FxError as exc:
        raise InvalidRequest(str(exc), param=exc.field) from exc
    tx = Transaction()
    tx.put_new("rate", _table(), {"pk": f"FX#{snapshot.pair}", "sk": f"{snapshot.as_of}#{snapshot.rate_id}",
                                  **snapshot.record(), "put_by": actor.as_record()})
    audit.add(tx, actor, "fx.put_rate", snapshot.pair, after=snapshot.record())
    tx.commit()
    log.info("rate %s %s = %s from %s, valid until %s", snapshot.rate_id, snapshot.pair, snapshot.rate,
             snapshot.source, snapshot.valid_until)
    return snapshot.record()


def load_rates(actor: audit.Actor, document: str) -> list[dict[str, Any]]:
    """A rates file (JSON: ``{"source": ..., "valid_minutes": N, "rates": {"USDCNY": "7.1234", ...}}``, as a
    treasury desk or a published reference rate exports it) put as one snapshot per pair, each audited. The whole
    file is checked before anything is stored."""
    try:
        loaded = json.loads(document)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"rates file is not JSON: {exc.msg}", param="file") from exc
    if not isinstance(loaded, dict) or not isinstance(loaded.get("rates"), dict) or not loaded["rates"]:
        raise InvalidRequest("rates file needs a non-empty 'rates' object of pair -> rate", param="rates")
    try:
        source = fx.check_source(loaded.get("source"))  # type: ignore[arg-type]  # checked there: str or refused
    except FxError as exc:
        raise InvalidRequest(str(exc), param="source") from exc
    minutes = loaded.get("valid_minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_VALID_MINUTES:
        raise InvalidRequest(f"valid_minutes must be an integer from 1 to {MAX_VALID_MINUTES}", param="valid_minutes")
    for pair, rate in loaded["rates"].items():
        try:
            fx.parse_pair(pair)
            fx.parse_rate(rate)
        except FxError as exc:
            raise InvalidRequest(f"rates[{pair}]: {exc}", param=f"rates.{pair}") from exc
    return [put_rate(actor, pair, rate, source, minutes) for pair, rate in sorted(loaded["rates"].items())]


def rates(pair: str, *, limit: int = SCAN_LIMIT) -> list[RateSnapshot]:
    """The pair's snapshots, newest ``as_of`` first."""
    try:
        fx.parse_pair(pair)
    except FxError as exc:
        raise InvalidRequest(str(exc), param="pair") from exc
    page = client("dynamodb").query(
        TableName=_table(), KeyConditionExpression="pk = :pk", ScanIndexForward=False, Limit=limit,
        ExpressionAttributeValues=to_item({":pk": f"FX#{pair}"}), ConsistentRead=True)
    return [_snapshot(from_item(item)) for item in page.get("Items", [])]


def latest_valid(pair: str, at: datetime) -> RateSnapshot | None:
    """The newest snapshot of ``pair`` valid at ``at`` (quoted at or before it, not yet expired)."""
    page = client("dynamodb").query(
        TableName=_table(), KeyConditionExpression="pk = :pk AND sk <= :upto", ScanIndexForward=False,
        Limit=SCAN_LIMIT, ConsistentRead=True,
        ExpressionAttributeValues=to_item({":pk": f"FX#{pair}", ":upto": f"{iso(at)}#~"}))
    for item in page.get("Items", []):
        snapshot = _snapshot(from_item(item))
        if snapshot.valid_at(at):
            return snapshot
    return None


def lock(amount: Money, settlement_currency: str, at: datetime) -> tuple[Locked, RateSnapshot]:
    """The conversion a payment of ``amount`` settled in ``settlement_currency`` locks at creation: the latest
    valid snapshot of the pair, or a 422 naming ``settlement_currency`` when there is none."""
    pair = amount.currency + settlement_currency
    snapshot = latest_valid(pair, at)
    if snapshot is None:
        raise FxRateUnavailable(f"no valid {pair} rate to settle {amount.currency} in {settlement_currency}",
                                param="settlement_currency")
    try:
        return fx.lock(amount, snapshot), snapshot
    except FxError as exc:
        raise InvalidRequest(str(exc), param=exc.field) from exc


def _snapshot(item: dict[str, Any]) -> RateSnapshot:
    return RateSnapshot(rate_id=item["id"], pair=item["pair"], rate=item["rate"], source=item["source"],
                        as_of=item["as_of"], valid_until=item["valid_until"])
