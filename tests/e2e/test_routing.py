"""Routing rules as configuration, end to end: put with the CLI, live within the cache time, explained; the
breaker opening and half-opening on shared counters; what the checkout is offered when a channel is down."""

from __future__ import annotations

import json

import pytest

from chalicelib.config.cache import TtlCache
from chalicelib.routing import health as health_mod
from chalicelib.routing.decide import Context
from chalicelib.routing.health import BreakerPolicy, Health
from chalicelib.service import routing
from chalicelib.storage import config_repo
from payhub_cli.main import main as payhub
from tests.e2e.routing_kit import FakeClock, account_of, put_rules, wechat_accounts
from tests.helpers import make_merchant


@pytest.fixture
def fake_health():
    clock = FakeClock()
    tracker = Health(BreakerPolicy(min_calls=3, failure_rate=0.5, cooldown_s=30, cache_s=0, flush_s=0), clock=clock)
    health_mod.use(tracker)
    yield tracker, clock
    health_mod.use(None)


def test_rules_put_by_the_cli_route_payments_and_explain_says_why(stack, tmp_path, capsys):
    merchant = make_merchant(stack)
    main, new = wechat_accounts(stack, merchant.merchant_id, "wx-main", "wx-new")
    document = {"rules": [
        {"rule_id": "gray-shanghai-staff", "methods": ["wechat.native"],
         "gray": {"cities": ["Shanghai"], "user_groups": ["staff"]}, "candidates": [{"account_id": new}]},
        {"rule_id": "big-orders", "methods": ["wechat.*"], "min_amount": 50_000, "candidates": [{"account_id": new}]},
        {"rule_id": "default", "methods": ["wechat.*"], "candidates": [{"account_id": main}]}]}
    assert put_rules(tmp_path, merchant.merchant_id, document, capsys)["version"] == 1
    assert account_of(merchant.create_payment(amount=1000)) == main
    assert account_of(merchant.create_payment(amount=60_000)) == new
    # the gray release by city: the API's payer carries the city (user groups come from the checkout's payer)
    assert account_of(merchant.create_payment(amount=1000, payer={"city": "Shanghai"})) == main

    assert payhub(["route", "explain", "--merchant", merchant.merchant_id, "--method", "wechat.native",
                   "--amount", "1000", "--city", "Shanghai", "--group", "staff"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["rule"] == "gray-shanghai-staff" and explained["chosen"] == new
    assert explained["routing_version"] == 1 and explained["channel"] == "wechatpay"
    assert f"rule gray-shanghai-staff: chose {new}; no backup" in explained["why"]

    assert payhub(["route", "explain", "--merchant", merchant.merchant_id, "--method", "wechat.native",
                   "--amount", "1000", "--city", "Beijing"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["rule"] == "default" and explained["chosen"] == main
    assert "rule gray-shanghai-staff: skipped, gray release: city 'Beijing' not in ['Shanghai']" in explained["why"]
    assert "rule big-orders: skipped, amount 1000 below min_amount 50000" in explained["why"]

    # a second put is version 2; the history keeps both
    assert put_rules(tmp_path, merchant.merchant_id, {"rules": [document["rules"][2]]}, capsys)["version"] == 2
    assert payhub(["route", "show", "--merchant", merchant.merchant_id, "--history"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)["versions"]] == [1, 2]


def test_bad_rules_are_refused_by_the_cli_naming_the_field(stack, tmp_path, capsys):
    merchant = make_merchant(stack)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rules": [{"rule_id": "x", "methods": ["wechat.native"],
                                          "candidates": [{"account_id": "no-such-account"}]}]}))
    assert payhub(["route", "put", "--merchant", merchant.merchant_id, str(bad)]) == 1
    assert "rules.x.candidates: no channel account 'no-such-account'" in capsys.readouterr().err
    bad.write_text(json.dumps({"rules": [{"rule_id": "x", "methods": ["wechat.native"], "candidates": [
        {"account_id": "wechat-demo", "weight": -1}]}]}))
    assert payhub(["route", "put", "--merchant", merchant.merchant_id, str(bad)]) == 1
    assert "rules.0.candidates.0.weight" in capsys.readouterr().err
    assert config_repo.routing(merchant.merchant_id) is None  # nothing was stored


