"""The routing decision: which accounts may take a payment, in which order, and why.

``plan`` is pure (rules, accounts and health are handed in), so the same function answers a create, the
checkout's offer and ``payhub route explain``. It returns every candidate in the order they would be tried (the
first is the choice, the rest are the backups failover moves to) and one line per thing it looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.domain.value_class import value_class
from chalicelib.routing import gray
from chalicelib.routing.methods import ResolvedMethod

if TYPE_CHECKING:  # loaded by the first plan: what settles payments (callbacks, workers) never routes
    from chalicelib.routing.rules import Candidate, RoutingRules, Rule


@value_class
class Context:
    """What routing may look at. ``payer_id`` keys the sticky percentage and the weighted pick; without one the
    pick is keyed by ``order_key`` (the merchant's order number), so a retry of the same order picks the same."""

    merchant_id: str
    method: str
    currency: str
    amount: int | None = None
    payer_id: str | None = None
    city: str | None = None
    user_groups: tuple[str, ...] = ()
    order_key: str | None = None

    @property
    def pick_key(self) -> str:
        return self.payer_id or self.order_key or ""


@dataclass
class Plan:
    """The accounts a create tries, in order, and why (``explain``)."""

    method: ResolvedMethod
    accounts: list[ChannelAccountConfig]  # in the order to try: the choice first, then the backups
    rule_id: str | None
    version: int | None
    lines: list[str] = field(default_factory=list)

    def explain(self) -> dict[str, object]:
        return {"method": self.method.method, "protocol_method": self.method.protocol_method,
                "channel": self.method.channel, "routing_version": self.version, "rule": self.rule_id,
                "chosen": self.accounts[0].account_id if self.accounts else None,
                "backups": [a.account_id for a in self.accounts[1:]], "why": list(self.lines)}


HealthState = Callable[[str], tuple[str, str]]  # account_id -> (closed|open|half_open, description)


def plan(ctx: Context, method: ResolvedMethod, rules: RoutingRules, version: int | None,
         accounts: Sequence[ChannelAccountConfig], health: HealthState) -> Plan:
    from chalicelib.routing.rules import Candidate

    by_id = {account.account_id: account for account in accounts}
    result = Plan(method, [], None, version)
    say = result.lines.append
    say(f"method {method.method}" + (f" (configured: speaks {method.protocol_method})" if method.configured else "")
        + f" on channel {method.channel}; routing version {version if version is not None else 'none (no rules)'}")
    for rule in rules.rules:
        why_not = _rule_misses(rule, ctx)
        if why_not:
            say(f"rule {rule.rule_id}: skipped, {why_not}")
            continue
        usable = _usable(rule.candidates, by_id, ctx, method, health, say, f"rule {rule.rule_id}")
        if not usable:
            say(f"rule {rule.rule_id}: matched, but no candidate can take the payment; next rule")
            continue
        result.rule_id = rule.rule_id
        result.accounts = [by_id[c.account_id] for c in _order(usable, ctx, say, f"rule {rule.rule_id}")]
        return result
    if rules.rules and not rules.fallback:
        say("no rule decided and fallback is off: nothing is offered")
        return result
    if rules.rules:
        say("no rule decided: falling back to the accounts' own order")
    defaults = sorted(by_id.values(), key=lambda a: (not a.merchant_ids, a.priority, a.account_id))
    implied = [Candidate(account_id=a.account_id, priority=a.priority) for a in defaults]
    usable = _usable(tuple(implied), by_id, ctx, method, health, say, "default")
    usable.sort(key=lambda c: (not by_id[c.account_id].merchant_ids, c.priority, c.account_id))
    result.accounts = [by_id[c.account_id] for c in usable]
    if result.accounts:
        first = result.accounts[0]
        say(f"default: {first.account_id} first ("
            + ("dedicated to the merchant" if first.merchant_ids else f"shared, priority {first.priority}") + ")")
    return result


def _rule_misses(rule: Rule, ctx: Context) -> str | None:
    if not rule.enabled:
        return "disabled"
    if not rule.takes_method(ctx.method):
        return f"method {ctx.method} not in {list(rule.methods)}"
    if rule.currencies and ctx.currency not in rule.currencies:
        return f"currency {ctx.currency} not in {list(rule.currencies)}"
    if rule.min_amount is not None and (ctx.amount is None or ctx.amount < rule.min_amount):
        return f"amount {ctx.amount} below min_amount {rule.min_amount}"
    if rule.max_amount is not None and ctx.amount is not None and ctx.amount > rule.max_amount:
        return f"amount {ctx.amount} above max_amount {rule.max_amount}"
    release = rule.gray
    if release is None:
        return None
    if release.cities and ctx.city not in release.cities:
        return f"gray release: city {ctx.city!r} not in {list(release.cities)}"
    if release.user_groups and not set(ctx.user_groups) & set(release.user_groups):
        return f"gray release: payer groups {list(ctx.user_groups)} not in {list(release.user_groups)}"
    if release.percent is not None:
        if not ctx.payer_id:
            return "gray release by percent needs a payer id, and none was given"
        place = gray.bucket(ctx.payer_id, release.salt)
        if not gray.within(ctx.payer_id, release.salt, release.percent):
            return f"gray release: payer's place {place / 100:.2f}% is outside the first {release.percent}%"
    return None


def _usable(candidates: tuple[Candidate, ...], by_id: dict[str, ChannelAccountConfig], ctx: Context,
            method: ResolvedMethod, health: HealthState, say: Callable[[str], None], where: str) -> list[Candidate]:
    usable = []
    for candidate in candidates:
        account = by_id.get(candidate.account_id)
        reason = _account_refuses(account, ctx, method) if account else "no such channel account"
        if reason is None:
            state, described = health(candidate.account_id)
            if state == "open":
                reason = described
        if reason:
            say(f"{where}: {candidate.account_id} left out: {reason}")
        else:
            usable.append(candidate)
    return usable


def account_refuses(account: ChannelAccountConfig, ctx: Context, method: ResolvedMethod) -> str | None:
    """Why the account cannot take this payment at all (whatever rules and breakers say), or None."""
    return _account_refuses(account, ctx, method)


def _account_refuses(account: ChannelAccountConfig, ctx: Context, method: ResolvedMethod) -> str | None:
    if not account.enabled:
        return "account disabled"
    if account.channel != method.channel:
        return f"account is on {account.channel}, the method needs {method.channel}"
    if method.method not in account.methods:
        return f"account does not offer {method.method}"
    if ctx.currency not in account.currencies:
        return f"account does not take {ctx.currency}"
    if account.merchant_ids and ctx.merchant_id not in account.merchant_ids:
        return "account serves other merchants only"
    return None


def _order(usable: list[Candidate], ctx: Context, say: Callable[[str], None], where: str) -> list[Candidate]:
    """Lowest priority number first; among equals, the weighted pick for this payer first, then by weight."""
    ordered: list[Candidate] = []
    for priority in sorted({c.priority for c in usable}):
        tier = sorted((c for c in usable if c.priority == priority), key=lambda c: (-c.weight, c.account_id))
        if len(tier) > 1:
            index = gray.weighted_pick(ctx.pick_key, [c.weight for c in tier])
            if index > 0:
                tier.insert(0, tier.pop(index))
            weights = ", ".join(f"{c.account_id}={c.weight}" for c in tier)
            say(f"{where}: priority {priority} shared by weight ({weights}); this payment's pick: {tier[0].account_id}")
        ordered += tier
    say(f"{where}: chose {ordered[0].account_id}" + (f"; backups in order: {[c.account_id for c in ordered[1:]]}"
                                                     if len(ordered) > 1 else "; no backup"))
    return ordered
