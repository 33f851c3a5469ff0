"""Rule documents and their evaluation, with no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.states import PaymentState, payment_can
from chalicelib.risk import compiled as compiled_module
from chalicelib.risk.compiled import CompiledDocument, compiled_for
from chalicelib.risk.counters import Snapshot, Subject, digest, summarize
from chalicelib.risk.decide import Context, build_features
from chalicelib.risk.rules import RuleDocumentError, parse_document


def rule(rule_id: str, expr: str, action: str, **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "expr": expr, "action": action, "mode": "enforce", **extra}


def evaluate(rules: list[dict[str, Any]], features: dict[str, Any], *, merchant: str = "m1",
             method: str = "wechat.native", operation: str = "create"):
    document = CompiledDocument(1, parse_document({"rules": rules}))
    return document.evaluate(document.applicable(operation, merchant, method), features)


@pytest.mark.parametrize(("document", "field"), [
    ({"rules": [{"id": "a", "expr": "true", "action": "block"}]}, "rules[0].action"),
    ({"rules": [{"id": "a", "expr": "true", "action": "challenge"}]}, "rules[0].step_up"),
    ({"rules": [{"id": "a", "expr": "true", "action": "deny", "colour": "red"}]}, "rules[0]"),
    ({"rules": [{"id": "a", "expr": "amount >", "action": "deny"}]}, "rules[0].expr"),
    ({"rules": [{"id": "a", "expr": "true", "action": "deny", "score": 101}]}, "rules[0].score"),
    ({"rules": [{"id": "a", "expr": "true", "action": "deny", "mode": "maybe"}]}, "rules[0].mode"),
    ({"rules": [{"id": "a", "expr": "true", "action": "deny", "on_error": "ajar"}]}, "rules[0].on_error"),
    ({"rules": [rule("a", "true", "deny"), rule("a", "false", "deny")]}, "rules"),
    ({"limits": {"per_method": {"wechat.native": -1}}}, "limits.per_method.wechat.native"),
    ({"blocklist": {"email": ["x"]}}, "blocklist"),
    ({"providers": {"risk_budget_ms": 0}}, "providers.risk_budget_ms"),
])
def test_a_bad_document_is_refused_naming_the_field(document, field):
    with pytest.raises(RuleDocumentError) as refused:
        parse_document(document)
    assert refused.value.field == field


def test_cel_cannot_reach_python(tmp_path):
    marker = tmp_path / "touched"
    attempt = f"__import__('pathlib').Path('{marker}').touch() == null"
    outcome = evaluate([rule("a", attempt, "deny", on_error="open")], {})
    assert outcome.action == "allow" and not marker.exists()  # an unknown function, never Python
    outcome = evaluate([rule("a", "size(lists.blocked_by) > 0", "deny", on_error="open")], {"lists": {}})
    assert outcome.action == "allow" and outcome.fired == ()


def test_deny_beats_allow_which_beats_challenge_and_review():
    features = {"amount": 10}
    assert evaluate([rule("r", "true", "review"), rule("c", "true", "challenge", step_up=["sms"])],
                    features).action == "challenge"
    assert evaluate([rule("c", "true", "challenge", step_up=["sms"]), rule("ok", "true", "allow")],
                    features).action == "allow"
    assert evaluate([rule("ok", "true", "allow"), rule("d", "true", "deny")], features).action == "deny"


def test_scores_add_up_to_at_most_100():
    outcome = evaluate([rule("a", "true", "review", score=70), rule("b", "true", "review", score=50),
                        {**rule("s", "true", "deny", score=30), "mode": "shadow"}], {})
    assert outcome.score == 100


def test_shadow_rules_are_recorded_never_enforced():
    outcome = evaluate([{**rule("s", "amount > 5", "deny"), "mode": "shadow"}], {"amount": 10})
    assert outcome.action == "allow" and outcome.shadow_action == "deny"
    assert [f.rule_id for f in outcome.shadow] == ["s"] and outcome.fired == ()


def test_a_rule_that_cannot_be_decided_fails_open_or_closed():
    open_rule = rule("o", "provider.score > 80", "deny", on_error="open")
    closed = rule("c", "provider.score > 80", "deny", on_error="closed")
    assert evaluate([open_rule], {}).action == "allow"
    denied = evaluate([closed], {})
    assert denied.action == "deny" and "provider" in (denied.fired[0].error or "")
    assert evaluate([closed], {"provider": {"score": 10.0}}).action == "allow"
    not_bool = evaluate([rule("n", "amount", "deny", on_error="closed")], {"amount": 3})
    assert not_bool.action == "deny" and "not bool" in (not_bool.fired[0].error or "")


def test_rules_apply_per_merchant_method_and_operation():
    rules = [rule("m", "true", "deny", scope={"merchant_ids": ["m2"]}),
             rule("w", "true", "review", scope={"methods": ["alipay.qr"]}),
             rule("r", "true", "deny", operations=["refund"])]
    assert evaluate(rules, {}).action == "allow"
    assert evaluate(rules, {}, merchant="m2").action == "deny"
    assert evaluate(rules, {}, method="alipay.qr").action == "review"
    assert evaluate(rules, {}, operation="refund").action == "deny"


def test_challenge_offers_the_step_ups_every_firing_rule_accepts():
    both = evaluate([rule("a", "true", "challenge", step_up=["sms", "webauthn"]),
                     rule("b", "true", "challenge", step_up=["webauthn", "face"])], {})
    assert both.step_up == ("webauthn",)
    disjoint = evaluate([rule("a", "true", "challenge", step_up=["sms"]),
                         rule("b", "true", "challenge", step_up=["face"])], {})
    assert disjoint.step_up == ("face",)  # none shared: the strongest asked for


def test_each_version_is_compiled_once_and_old_ones_are_dropped():
    document = parse_document({"rules": [rule("a", "true", "deny")]})
    first = compiled_for(10_001, document)
    assert compiled_for(10_001, document) is first
    for version in range(10_002, 10_002 + compiled_module.KEEP_VERSIONS):
        compiled_for(version, document)
    assert 10_001 not in compiled_module._compiled


def test_windows_sum_buckets_across_shards_and_midnight():
    now = datetime(2026, 3, 2, 0, 7, tzinfo=UTC)  # bucket 1 of today
    subject = Subject(user_id="u1", ip="1.2.3.4")
    payer = digest("payer", "u1")
    items = [
        {"pk": f"RVEL#payer#{payer}#0", "sk": "D20260302", "n1": 2, "a1": 300, "n0": 1, "a0": 100},
        {"pk": f"RVEL#payer#{payer}#1", "sk": "D20260302", "n1": 1, "a1": 50},
        # yesterday 23:55 (bucket 287): 10 minutes ago counts in 1h and 24h, not in 10m
        {"pk": f"RVEL#payer#{payer}#1", "sk": "D20260301", "n287": 4, "a287": 400, "r287": 100},
        # yesterday 00:00: more than 24 h ago
        {"pk": f"RVEL#payer#{payer}#0", "sk": "D20260301", "n0": 9, "a0": 900},
        {"pk": f"RVEL#ip#{payer}#0", "sk": "D20260302", "n1": 7},  # another dimension's digest: ignored
        {"pk": f"RPROF#{payer}#0", "sk": "PROFILE", "c:Shanghai": 3, "d:abc": 1},
        {"pk": f"RPROF#{payer}#1", "sk": "PROFILE", "c:Shanghai": 1, "c:Beijing": 1},
    ]
    snapshot = summarize(subject, items, now)
    velocity = snapshot.velocity["payer"]
    assert (velocity["count_10m"], velocity["count_1h"], velocity["count_24h"]) == (4, 8, 8)
    assert (velocity["amount_10m"], velocity["amount_24h"], velocity["refunded_24h"]) == (450, 850, 100)
    assert snapshot.velocity["ip"]["count_10m"] == 0
    assert snapshot.cities == {"Shanghai": 4, "Beijing": 1}


def test_features_unusual_city_new_device_lists_limits_and_refund_ratio():
    document = parse_document({"blocklist": {"ip": ["6.6.6.6"]}, "allowlist": {"user_id": ["vip"]},
                               "limits": {"per_merchant": {"m1": 5000}, "per_method": {"alipay.qr": 100}}})
    snapshot = Snapshot(velocity={"payer": {"amount_24h": 1000, "refunded_24h": 200}},
                        cities={"Shanghai": 5, "Beijing": 1}, devices={digest("device", "known"): 3})
    ctx = Context("refund", "m1", "wechat.native", 6000, "CNY",
                  Subject("vip", "new-phone", None, "6.6.6.6", "Urumqi"), "pay_1", captured=10000, refunded=1000)
    features = build_features(ctx, document, snapshot)
    assert features["city"] == {"name": "Urumqi", "usual": ["Shanghai"], "unusual": True}
    assert features["device"]["new"] is True and features["payer"]["history"] == 6
    assert features["lists"]["blocked_by"] == ["ip"] and features["lists"]["allowed_by"] == ["user_id"]
    assert features["limits"]["over"] is True
    assert features["refund"]["ratio"] == pytest.approx(0.7)
    assert features["refund"]["payer_ratio_24h"] == pytest.approx(6.2)
    first = build_features(Context("create", "m1", "x", 1, "CNY", Subject("u", "d", None, None, "Shanghai"), "p"),
                           document, Snapshot())
    assert first["city"]["unusual"] is False  # no history: nothing is unusual yet


def test_step_up_states():
    held = PaymentState.REQUIRES_STEP_UP
    assert payment_can(held, PaymentState.PENDING) and payment_can(held, PaymentState.FAILED)
    assert payment_can(held, PaymentState.CLOSED)
    assert not payment_can(held, PaymentState.SUCCEEDED) and not payment_can(held, PaymentState.PROCESSING)
    # A checkout session's payment is pending until its payer picks a method; the attempt a rule challenges holds it.
    assert payment_can(PaymentState.PENDING, held) and not payment_can(PaymentState.PROCESSING, held)
