"""Account health from recent outcomes, and a circuit breaker per channel account, shared by every Lambda.

Outcomes of channel creates are counted in the state table, in 10-second buckets spread over a few shards (one
``UpdateItem ... ADD`` per call, never a read-modify-write), each bucket removed by DynamoDB's TTL after the
window. Any function reads an account's window with one ``BatchGetItem`` and keeps what it read for a second
or two, so a busy function costs the table one read per account per ``cache_s``.

    HEALTH#<account>#<shard> / <bucket start, epoch s>   calls, errors, slow, latency_ms (sums)
    BREAKER#<account>        / STATE                     state (closed|open), opened_at, closed_at, probe_until

The breaker: *closed* until, within the window and since it last closed, at least ``min_calls`` calls were made
and the share of failed (or slower than ``slow_ms``) calls reaches ``failure_rate``; then *open*: the account is
not offered and not routed to for ``cooldown_s``; then *half-open*: exactly one caller (a conditional write
takes the probe) sends one real create; its success closes the breaker, its failure opens it again. Times are
epoch milliseconds from one clock, injected for tests.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from chalicelib.config.cache import TtlCache
from chalicelib.domain.value_class import value_class
from chalicelib.storage import state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item

log = logging.getLogger(__name__)


@value_class
class BreakerPolicy:
    bucket_s: int = 10
    window_s: int = 60
    shards: int = 4
    min_calls: int = 5
    failure_rate: float = 0.5
    slow_ms: int = 5000  # a create slower than this counts against the account even when it succeeded
    cooldown_s: int = 30
    probe_lease_s: int = 15  # a probe that never reports back frees the half-open state after this
    cache_s: float = 2.0
    # Successes are added up in the process and written at most this often per account (a failure is written at
    # once, with whatever was pending): the happy path of a create costs no write of its own.
    flush_s: float = 5.0


@value_class
class Stats:
    calls: int = 0
    errors: int = 0
    slow: int = 0
    latency_ms: int = 0

    @property
    def failure_rate(self) -> float:
        return (self.errors + self.slow) / self.calls if self.calls else 0.0

    @property
    def mean_latency_ms(self) -> float:
        return self.latency_ms / self.calls if self.calls else 0.0


@value_class
class HealthView:
    account_id: str
    state: str  # closed | open | half_open
    stats: Stats
    opened_at_ms: int | None = None
    reopens_at_ms: int | None = None

    def describe(self) -> str:
        s = self.stats
        numbers = (f"{s.calls} calls, {s.errors} failed, {s.slow} slow, failure rate {s.failure_rate:.0%}, "
                   f"mean latency {s.mean_latency_ms:.0f} ms in the window")
        if self.state == "open":
            return f"breaker open (until {self.reopens_at_ms} ms epoch): {numbers}"
        if self.state == "half_open":
            return f"breaker half-open, one probe allowed: {numbers}"
        return f"healthy: {numbers}"


class Health:
    def __init__(self, policy: BreakerPolicy | None = None, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._views: TtlCache[HealthView] = TtlCache(self.policy.cache_s, clock=clock)
        self._pending: dict[str, tuple[float, Stats]] = {}  # account -> (first unwritten outcome at, its totals)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- reading --------------------------------------------------------------------------------------

    def view(self, account_id: str) -> HealthView:
        return self._views.get(account_id, lambda: self._load(account_id))

    def _load(self, account_id: str) -> HealthView:
        now = self.now_ms()
        breaker = self._breaker(account_id)
        stats = self._stats(account_id, now - self.policy.window_s * 1000, int(breaker.get("closed_at", 0)), now)
        if breaker.get("state") == "open":
            opened = int(breaker["opened_at"])
            reopens = opened + self.policy.cooldown_s * 1000
            return HealthView(account_id, "open" if now < reopens else "half_open", stats, opened, reopens)
        return HealthView(account_id, "closed", stats)

    def _breaker(self, account_id: str) -> dict[str, Any]:
        item = client("dynamodb").get_item(TableName=state_repo.state_table(), ConsistentRead=True,
                                           Key=to_item(_breaker_key(account_id))).get("Item")
        return from_item(item) if item else {}

    def _stats(self, account_id: str, window_start_ms: int, closed_at_ms: int, now_ms: int) -> Stats:
        """The window's totals, leaving out buckets that began before the breaker last closed (what failed
        before a successful probe must not open it again at once)."""
        size = self.policy.bucket_s
        first = (window_start_ms // 1000) // size * size
        starts = range(first, now_ms // 1000 + 1, size)
        keys = [to_item({"pk": f"HEALTH#{account_id}#{shard}", "sk": str(start)})
                for start in starts for shard in range(self.policy.shards)]
        totals = {"calls": 0, "errors": 0, "slow": 0, "latency_ms": 0}
        dynamodb = client("dynamodb")
        for i in range(0, len(keys), 100):
            pending: dict[str, Any] = {state_repo.state_table(): {"Keys": keys[i:i + 100]}}
            while pending:
                answer = dynamodb.batch_get_item(RequestItems=pending)
                for raw in answer["Responses"].get(state_repo.state_table(), []):
                    item = from_item(raw)
                    if int(item["sk"]) * 1000 < closed_at_ms:
                        continue
                    for name in totals:
                        totals[name] += int(item.get(name, 0))
                pending = answer.get("UnprocessedKeys") or {}
        return Stats(**totals)

    # --- the breaker ------------------------------------------------------------------------------------

    def admit(self, account_id: str) -> tuple[bool, bool]:
        """(may this caller send a create to the account now, is it the half-open probe)."""
        view = self.view(account_id)
        if view.state == "closed":
            return True, False
        if view.state == "open":
            return False, False
        now = self.now_ms()
        try:
            client("dynamodb").update_item(
                TableName=state_repo.state_table(), Key=to_item(_breaker_key(account_id)),
                UpdateExpression="SET probe_until = :until",
                ConditionExpression="#state = :open AND (attribute_not_exists(probe_until) OR probe_until < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=to_item({":until": now + self.policy.probe_lease_s * 1000, ":now": now,
                                                   ":open": "open"}))
        except client("dynamodb").exceptions.ConditionalCheckFailedException:
            return False, False  # another caller holds the probe
        log.info("breaker of %s half-open: this create is the probe", account_id)
        return True, True

    def observe(self, account_id: str, *, ok: bool, latency_ms: float, probe: bool = False) -> None:
        """Count one create's outcome, and move the breaker when it must."""
        now = self.now_ms()
        slow = ok and latency_ms > self.policy.slow_ms
        outcome = Stats(1, 0 if ok else 1, 1 if slow else 0, int(latency_ms))
        since, pending = self._pending.get(account_id, (self._clock(), Stats()))
        pending = Stats(*(a + b for a, b in zip(
            (pending.calls, pending.errors, pending.slow, pending.latency_ms),
            (outcome.calls, outcome.errors, outcome.slow, outcome.latency_ms), strict=True)))
        healthy = ok and not slow
        if healthy and not probe and self._clock() - since < self.policy.flush_s:
            self._pending[account_id] = (since, pending)
            return
        self._pending.pop(account_id, None)
        self._write(account_id, pending, now)
        if probe:
            self._set_breaker(account_id, "closed" if healthy else "open", now)
            return
        if healthy:
            return
        view = self.view(account_id)
        if view.state == "closed" and view.stats.calls >= self.policy.min_calls \
                and view.stats.failure_rate >= self.policy.failure_rate:
            self._set_breaker(account_id, "open", now, only_if_closed=True)

    def _write(self, account_id: str, totals: Stats, now: int) -> None:
        start = (now // 1000) // self.policy.bucket_s * self.policy.bucket_s
        client("dynamodb").update_item(
            TableName=state_repo.state_table(),
            Key=to_item({"pk": f"HEALTH#{account_id}#{random.randrange(self.policy.shards)}", "sk": str(start)}),
            UpdateExpression="ADD calls :calls, errors :err, slow :slow, latency_ms :ms SET expires_at_epoch = :ttl",
            ExpressionAttributeValues=to_item({":calls": totals.calls, ":err": totals.errors, ":slow": totals.slow,
                                               ":ms": totals.latency_ms,
                                               ":ttl": start + self.policy.window_s + 3600}))
        self._views.invalidate(account_id)

    def flush(self) -> None:
        """Write every pending success now (tests; a Lambda relies on the next outcome or the next minute)."""
        for account_id in list(self._pending):
            _, totals = self._pending.pop(account_id)
            self._write(account_id, totals, self.now_ms())

    def _set_breaker(self, account_id: str, state: str, now: int, *, only_if_closed: bool = False) -> None:
        stamp = "opened_at" if state == "open" else "closed_at"
        condition = {"ConditionExpression": "attribute_not_exists(#state) OR #state = :closed"} if only_if_closed else {}
        values: dict[str, Any] = {":state": state, ":now": now, **({":closed": "closed"} if only_if_closed else {})}
        try:
            client("dynamodb").update_item(
                TableName=state_repo.state_table(), Key=to_item(_breaker_key(account_id)),
                UpdateExpression=f"SET #state = :state, {stamp} = :now REMOVE probe_until",
                ExpressionAttributeNames={"#state": "state"}, ExpressionAttributeValues=to_item(values), **condition)
        except client("dynamodb").exceptions.ConditionalCheckFailedException:
            return  # another function opened it first: one opening, one cooldown
        self._views.invalidate(account_id)
        log.warning("breaker of channel account %s %s", account_id, state,
                    extra={"account_id": account_id, "breaker": state})

    def forget(self) -> None:
        self._views.invalidate()


def _breaker_key(account_id: str) -> dict[str, str]:
    return {"pk": f"BREAKER#{account_id}", "sk": "STATE"}


_default: Health | None = None


def health() -> Health:
    global _default
    if _default is None:
        _default = Health()
    return _default


def use(instance: Health | None) -> None:
    """Replace the process's tracker (tests: another clock or policy); None goes back to the default."""
    global _default
    _default = instance
