"""A peak hour on one channel account, counted per partition key from the keys the hub's own functions produce.

No DynamoDB is involved: each simulated payment goes through the write sets of the code paths it would take
(create, the channel's answer, status-sync rounds, the callback that captures it, outbox publish, webhook
delivery, and for some a refund), and every write is charged to the partition key it lands on, in the base
table and in each index that holds the item (all indexes project ALL attributes, so an update of an indexed
item is a write to the index too; a changed index key is a delete plus a put). The keys and items come from
the hub's functions: ``records.*_key``, ``sync_index.first_sync``, ``outbox.event_item``/``command_item``,
``ledger_repo.journal_writes`` (with ``ledger.payment_captured``/``refund_paid``), ``recon_index.index_fields``
and the idempotency key.

Steady state: arrivals are ``rate`` a second, and each lifecycle step happens for a fixed fraction of them, so
the writes one second sees are those of one second's arrivals taking every step. Each simulated second uses
fresh ids (hashes spread them anew); an hour is 3,600 such seconds, bounded from the simulated ones by the
Poisson tail (``hour_bound``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chalicelib.domain import ledger
from chalicelib.domain.models import Attempt, Payment, Refund
from chalicelib.domain.money import Money
from chalicelib.domain.states import AttemptState, PaymentState, RefundState
from chalicelib.storage import ledger_repo, outbox, recon_index, records, shards
from chalicelib.storage.idempotency import _key as idempotency_key
from chalicelib.storage.sync_index import PENDING_REFUND_RESUBMIT_S, first_sync
from infra.resources import resources

# Which indexes hold only keys (a write there is key-sized; an update that leaves the keys alone is none),
# from the definitions the stack deploys.
KEYS_ONLY = {index.name for table in resources("dev").tables for index in table.indexes
             if index.projection == "KEYS_ONLY"}

STATE, LEDGER, IDEMPOTENCY = "state", "ledger", "idempotency"
MERCHANT, ACCOUNT = "mch_peak", "wechat-main"  # one merchant on one channel account takes the whole peak
# Status-sync rounds of an attempt never paid: queried at 15 s, then on the backoff (15, 30, 60, ... 3600 s)
# until its 2 h expiry, where it is queried once more and closed.
ABANDONED_SYNC_ROUNDS = 9
# Most writes one phase of one object puts on one key of a place: a sync round moves the item twice (2 writes
# each), an event is put and, right after, published; every other key takes one write per object and phase.
# The hour bound treats writes as Poisson clusters of this size.
CLUSTERS = {"state/sync": 4, "state/outbox": 2}


@dataclass(frozen=True)
class Profile:
    """What a peak second is made of. The fractions are assumptions, stated in docs/capacity.md."""

    rate: int = 100_000  # payments created a second, all on one channel account and one merchant
    paid_before_first_sync: float = 0.80  # the callback arrives within 15 s
    paid_after_one_sync: float = 0.12  # queried once while the payer is still paying, then the callback
    abandoned: float = 0.08  # never paid: synced until expiry, then closed
    refunded: float = 0.02  # of the paid ones, refunded (processing, then a success callback)
    webhook_retries: float = 0.05  # deliveries that fail once and are retried
    counts: shards.ShardCounts = shards.DEPLOYED


@dataclass
class Tally:
    """Writes and write units per partition key, ``(table or table/index, key)``, within one second."""

    writes: Counter[tuple[str, str]] = field(default_factory=Counter)
    units: Counter[tuple[str, str]] = field(default_factory=Counter)


def item_size(item: dict[str, object]) -> int:
    """DynamoDB's item size (attribute names + values, numbers ~1 byte per 2 digits), close enough for units."""
    def value_size(value: object) -> int:
        if value is None or isinstance(value, bool):
            return 1
        if isinstance(value, int | float):
            return len(str(value)) // 2 + 2
        if isinstance(value, str):
            return len(value.encode())
        if isinstance(value, dict):
            return 3 + sum(len(str(k)) + value_size(v) + 1 for k, v in value.items())
        if isinstance(value, list | tuple):
            return 3 + sum(value_size(v) + 1 for v in value)
        return len(json.dumps(value, default=str))
    return sum(len(name) + value_size(value) for name, value in item.items() if value is not None)


