"""Batch payout validation and approval rules (chalicelib/domain/payouts.py)."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from chalicelib.domain.payouts import (
    MAX_ITEMS,
    ApprovalPolicy,
    approval_reasons,
    content_digest,
    transfer_reference,
    validate,
)


def row(n: int, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {"item_ref": f"inv-{n}", "amount": 1000 + n, "payee_account_no": "6225880137000000",
                               "payee_name": "Fujian Tea Growers Co.", "purpose": "goods"}
    return {**base, **changes}


def test_a_valid_batch_gives_its_items_and_totals() -> None:
    items, report = validate([row(1), row(2, payee_bank_name="ICBC Fuzhou", payee_bank_code="102391000017")], "CNY")
    assert report.ok and report.items == 2 and report.total_minor == 1001 + 1002
    assert [item.line for item in items] == [1, 2] and items[1].payee_bank_code == "102391000017"


def test_every_refused_line_is_reported_with_its_field_and_nothing_is_accepted() -> None:
    rows = [row(1), row(2, amount=0), row(3, payee_account_no="12ab"), row(1), row(5, payee_bank_code="123"),
            row(6, payee_name=""), row(7, colour="blue"), row(8, amount="12.50"), row(9, amount=True),
            row(10, payee_bank_name="BOC")]
    items, report = validate(rows, "CNY")
    assert items == [] and not report.ok
    found = {(p.line, p.field) for p in report.problems}
    assert found == {(2, "amount"), (3, "payee_account_no"), (4, "item_ref"), (5, "payee_bank_code"),
                     (5, "payee_bank_name"), (6, "payee_name"), (7, "colour"), (8, "amount"), (9, "amount"),
                     (10, "payee_bank_code")}
    assert "repeats line 1" in next(p.message for p in report.problems if p.line == 4)
    assert report.public()["valid"] is False


def test_size_limits_and_currency() -> None:
    assert validate([], "CNY")[1].problems[0].field == "items"
    _, too_many = validate((row(n) for n in range(MAX_ITEMS + 1)), "CNY")
    assert not too_many.ok and too_many.problems[-1].message.startswith(f"a batch holds at most {MAX_ITEMS}")
    items, full = validate((row(n) for n in range(MAX_ITEMS)), "CNY")
    assert full.ok and len(items) == MAX_ITEMS
    assert validate([row(1)], "XXX")[1].problems[0].field == "currency"


def test_approval_is_needed_for_a_large_item_a_large_batch_or_past_the_daily_limit() -> None:
    policy = ApprovalPolicy(single_threshold_minor=5_000, batch_threshold_minor=20_000, daily_limit_minor=30_000)
    small, _ = validate([row(1, amount=4_999), row(2, amount=4_999)], "CNY")
    assert approval_reasons(policy, small, today_total_minor=0) == []
    large, _ = validate([row(1, amount=5_000)], "CNY")
    assert "single-payment threshold" in approval_reasons(policy, large, 0)[0]
    many, _ = validate([row(n, amount=4_000) for n in range(5)], "CNY")
    assert any("batch threshold" in r for r in approval_reasons(policy, many, 0))
    assert any("daily limit" in r for r in approval_reasons(policy, small, today_total_minor=25_000))


@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=30))
def test_the_digest_tells_batches_apart_and_references_are_bank_safe(amounts: list[int]) -> None:
    items, report = validate([row(n, amount=a) for n, a in enumerate(amounts)], "CNY")
    assert report.ok and report.total_minor == sum(amounts)
    assert content_digest("CNY", items) == content_digest("CNY", list(items))
    changed = [items[0].__class__(**{**items[0].__dict__, "amount_minor": items[0].amount_minor + 1}), *items[1:]]
    assert content_digest("CNY", changed) != content_digest("CNY", items)
    refs = {transfer_reference("pob_x", item.line, attempt) for item in items for attempt in (1, 2)}
    assert len(refs) == 2 * len(items) and all(r.isalnum() and len(r) <= 30 for r in refs)
