"""The routing decision, pure: rules, gray release, weights, limits, breakers and the explanation."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.routing import gray
from chalicelib.routing.decide import Context, plan
from chalicelib.routing.methods import ResolvedMethod
from chalicelib.routing.rules import RoutingRules

NATIVE = ResolvedMethod("wechat.native", "wechat.native", "wechatpay")


def account(account_id: str, **options: object) -> ChannelAccountConfig:
    return ChannelAccountConfig(account_id=account_id, channel="wechatpay", methods=("wechat.native",),
                                api_base_url="https://api.mch.weixin.qq.com", **options)  # type: ignore[arg-type]


ACCOUNTS = [account("wx-a"), account("wx-b"), account("wx-new"), account("wx-backup", priority=200)]


def healthy(account_id: str) -> tuple[str, str]:
    return "closed", "healthy"


def rules(document: dict) -> RoutingRules:
    return RoutingRules.model_validate(document)


def decide(document: dict, health=healthy, **ctx: object):
    context = Context(**{"merchant_id": "mch_1", "method": "wechat.native", "currency": "CNY", **ctx})  # type: ignore[arg-type]
    return plan(context, NATIVE, rules(document), 3, ACCOUNTS, health)


GRAY_10 = {"rules": [
    {"rule_id": "gray", "methods": ["wechat.native"], "gray": {"percent": 10, "salt": "r1"},
     "candidates": [{"account_id": "wx-new"}]},
    {"rule_id": "main", "methods": ["wechat.*"], "candidates": [{"account_id": "wx-a"}]},
]}


@pytest.mark.parametrize("percent", [1, 10, 25, 50])
def test_a_sticky_percentage_takes_its_share_of_seeded_payers(percent):
    document = {"rules": [{"rule_id": "gray", "methods": ["wechat.native"],
                           "gray": {"percent": percent, "salt": "2026-12"}, "candidates": [{"account_id": "wx-new"}]},
                          {"rule_id": "main", "methods": ["wechat.native"], "candidates": [{"account_id": "wx-a"}]}]}
    payers = [f"user-{random.Random(7).getrandbits(64)}-{i}" for i in range(20_000)]
    chosen = [decide(document, payer_id=p).accounts[0].account_id for p in payers]
    share = chosen.count("wx-new") / len(payers)
    assert abs(share - percent / 100) < 0.01, share  # binomial sd at 50% over 20k payers is 0.35 points


def test_a_payer_stays_in_or_out_until_the_salt_changes():
    payers = [f"payer{i}" for i in range(2000)]
    first = {p: decide(GRAY_10, payer_id=p).rule_id for p in payers}
    assert all(decide(GRAY_10, payer_id=p).rule_id == first[p] for p in payers)  # sticky
    wider = {"rules": [{**GRAY_10["rules"][0], "gray": {"percent": 30, "salt": "r1"}}, GRAY_10["rules"][1]]}
    assert all(decide(wider, payer_id=p).rule_id == "gray" for p in payers if first[p] == "gray")  # only adds
    resalted = {"rules": [{**GRAY_10["rules"][0], "gray": {"percent": 10, "salt": "r2"}}, GRAY_10["rules"][1]]}
    moved = sum(decide(resalted, payer_id=p).rule_id != first[p] for p in payers)
    assert moved > 200  # a new salt is a new draw: about 18% of payers change side


def test_gray_by_city_and_user_group_needs_both():
    document = {"rules": [{"rule_id": "sh-staff", "methods": ["wechat.native"],
                           "gray": {"cities": ["Shanghai"], "user_groups": ["staff"]},
                           "candidates": [{"account_id": "wx-new"}]}], "fallback": True}
    assert decide(document, city="Shanghai", user_groups=("staff", "vip")).rule_id == "sh-staff"
    assert decide(document, city="Beijing", user_groups=("staff",)).rule_id is None
    missed = decide(document, city="Shanghai", user_groups=("vip",))
    assert missed.rule_id is None and any("payer groups ['vip'] not in ['staff']" in line for line in missed.lines)


def test_weights_share_traffic_and_the_next_priority_is_the_backup():
    document = {"rules": [{"rule_id": "split", "methods": ["wechat.native"], "candidates": [
        {"account_id": "wx-a", "weight": 3}, {"account_id": "wx-b", "weight": 1},
        {"account_id": "wx-backup", "priority": 200}]}]}
    decisions = [decide(document, payer_id=f"p{i}") for i in range(8000)]
    share_a = sum(d.accounts[0].account_id == "wx-a" for d in decisions) / len(decisions)
    assert abs(share_a - 0.75) < 0.02
    assert all(d.accounts[-1].account_id == "wx-backup" and len(d.accounts) == 3 for d in decisions)
    assert decide(document, payer_id="p1").accounts[0] == decide(document, payer_id="p1").accounts[0]  # stable


def test_amount_and_currency_limits():
    document = {"rules": [
        {"rule_id": "big", "methods": ["wechat.native"], "min_amount": 100_000, "candidates": [{"account_id": "wx-b"}]},
        {"rule_id": "small", "methods": ["wechat.native"], "currencies": ["CNY"], "max_amount": 99_999,
         "candidates": [{"account_id": "wx-a"}]}], "fallback": False}
    assert decide(document, amount=100_000).rule_id == "big"
    assert decide(document, amount=99_999).rule_id == "small"
    assert decide(document, amount=500, currency="USD").accounts == []  # no rule, no fallback: nothing


def test_an_open_breaker_leaves_the_account_out_and_the_backup_takes_over():
    document = {"rules": [{"rule_id": "main", "methods": ["wechat.native"], "candidates": [
        {"account_id": "wx-a", "priority": 1}, {"account_id": "wx-backup", "priority": 2}]}]}

    def a_is_down(account_id: str) -> tuple[str, str]:
        return ("open", "breaker open: 5 calls, 5 failed") if account_id == "wx-a" else ("closed", "healthy")

    decided = decide(document, health=a_is_down)
    assert [a.account_id for a in decided.accounts] == ["wx-backup"]
    assert "rule main: wx-a left out: breaker open: 5 calls, 5 failed" in decided.lines


def test_the_explanation_names_the_rule_the_account_and_why():
    explained = decide(GRAY_10, payer_id="payer-out").explain()
    assert explained["rule"] in ("gray", "main") and explained["routing_version"] == 3
    lines = "\n".join(explained["why"])  # type: ignore[arg-type]
    assert "routing version 3" in lines and f"chose {explained['chosen']}" in lines
    if explained["rule"] == "main":
        assert "rule gray: skipped, gray release: payer's place" in lines


def test_without_rules_dedicated_accounts_come_first():
    dedicated = account("wx-own", merchant_ids=("mch_1",), priority=500)
    context = Context(merchant_id="mch_1", method="wechat.native", currency="CNY")
    decided = plan(context, NATIVE, RoutingRules(), None, [*ACCOUNTS, dedicated], healthy)
    assert decided.accounts[0].account_id == "wx-own" and decided.accounts[1].account_id == "wx-a"


@pytest.mark.parametrize(("document", "field"), [
    ({"rules": [{"rule_id": "x", "methods": [], "candidates": [{"account_id": "wx-a"}]}]}, "methods"),
    ({"rules": [{"rule_id": "x", "methods": ["a.b"], "candidates": []}]}, "candidates"),
    ({"rules": [{"rule_id": "x", "methods": ["a.b"], "gray": {"percent": 101},
                 "candidates": [{"account_id": "wx-a"}]}]}, "percent"),
    ({"rules": [{"rule_id": "x", "methods": ["a.b"], "gray": {}, "candidates": [{"account_id": "wx-a"}]}]}, "gray"),
    ({"rules": [{"rule_id": "x", "methods": ["a.b"], "currencies": ["XXX"], "candidates": [{"account_id": "wx-a"}]}]},
     "currencies"),
    ({"rules": [{"rule_id": "x", "methods": ["a.b"], "candidates": [{"account_id": "wx-a"}], "oops": 1}]}, "oops"),
])
def test_bad_rules_are_refused_naming_the_field(document, field):
    with pytest.raises(ValidationError) as refused:
        rules(document)
    assert field in str(refused.value)


def test_the_bucket_is_a_stable_hash():
    assert gray.bucket("payer-1", "s") == gray.bucket("payer-1", "s")
    assert 0 <= gray.bucket("payer-1", "s") < gray.BUCKETS
    assert gray.weighted_pick("k", [0, 0]) == -1