class PeakSecond:
    """One simulated second: ``run()`` charges every write of ``profile.rate`` payments' steps to its key.

    Steps of one payment that happen at different times (create, each status-sync round, the capture, a retried
    delivery, a refund) are taken by different payments in any one second, so each such phase draws fresh ids;
    writes of one phase (a transaction and what follows it within the second) share them. Item sizes, for the
    write units, are measured once per kind on an item built by the hub's record functions.
    """

    def __init__(self, profile: Profile, now: datetime) -> None:
        self.serial = 0
        self.prefix = f"{now.minute:02d}{now.second:02d}"
        self.profile = profile
        self.counts = profile.counts
        self.now = now
        self.stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.day = recon_index.beijing_day(now)
        self.tally = Tally()
        self.sizes: dict[str, int] = {}
        self.money = Money(8888, "CNY")
        payment = self.payment_record(self.new_id("pay"), self.new_id("att"))
        self.payment_public = payment.public()
        self.templates = {"payment": records.payment_item(payment),
                          "attempt": records.attempt_item(self.attempt_record(self.new_id("att"), payment.payment_id))}

    def new_id(self, prefix: str) -> str:
        """Ids of the hub's shape (prefix + 24 characters), distinct across the simulated hour; cheaper than random
        ones, and as good for the shard hash, which spreads any distinct ids uniformly."""
        self.serial += 1
        return f"{prefix}_{self.prefix}{self.serial:020d}"

    def payment_record(self, payment_id: str, attempt_id: str) -> Payment:
        return Payment(payment_id=payment_id, merchant_id=MERCHANT, merchant_order_no=self.new_id("ord"),
                       amount=self.money.minor, currency=self.money.currency, description="Green tea",
                       method="wechat.jsapi", status=PaymentState.PENDING, version=0, created_at=self.stamp,
                       updated_at=self.stamp, expires_at=self.stamp, current_attempt_id=attempt_id,
                       notify_url="https://merchant.example.com/hook", payer={"openid": "o" * 28},
                       action={"type": "jsapi_params", "package": "prepay_id=" + "w" * 32, "paySign": "s" * 344})

    def attempt_record(self, attempt_id: str, payment_id: str) -> Attempt:
        return Attempt(attempt_id=attempt_id, payment_id=payment_id, merchant_id=MERCHANT, channel="wechatpay",
                       account_id=ACCOUNT, method="wechat.jsapi", amount=self.money.minor, currency=self.money.currency,
                       status=AttemptState.PENDING, version=0, created_at=self.stamp, updated_at=self.stamp,
                       expires_at=self.stamp, channel_order_ref="wx" + "0" * 30)

    # --- charging ----------------------------------------------------------------------------------------
    def write(self, table: str, kind: str, key: str, *, transactional: bool, item: dict[str, object] | None = None,
              indexes: Iterable[tuple[str, str, int]] = ()) -> None:
        """A write of an item of ``kind`` at partition key ``key``; ``indexes``: (index, index key, writes to it:
        1 for a put, update or delete there, 2 when the write moves the item within the index)."""
        if kind not in self.sizes:
            self.sizes[kind] = item_size(item if item is not None else self.templates[kind])
        size = math.ceil(max(self.sizes[kind], 1) / 1024)
        writes, units = self.tally.writes, self.tally.units
        place = (table, key)
        writes[place] += 1
        units[place] += size * (2 if transactional else 1)
        for index, index_key, times in indexes:
            place = (f"{table}/{index}", index_key)
            writes[place] += times
            units[place] += (1 if index in KEYS_ONLY else size) * times

    # --- lifecycle -----------------------------------------------------------------------------------------
    def run(self) -> Tally:
        p = self.profile
        paid_after_sync = p.paid_before_first_sync + p.paid_after_one_sync
        for n in range(p.rate):
            share = (n + 0.5) / p.rate  # the second's arrivals split deterministically by the profile's fractions
            self.create()
            abandoned = share >= paid_after_sync
            for _ in range(ABANDONED_SYNC_ROUNDS if abandoned else 0 if share < p.paid_before_first_sync else 1):
                self.sync_round()
            self.final("payment.closed" if abandoned else "payment.succeeded", capture=not abandoned)
            if n % round(1 / p.webhook_retries) == 0:
                self.redelivery()
            if not abandoned and n % round(1 / p.refunded) == 0:
                self.refund()
        return self.tally

    def create(self) -> None:
        """Idempotency lock; one transaction (order number, payment, attempt into the sync index); the channel's
        answer (attempt and payment updated in a second transaction); the idempotency answer."""
        attempt_id, payment_id = self.new_id("att"), self.new_id("pay")
        shard = first_sync(self.now, attempt_id, count=self.counts.sync)["sync_shard"]
        lock = idempotency_key(MERCHANT, self.new_id("idem"))["pk"]["S"]
        self.write(IDEMPOTENCY, "lock", lock, transactional=False, item={"pk": lock, "response": self.payment_public})
        order = records.order_no_key(MERCHANT, self.new_id("ord"))
        self.write(STATE, "order_no", order["pk"], transactional=True, item={**order, "payment_id": payment_id})
        self.write(STATE, "payment", records.payment_key(payment_id)["pk"], transactional=True)
        attempt = records.attempt_key(attempt_id)["pk"]
        self.write(STATE, "attempt", attempt, transactional=True, indexes=[("sync", shard, 1)])
        self.write(STATE, "attempt", attempt, transactional=True, indexes=[("sync", shard, 1)])
        self.write(STATE, "payment", records.payment_key(payment_id)["pk"], transactional=True)
        self.write(IDEMPOTENCY, "lock", lock, transactional=False)

    def sync_round(self) -> None:
        """The sweep leases a due attempt (its due time, the index's sort key, moves), the worker reschedules it."""
        attempt_id = self.new_id("att")
        shard = first_sync(self.now, attempt_id, count=self.counts.sync)["sync_shard"]
        for _ in range(2):
            self.write(STATE, "attempt", records.attempt_key(attempt_id)["pk"], transactional=False,
                       indexes=[("sync", shard, 2)])

    def final(self, event_type: str, *, capture: bool) -> None:
        """The transaction that makes an attempt final (service/outcomes.py), then publish and first delivery."""
        attempt_id, payment_id = self.new_id("att"), self.new_id("pay")
        shard = first_sync(self.now, attempt_id, count=self.counts.sync)["sync_shard"]
        indexes = [("sync", shard, 1)]
        if capture:
            recon = recon_index.index_fields(ACCOUNT, "payment", attempt_id, self.now, count=self.counts.recon)
            indexes.append(("recon", recon["recon_spk"], 1))
        self.write(STATE, "attempt", records.attempt_key(attempt_id)["pk"], transactional=True, indexes=indexes)
        self.write(STATE, "payment", records.payment_key(payment_id)["pk"], transactional=True)
        if capture:
            self.journal(ledger.payment_captured(attempt_id, ACCOUNT, MERCHANT, self.money))
        self.event(payment_id, event_type, self.payment_public)
        callback = records.callback_key("wechatpay", ACCOUNT, self.new_id("cb"))
        self.write(STATE, "callback", callback["pk"], transactional=True, item={**callback, "object_id": attempt_id})
        audit = {"pk": f"AUDIT#{attempt_id}", "sk": f"{self.stamp}#aud_x", "source": "callback", "reason": "paid"}
        self.write(STATE, "audit", audit["pk"], transactional=True, item=audit)

    def journal(self, journal: ledger.Journal) -> None:
        for label, _kind, item in ledger_repo.journal_writes(journal, now=self.stamp, value_day=self.day,
                                                             count=self.counts.ledger):
            value_key = item.get("value_key")
            self.write(LEDGER, label.split(":", 1)[0], str(item["pk"]), transactional=True, item=item,
                       indexes=[("value_day", str(value_key), 1)] if value_key else [])

    def event(self, object_id: str, event_type: str, data: dict[str, object]) -> None:
        """An event written in the transaction, published (outbox attribute removed), delivered (status updated)."""
        item = outbox.event_item(merchant_id=MERCHANT, object_id=object_id, event_type=event_type, data=data,
                                 now=self.stamp, counts=self.counts)
        lists, pending = ("gsi1", str(item["gsi1pk"]), 1), ("outbox", str(item["outbox_shard"]), 1)
        updated = [lists] if "gsi1" not in KEYS_ONLY else []  # publish and delivery leave the list's keys alone
        self.write(STATE, "event", str(item["pk"]), transactional=True, item=item, indexes=[lists, pending])
        self.write(STATE, "event", str(item["pk"]), transactional=False, indexes=[*updated, pending])
        self.delivery(str(item["event_id"]), updated)

    def delivery(self, evt_id: str, updated: list[tuple[str, str, int]]) -> None:
        record = {"pk": f"EVT#{evt_id}", "sk": f"DLV#{self.stamp}#001", "status_code": 200, "duration_ms": 35,
                  "url": "https://merchant.example.com/hook"}
        self.write(STATE, "delivery", record["pk"], transactional=False, item=record)
        self.write(STATE, "event", f"EVT#{evt_id}", transactional=False, indexes=updated)

    def redelivery(self) -> None:
        """A delivery retried later (an event of an earlier second)."""
        item = outbox.event_item(merchant_id=MERCHANT, object_id=self.new_id("pay"), event_type="payment.succeeded",
                                 data=self.payment_public, now=self.stamp, counts=self.counts)
        self.delivery(str(item["event_id"]), [("gsi1", str(item["gsi1pk"]), 1)] if "gsi1" not in KEYS_ONLY else [])

    def command(self, topic: str, object_id: str, command: str) -> None:
        item = outbox.command_item(topic=topic, object_id=object_id, command=command, now=self.stamp, counts=self.counts)
        pending = ("outbox", str(item["outbox_shard"]), 1)
        self.write(STATE, "command", str(item["pk"]), transactional=True, item=item, indexes=[pending])
        self.write(STATE, "command", str(item["pk"]), transactional=False, indexes=[pending])

    def refund(self) -> None:
        """Create (idempotency, one transaction with the refund.submit command), the worker's move to processing,
        and the success callback's transaction with its journal and event: three phases, three sets of ids."""
        payment_id, refund_id = self.new_id("pay"), self.new_id("re")
        shard = first_sync(self.now, refund_id, after_s=PENDING_REFUND_RESUBMIT_S, count=self.counts.sync)["sync_shard"]
        refund = Refund(refund_id=refund_id, payment_id=payment_id, attempt_id=self.new_id("att"), merchant_id=MERCHANT,
                        channel="wechatpay", account_id=ACCOUNT, amount=self.money.minor, currency=self.money.currency,
                        status=RefundState.PENDING, version=0, created_at=self.stamp, updated_at=self.stamp,
                        merchant_refund_no=self.new_id("rno"), reason="one cup missing")
        item = records.refund_item(refund)
        lock = idempotency_key(MERCHANT, self.new_id("idem"))["pk"]["S"]
        self.write(IDEMPOTENCY, "lock", lock, transactional=False)
        self.write(STATE, "payment", records.payment_key(payment_id)["pk"], transactional=True)
        claim = records.refund_no_key(payment_id, refund.merchant_refund_no)
        self.write(STATE, "refund_no", claim["pk"], transactional=True, item={**claim, "refund_id": refund_id})
        self.write(STATE, "refund", str(item["pk"]), transactional=True, item=item, indexes=[("sync", shard, 1)])
        self.command("refunds", refund_id, "refund.submit")
        self.write(IDEMPOTENCY, "lock", lock, transactional=False)
        # the worker, a little later: processing (sync due time moves, enters the recon index)
        refund_id = self.new_id("re")
        shard = first_sync(self.now, refund_id, count=self.counts.sync)["sync_shard"]
        recon = recon_index.index_fields(ACCOUNT, "refund", refund_id, self.now, count=self.counts.recon)
        self.write(STATE, "refund", records.refund_key(refund_id)["pk"], transactional=True,
                   indexes=[("sync", shard, 2), ("recon", recon["recon_spk"], 1)])
        # the success callback, later still
        refund_id, payment_id = self.new_id("re"), self.new_id("pay")
        shard = first_sync(self.now, refund_id, count=self.counts.sync)["sync_shard"]
        recon = recon_index.index_fields(ACCOUNT, "refund", refund_id, self.now, count=self.counts.recon)
        self.write(STATE, "refund", records.refund_key(refund_id)["pk"], transactional=True,
                   indexes=[("sync", shard, 1), ("recon", recon["recon_spk"], 1)])
        self.write(STATE, "payment", records.payment_key(payment_id)["pk"], transactional=True)
        self.journal(ledger.refund_paid(refund_id, ACCOUNT, MERCHANT, self.money))
        self.event(refund_id, "refund.succeeded", refund.public())
        callback = records.callback_key("wechatpay", ACCOUNT, self.new_id("cb"))
        self.write(STATE, "callback", callback["pk"], transactional=True, item={**callback, "object_id": refund_id})


