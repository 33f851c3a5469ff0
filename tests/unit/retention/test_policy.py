"""Retention per record kind: money records never below five years, defaults above it, nothing still movable
archived, and exactly the settled records of the kinds the policy names chosen by the sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.retention import policy, sweep

NOW = datetime(2030, 6, 1, tzinfo=UTC)
OLD = (NOW - timedelta(days=500)).isoformat()
RECENT = (NOW - timedelta(days=10)).isoformat()


def test_money_records_and_the_audit_trail_default_to_ten_years_and_evidence_too():
    kept = policy.from_values()
    for kind in ("payments", "refunds", "ledger", "audit", "recon_evidence"):
        assert kept.retention_days[kind] >= 10 * 365, kind
    assert kept.hot_days == 400 and kept.lock_mode == "GOVERNANCE"
    assert kept.retain_until("payments", NOW) == NOW + timedelta(days=kept.retention_days["payments"])


@pytest.mark.parametrize(("values", "message"), [
    ({"payments": 1000}, r"retention.payments: 1000 days is below the five-year floor"),
    ({"ledger": 5 * 365}, r"retention.ledger: .* below the five-year floor"),  # five years needs its leap days
    ({"refunds": "ten years"}, r"retention.refunds: 'ten years' is not a positive number"),
    ({"hot_days": 90}, r"hot_days: 90 would archive records a channel may still refund"),
    ({"events": 300}, r"retention.events: 300 days is not longer than hot_days"),
    ({"invoices": 4000}, r"unknown record kind\(s\) \['invoices'\]"),
    ({"lock_mode": "NONE"}, r"lock_mode"),
])
def test_a_policy_that_would_lose_records_is_refused_naming_the_parameter(values, message):
    with pytest.raises(ValueError, match=message):
        policy.from_values(values)


def test_a_stage_may_keep_longer_and_events_shorter(monkeypatch):
    monkeypatch.setenv("PAYHUB_RETENTION", '{"payments": 5000, "events": 500, "lock_mode": "COMPLIANCE"}')
    kept = policy.current()
    assert (kept.retention_days["payments"], kept.retention_days["events"], kept.lock_mode) == (5000, 500, "COMPLIANCE")


def item(pk: str, sk: str, **fields: object) -> dict[str, object]:
    raw: dict[str, object] = {"pk": {"S": pk}, "sk": {"S": sk}}
    for name, value in fields.items():
        raw[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    return raw


CUTOFF = NOW - timedelta(days=400)


@pytest.mark.parametrize(("raw", "kind"), [
    (item("PAY#pay_1", "PAYMENT", status="succeeded", updated_at=OLD, amount_refund_pending=0), "payments"),
    (item("PAY#pay_1", "PAYMENT", status="closed", updated_at=OLD), "payments"),
    (item("ATT#att_1", "ATTEMPT", status="failed", updated_at=OLD), "payments"),
    (item("RE#re_1", "REFUND", status="succeeded", updated_at=OLD), "refunds"),
    (item("EVT#evt_1", "EVENT", topic="webhooks", delivery_status="delivered", created_at=OLD), "events"),
    (item("EVT#evt_3", "EVENT", topic="refunds", created_at=OLD), "events"),  # an internal command, published
    (item("EVT#evt_1", "DLV#1", at=OLD), "events"),
    (item("AUDIT#att_1", f"{OLD}#aud_1", source="recon"), "audit"),
    # still movable, still acted on, or too young: stays hot
    (item("PAY#pay_2", "PAYMENT", status="pending", updated_at=OLD), None),
    (item("PAY#pay_3", "PAYMENT", status="succeeded", updated_at=OLD, amount_refund_pending=100), None),
    (item("PAY#pay_4", "PAYMENT", status="succeeded", updated_at=OLD, settlement_hold="x"), None),
    (item("ATT#att_2", "ATTEMPT", status="succeeded", updated_at=OLD, sync_shard="0"), None),
    (item("RE#re_2", "REFUND", status="processing", updated_at=OLD), None),
    (item("EVT#evt_2", "EVENT", topic="webhooks", delivery_status="retrying", created_at=OLD), None),
    (item("EVT#evt_4", "EVENT", topic="refunds", created_at=OLD, outbox_shard="0"), None),  # not yet published
    (item("PAY#pay_5", "PAYMENT", status="succeeded", updated_at=RECENT), None),
    (item("AUDIT#att_1", f"{RECENT}#aud_2"), None),
    # never archived: guards, dedupe, cards, the sweep's own cursor, pointers
    (item("MORD#mch_1#1001", "UNIQUE", created_at=OLD), None),
    (item("CB#wechatpay#wx#EV1", "CALLBACK", created_at=OLD), None),
    (item("CARD#tok", "CARD", created_at=OLD), None),
    (item("ARC#PAY#pay_1", "PAYMENT", archived_at=OLD), None),
    (item("PAY#pay_6", "PAYMENT", status="succeeded"), None),  # no time at all: never guessed
])
def test_the_sweep_chooses_only_settled_records_past_the_hot_window(raw, kind):
    assert sweep.archivable(raw, CUTOFF) == kind
