"""Routing, as the rest of the hub asks for it: which account takes a payment (with its backups), which methods
the checkout may offer now, and what to offer after a method failed. The decision itself is
``chalicelib/routing/decide.py``; the rules, methods and breaker state are configuration and shared counters.

``choose_account(method, currency, merchant_id)`` keeps its meaning: the account a payment of that method and
currency for that merchant goes to now (rules, gray release and breakers applied; no payer given).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig
from chalicelib.domain.errors import NoChannelAvailable
from chalicelib.domain.value_class import value_class
from chalicelib.routing import methods as methods_mod
from chalicelib.storage import config_repo

# The decision, its breaker counters and the rules are loaded by what routes (a create, the
# checkout's offer); what settles, refunds or reconciles a payment only finds its account (account_or_error).
if TYPE_CHECKING:
    from chalicelib.routing.decide import Context, Plan
    from chalicelib.routing.rules import Failover


def route(ctx: Context) -> Plan:
    """Every account that may take the payment, in the order to try, with the reasons (read-only: no probe)."""
    from chalicelib.routing import health as health_mod
    from chalicelib.routing.decide import plan
    from chalicelib.routing.rules import NO_RULES

    method = methods_mod.resolve(ctx.method)
    stored = config_repo.routing(ctx.merchant_id)
    tracker = health_mod.health()

    def state(account_id: str) -> tuple[str, str]:
        view = tracker.view(account_id)
        return view.state, view.describe()

    return plan(ctx, method, stored.rules if stored else NO_RULES, stored.version if stored else None,
                config_repo.list_channel_accounts(), state)


def failover_policy(merchant_id: str) -> Failover:
    """A merchant without routing rules keeps the create it always had (no cut-off, no retry, no failover):
    failover is something an operator turns on by writing rules, with the time limit they chose."""
    from chalicelib.routing.rules import Failover

    stored = config_repo.routing(merchant_id)
    return stored.rules.failover if stored else Failover(enabled=False)


@value_class
class Admitted:
    """An account a create may be sent to now."""

    account: ChannelAccount
    probe: bool  # this create is the half-open breaker's probe: its outcome closes or reopens it


def admitted(accounts: Iterable[ChannelAccountConfig]) -> Iterator[Admitted]:
    """The plan's accounts that may be sent a create now, in order; a half-open one only to the caller that takes
    its probe. Lazy: a backup is admitted only when failover reaches it."""
    from chalicelib.routing import health as health_mod

    tracker = health_mod.health()
    for config in accounts:
        allowed, probe = tracker.admit(config.account_id)
        if not allowed:
            continue
        account = config_repo.channel_account(config.account_id)
        if account is not None:
            yield Admitted(account, probe)


def choose(ctx: Context) -> tuple[Admitted, Iterator[Admitted], Plan]:
    """The account a create goes to, the backups after it, and the plan (raises NoChannelAvailable)."""
    decided = route(ctx)
    candidates = admitted(decided.accounts)
    first = next(candidates, None)
    if first is None:
        raise NoChannelAvailable(f"no enabled channel account takes {ctx.method} in {ctx.currency} now",
                                 param="method")
    return first, candidates, decided


def choose_account(method: str, currency: str, merchant_id: str) -> ChannelAccount:
    from chalicelib.routing.decide import Context

    first, _, _ = choose(Context(merchant_id=merchant_id, method=method, currency=currency))
    return first.account


def pinned_account(account_id: str, method: str, currency: str, merchant_id: str) -> ChannelAccount:
    """The account a payment must go to whatever routing would choose now, when it can still take the payment at all
    (enabled, offering the method, in the currency, for the merchant; else ``NoChannelAvailable``). Rules, gray
    release and breakers are not consulted: the caller holds something only this account can use (a payer's WeChat
    openid belongs to its appid, and an order under another appid is refused)."""
    from chalicelib.routing.decide import Context, account_refuses

    account = config_repo.channel_account(account_id)
    refusal = "it is not configured" if account is None else account_refuses(
        account.config, Context(merchant_id=merchant_id, method=method, currency=currency),
        methods_mod.resolve(method))
    if account is None or refusal:
        raise NoChannelAvailable(f"channel account {account_id} cannot take {method} in {currency} now: {refusal}",
                                 param="method")
    return account


def observe(account_id: str, *, ok: bool, latency_ms: float, probe: bool = False) -> None:
    from chalicelib.routing import health as health_mod

    health_mod.health().observe(account_id, ok=ok, latency_ms=latency_ms, probe=probe)


# --- what the checkout may offer -----------------------------------------------------------------------------


@value_class
class Offer:
    """A method the checkout page may offer, with the account that would take it."""

    method: str
    channel: str
    account_id: str
    title: dict[str, str]


def offers(merchant_id: str, currency: str, amount: int | None, methods: Iterable[str] | None = None, *,
           payer_id: str | None = None, city: str | None = None, user_groups: tuple[str, ...] = ()) -> list[Offer]:
    """The methods that would be taken now, in the order given (or every known method): a method is offered
    when routing finds an account for it whose breaker is not open. ``methods``: what the merchant allows."""
    from chalicelib.routing.decide import Context

    found = []
    definitions = methods_mod.definitions()
    for method in methods if methods is not None else methods_mod.known_methods():
        if not methods_mod.is_known(method):
            continue
        decided = route(Context(merchant_id=merchant_id, method=method, currency=currency, amount=amount,
                                payer_id=payer_id, city=city, user_groups=user_groups))
        if decided.accounts:
            definition = definitions.get(method)
            found.append(Offer(method, decided.method.channel, decided.accounts[0].account_id,
                               dict(definition.title) if definition else {}))
    return found


def next_offer(merchant_id: str, currency: str, amount: int | None, methods: Iterable[str], failed: Iterable[str],
               **payer: Any) -> Offer | None:
    """After the payer's method failed: the first method still offered that has not failed, preferring another
    channel than the failed ones (a channel that just failed the payer is likely to fail them again)."""
    tried = set(failed)
    available = [o for o in offers(merchant_id, currency, amount, methods, **payer) if o.method not in tried]
    tried_channels = {methods_mod.resolve(m).channel for m in tried if methods_mod.is_known(m)}
    for offer in available:
        if offer.channel not in tried_channels:
            return offer
    return available[0] if available else None


def account_or_error(account_id: str) -> ChannelAccount:
    account = config_repo.channel_account(account_id)
    if account is None:
        raise LookupError(f"channel account {account_id} is not configured")
    return account


def for_method(account: ChannelAccount, method: str) -> ChannelAccount:
    """The account as a configured method places its orders: the method's settings laid over the account's."""
    resolved = methods_mod.resolve(method)
    if not resolved.settings:
        return account
    from chalicelib.config.accounts import ChannelAccount as Account

    config = account.config.model_copy(update={"settings": {**account.config.settings, **resolved.settings}})
    return Account(config, account.secrets)


def callback_url(public_base_url: str, channel: str, account_id: str) -> str:
    return f"{public_base_url}/callbacks/{channel}/{account_id}"


def protocol_method(method: str) -> str:
    """What the attempt records and the channel speaks for ``method`` (itself, unless it is configured)."""
    return methods_mod.resolve(method).protocol_method
