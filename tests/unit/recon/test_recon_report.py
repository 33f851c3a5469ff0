"""Report files: the CSV of differences and the self-contained HTML summary with its SVG chart."""

from __future__ import annotations

import csv
import io
from typing import Any

from chalicelib.recon.report import CSV_COLUMNS, differences_csv, summary_html

RUN: dict[str, Any] = {
    "run_id": "rr_20240519_wechat-demo", "account_id": "wechat-demo", "channel": "wechatpay", "day": "2024-05-19",
    "status": "completed", "unresolved": 2, "finished_at": "2024-05-20T02:31:00.000Z",
    "statement": {"key": "statements/wechatpay/wechat-demo/2024-05-19/x", "sha256": "ab" * 32, "size_bytes": 1234},
    "totals": {"statement_rows": 3, "hub_records": 3, "matched": 1, "items": 3,
               "by_currency": {"CNY": {"statement_settled": 150050, "ledger_clearing": 140050}}},
}
ITEMS: list[dict[str, Any]] = [
    {"run_id": RUN["run_id"], "kind": "amount", "object_kind": "payment", "object_id": "att_1", "status": "needs_review",
     "amount_minor": 8889, "currency": "CNY", "reasons": [{"field": "amount", "hub": "88.88", "channel": "88.89"}],
     "action": "amounts differ"},
    {"run_id": RUN["run_id"], "kind": "channel_only", "object_kind": "payment", "object_id": "<script>alert(1)</script>",
     "status": "repaired", "amount_minor": 100, "currency": "CNY", "reasons": [], "action": "recorded, \"quoted\", ok"},
    {"run_id": RUN["run_id"], "kind": "ledger_mismatch", "object_kind": "ledger", "object_id": "wechat-demo:CNY",
     "status": "needs_review", "amount_minor": -10000, "currency": "CNY", "reasons": [], "action": "see"},
]


def test_csv_has_one_row_per_difference_with_major_units() -> None:
    text = differences_csv(ITEMS).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r[CSV_COLUMNS.index("amount")] for r in rows[1:]] == ["88.89", "1.00", "-100.00"]
    assert rows[1][CSV_COLUMNS.index("reasons")] == "amount: hub 88.88 / channel 88.89"
    assert rows[2][CSV_COLUMNS.index("action")] == 'recorded, "quoted", ok'  # quoting round-trips


def test_html_summary_has_totals_and_an_inline_chart_and_escapes_everything() -> None:
    page = summary_html(RUN, ITEMS).decode()
    assert "<svg" in page and "<rect" in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "1500.50" in page and "1400.50" in page  # statement settled and ledger, in yuan
    assert "ledger_mismatch" in page and "needs_review" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from anywhere


def test_a_clean_day_says_so() -> None:
    assert "No differences." in summary_html(RUN, []).decode()
    assert differences_csv([]).decode("utf-8-sig").strip() == ",".join(CSV_COLUMNS)