@dataclass(frozen=True)
class Hot:
    key: str
    per_second: float  # the most any simulated second put on this key


@dataclass
class Peak:
    """What the simulated seconds showed."""

    seconds: int
    max_writes: Hot
    max_units: Hot
    mean_writes: dict[str, float]  # per place (table or table/index): mean writes a second on its busiest key
    total_writes_per_s: float
    total_units_per_s: float
    keys_by_place: dict[str, int]
    writes_by_place: dict[str, float]  # writes a second, all keys of the place together
    units_by_place: dict[str, float]


def simulate(profile: Profile, seconds: int, start: datetime | None = None) -> Peak:
    start = start or datetime(2024, 11, 11, 12, 0, tzinfo=UTC)  # a peak hour; Beijing day 2024-11-11
    worst_writes, worst_units = Hot("", 0), Hot("", 0)
    busiest: Counter[str] = Counter()
    by_place: Counter[str] = Counter()
    units_by_place: Counter[str] = Counter()
    total_writes = total_units = 0
    places: dict[str, set[str]] = {}
    for second in range(seconds):
        tally = PeakSecond(profile, start.replace(second=second % 60, minute=second // 60 % 60)).run()
        (place, key), count = tally.writes.most_common(1)[0]
        if count > worst_writes.per_second:
            worst_writes = Hot(f"{place}|{key}", count)
        (place, key), units = tally.units.most_common(1)[0]
        if units > worst_units.per_second:
            worst_units = Hot(f"{place}|{key}", units)
        for (place, key), count in tally.writes.items():
            busiest[place] = max(busiest[place], count)
            places.setdefault(place, set()).add(key)
        for (place, _key), count in tally.writes.items():
            by_place[place] += count
        for (place, _key), units in tally.units.items():
            units_by_place[place] += units
        total_writes += sum(tally.writes.values())
        total_units += sum(tally.units.values())
    return Peak(seconds, worst_writes, worst_units, dict(busiest), total_writes / seconds, total_units / seconds,
                {place: len(keys) for place, keys in places.items()},
                {place: n / seconds for place, n in by_place.items()},
                {place: n / seconds for place, n in units_by_place.items()})


def hour_bound(mean_per_second: float, keys: int, seconds: int = 3600, miss: float = 0.01) -> int:
    """The count a key reaches in its worst second of the hour, over ``keys`` keys each seeing Poisson(mean) a
    second: the smallest k with P(any of keys*seconds draws > k) < ``miss``."""
    draws = keys * seconds
    k, term = 0, math.exp(-mean_per_second)
    cumulative = term
    while draws * (1 - cumulative) >= miss:
        k += 1
        term *= mean_per_second / k
        cumulative += term
    return k


def reads_per_shard(counts: shards.ShardCounts, *, due_per_minute: float) -> dict[str, float]:
    """Read pattern of the sweeps (once a minute, every shard) and of a balance (one item per shard)."""
    return {
        "sync_sweep_queries_per_shard_per_s": 1 / 60,
        "sync_sweep_items_per_shard_per_s": due_per_minute / counts.sync / 60,
        "outbox_sweep_queries_per_shard_per_s": 1 / 60,
        "balance_read_items": counts.ledger,
        "balance_read_calls": math.ceil(counts.ledger / ledger_repo.BATCH_GET_MAX),
        "event_page_queries": counts.events + 1,
    }


