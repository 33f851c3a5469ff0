"""Velocity counters and payer profiles in the state table: read in one BatchGetItem, added to inside the
transaction the operation writes anyway.

  RVEL#<dim>#<digest>#<shard> / D<yyyymmdd>   one UTC day of one payer, device, card or IP: per 5-minute bucket i
                                              ``n<i>`` payments, ``a<i>`` their amount, ``r<i>`` refunded amount
  RPROF#<digest>#<shard>      / PROFILE       a payer's cities (``c:<city>``) and devices (``d:<digest>``) seen

Sliding windows (10 minutes, 1 hour, 24 hours) are sums of 5-minute buckets, so a window reaches back up to 5
minutes further than its length. Values are named by a digest, never stored raw. Each writer adds to the shard its
payment id hashes to, so one busy payer (or a shared IP: a carrier NAT) spreads over ``shards()`` partition keys;
a reader sums every shard of today and yesterday. Items expire by TTL (``expires_at_epoch``) three days after
their day, profiles 180 days after their last payment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.config.settings import settings
from chalicelib.domain.value_class import value_class
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.shards import all_shards, shard_of
from chalicelib.storage.transaction import Transaction

DIMENSIONS = ("payer", "device", "card", "ip")
BUCKET_S = 300
BUCKETS_PER_DAY = 86_400 // BUCKET_S
WINDOWS = {"10m": 600, "1h": 3600, "24h": 86_400}
DAY_KEPT_S = 3 * 86_400
PROFILE_KEPT_S = 180 * 86_400
USUAL_CITY_MIN = 2  # a city seen this many times before is one of the payer's usual cities
# 4 dimensions x 2 days x 8 shards + 8 profile shards = 72 keys: one BatchGetItem (at most 100 keys).
DEPLOYED_SHARDS = 8
LOCAL_SHARDS = 2
round_trips = 0  # BatchGetItem calls made by this process (tests and the benchmark read it)


def shards() -> int:
    return DEPLOYED_SHARDS if settings().is_deployed else LOCAL_SHARDS


def digest(kind: str, value: str) -> str:
    return hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=12).hexdigest()


def _day(moment: datetime) -> str:
    return moment.strftime("%Y%m%d")


def _bucket(moment: datetime) -> int:
    return (moment.hour * 3600 + moment.minute * 60 + moment.second) // BUCKET_S


@value_class
class Subject:
    """What one operation is about: the values counters are kept for (None: not given, not counted)."""

    user_id: str | None = None
    device_id: str | None = None
    card_fingerprint: str | None = None
    ip: str | None = None
    city: str | None = None

    def dimensions(self) -> dict[str, str]:
        values = {"payer": self.user_id, "device": self.device_id, "card": self.card_fingerprint, "ip": self.ip}
        return {dim: digest(dim, value) for dim, value in values.items() if value}


@dataclass
class Snapshot:
    """Counters as read before this operation is added."""

    velocity: dict[str, dict[str, int]] = field(default_factory=dict)
    cities: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)


def _keys(subject: Subject, now: datetime) -> list[dict[str, str]]:
    days = [_day(now), _day(now - timedelta(days=1))]
    keys = [{"pk": f"RVEL#{dim}#{value}#{shard}", "sk": f"D{day}"}
            for dim, value in subject.dimensions().items() for shard in all_shards(shards()) for day in days]
    if subject.user_id:
        keys += [{"pk": f"RPROF#{digest('payer', subject.user_id)}#{shard}", "sk": "PROFILE"}
                 for shard in all_shards(shards())]
    return keys


def read(subject: Subject, now: datetime) -> Snapshot:
    """One BatchGetItem (more only if DynamoDB leaves keys unprocessed under throttling)."""
    global round_trips
    keys = _keys(subject, now)
    items: list[dict[str, Any]] = []
    table = settings().names.state_table
    pending: dict[str, Any] = {table: {"Keys": [to_item(k) for k in keys]}} if keys else {}
    while pending:
        round_trips += 1
        answer = client("dynamodb").batch_get_item(RequestItems=pending)
        items += [from_item(raw) for raw in answer.get("Responses", {}).get(table, [])]
        pending = answer.get("UnprocessedKeys") or {}
    return summarize(subject, items, now)


def summarize(subject: Subject, items: list[dict[str, Any]], now: datetime) -> Snapshot:
    by_value = {value: dim for dim, value in subject.dimensions().items()}
    today, yesterday, bucket = _day(now), _day(now - timedelta(days=1)), _bucket(now)
    snapshot = Snapshot(velocity={dim: dict.fromkeys(_feature_names(), 0) for dim in subject.dimensions()})
    for item in items:
        pk = str(item["pk"])
        if pk.startswith("RPROF#"):
            for name, count in item.items():
                if name.startswith("c:"):
                    snapshot.cities[name[2:]] = snapshot.cities.get(name[2:], 0) + int(count)
                elif name.startswith("d:"):
                    snapshot.devices[name[2:]] = snapshot.devices.get(name[2:], 0) + int(count)
            continue
        _, dim_name, value, _shard = pk.split("#")
        if by_value.get(value) != dim_name:
            continue
        # how many buckets back from now each bucket of this item lies
        offset_base = bucket if item["sk"] == f"D{today}" else bucket + BUCKETS_PER_DAY
        if item["sk"] not in (f"D{today}", f"D{yesterday}"):
            continue
        totals = snapshot.velocity[dim_name]
        for name, amount in item.items():
            if name[:1] not in "nar" or not name[1:].isdigit():
                continue
            age_s = (offset_base - int(name[1:])) * BUCKET_S
            for window, length in WINDOWS.items():
                if 0 <= age_s < length:
                    key = {"n": "count", "a": "amount", "r": "refunded"}[name[0]] + f"_{window}"
                    totals[key] += int(amount)
    return snapshot


def _feature_names() -> list[str]:
    return [f"{kind}_{window}" for kind in ("count", "amount", "refunded") for window in WINDOWS]


def add_payment(tx: Transaction, subject: Subject, *, amount: int, shard_key: str, now: datetime) -> None:
    """The payment's increments, as updates in ``tx`` (the transaction the operation writes anyway)."""
    _add(tx, subject, {"n": 1, "a": amount}, shard_key, now)
    if subject.user_id:
        shard = shard_of(shard_key, shards())
        adds: dict[str, int] = {}
        if subject.city:
            adds[f"c:{subject.city[:64]}"] = 1
        if subject.device_id:
            adds[f"d:{digest('device', subject.device_id)}"] = 1
        tx.update("risk_profile", settings().names.state_table,
                  {"pk": f"RPROF#{digest('payer', subject.user_id)}#{shard}", "sk": "PROFILE"},
                  {"expires_at_epoch": int(now.timestamp()) + PROFILE_KEPT_S}, condition=None, condition_values={},
                  add_values=adds or None)


def add_refund(tx: Transaction, subject: Subject, *, amount: int, shard_key: str, now: datetime) -> None:
    _add(tx, Subject(user_id=subject.user_id), {"r": amount}, shard_key, now)


def _add(tx: Transaction, subject: Subject, adds: dict[str, int], shard_key: str, now: datetime) -> None:
    shard = shard_of(shard_key, shards())
    bucket = _bucket(now)
    day_start = datetime(now.year, now.month, now.day, tzinfo=now.tzinfo)
    for dim, value in subject.dimensions().items():
        tx.update(f"risk_{dim}", settings().names.state_table,
                  {"pk": f"RVEL#{dim}#{value}#{shard}", "sk": f"D{_day(now)}"},
                  {"expires_at_epoch": int(day_start.timestamp()) + 86_400 + DAY_KEPT_S}, condition=None,
                  condition_values={}, add_values={f"{prefix}{bucket}": delta for prefix, delta in adds.items()})