def test_rules_are_live_within_the_cache_time(stack, monkeypatch):
    """Another function's cache: the new version is not seen while its cached copy is fresh, and is after."""
    merchant = make_merchant(stack)
    first, second = wechat_accounts(stack, merchant.merchant_id, "wx-v1", "wx-v2")
    clock = FakeClock()
    cache: TtlCache[object] = TtlCache(ttl_s=60, clock=clock)
    monkeypatch.setattr(config_repo, "_cache", cache)

    def rules_for(account_id: str):
        from chalicelib.routing.rules import RoutingRules

        return RoutingRules.model_validate({"rules": [{"rule_id": "only", "methods": ["wechat.native"],
                                                       "candidates": [{"account_id": account_id}]}]})

    config_repo.put_routing(merchant.merchant_id, rules_for(first))
    assert routing.choose_account("wechat.native", "CNY", merchant.merchant_id).account_id == first
    # the operator's put happens in another process: this function's cache is not told
    monkeypatch.setattr(cache, "invalidate", lambda key=None: None)
    config_repo.put_routing(merchant.merchant_id, rules_for(second))
    clock.advance(59)
    assert routing.choose_account("wechat.native", "CNY", merchant.merchant_id).account_id == first
    clock.advance(2)  # past the cache time: the new version is live
    assert routing.choose_account("wechat.native", "CNY", merchant.merchant_id).account_id == second


def test_the_breaker_opens_on_failures_and_half_opens_for_one_probe(stack, fake_health):
    tracker, clock = fake_health
    merchant = make_merchant(stack)
    flaky, backup = wechat_accounts(stack, merchant.merchant_id, "wx-flaky", "wx-spare")
    config_repo.put_routing(merchant.merchant_id, _two_tier(flaky, backup))
    ctx = Context(merchant_id=merchant.merchant_id, method="wechat.native", currency="CNY")

    routing.observe(flaky, ok=True, latency_ms=120)
    routing.observe(flaky, ok=False, latency_ms=3000)
    assert tracker.view(flaky).state == "closed"  # 1 of 2 failed: too few calls to judge
    routing.observe(flaky, ok=False, latency_ms=3000)
    assert tracker.view(flaky).state == "open"  # 2 of 3 failed
    assert routing.choose_account("wechat.native", "CNY", merchant.merchant_id).account_id == backup
    why = routing.route(ctx).explain()["why"]
    assert any(line.startswith(f"rule tiers: {flaky} left out: breaker open") for line in why), why

    # a second function reads the same counters and breaker: it agrees
    other = Health(tracker.policy, clock=clock)
    assert other.view(flaky).state == "open" and other.view(flaky).stats.errors == 2

    clock.advance(31)  # the cooldown is over: half-open, and exactly one caller gets the probe
    assert tracker.view(flaky).state == "half_open"
    assert tracker.admit(flaky) == (True, True)
    assert other.admit(flaky) == (False, False)
    routing.observe(flaky, ok=False, latency_ms=3000, probe=True)  # the probe failed: open again
    assert tracker.view(flaky).state == "open"
    clock.advance(31)
    first, _, _ = routing.choose(ctx)
    assert first.account.account_id == flaky and first.probe  # the probe goes to the half-open account
    routing.observe(flaky, ok=True, latency_ms=150, probe=True)
    assert tracker.view(flaky).state == "closed"
    routing.observe(flaky, ok=False, latency_ms=3000)  # failures before the close do not count again
    assert tracker.view(flaky).state == "closed"


def test_a_channel_that_is_down_is_not_offered_and_the_next_method_is(stack, channel_account, fake_health):
    tracker, _ = fake_health
    merchant = make_merchant(stack)
    (only,) = wechat_accounts(stack, merchant.merchant_id, "wx-only")
    alipay = channel_account("alipay", account_id="alipay-offers", merchant_ids=(merchant.merchant_id,))
    config_repo.put_routing(merchant.merchant_id, _rules({"rules": [
        {"rule_id": "wechat", "methods": ["wechat.*"], "candidates": [{"account_id": only}]},
        {"rule_id": "alipay", "methods": ["alipay.*"], "candidates": [{"account_id": alipay.account_id}]}],
        "fallback": False}))
    allowed = ["wechat.native", "alipay.qr", "unionpay.gateway"]
    offered = routing.offers(merchant.merchant_id, "CNY", 1000, allowed)
    assert [o.method for o in offered] == ["wechat.native", "alipay.qr"]  # no UnionPay account: not offered
    assert routing.next_offer(merchant.merchant_id, "CNY", 1000, allowed, ["wechat.native"]).method == "alipay.qr"

    for _ in range(3):
        routing.observe(only, ok=False, latency_ms=3000)
    assert tracker.view(only).state == "open"
    assert [o.method for o in routing.offers(merchant.merchant_id, "CNY", 1000, allowed)] == ["alipay.qr"]
    assert routing.next_offer(merchant.merchant_id, "CNY", 1000, allowed, ["alipay.qr"]) is None


def _rules(document):
    from chalicelib.routing.rules import RoutingRules

    return RoutingRules.model_validate(document)


def _two_tier(first: str, second: str):
    return _rules({"rules": [{"rule_id": "tiers", "methods": ["wechat.native"], "candidates": [
        {"account_id": first, "priority": 1}, {"account_id": second, "priority": 2}]}]})
