"""T+1 reconciliation end to end: the hub over HTTP, the WeChat Pay sandbox's statements, moto's DynamoDB/S3.

Each test gets its own merchant and its own WeChat account (a fresh mchid, dedicated to that merchant), so its
statement holds only its own payments. Differences are injected the way they happen: a callback that never
came (``no_callback``), an order the channel lost (``forget``), and statement faults. Runs are started in
process (``run_day``), through the recon queue and its worker, and through the CLI; results are read through
the operator API.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
import requests

from chalicelib.channels.base import PaymentOutcome, PaymentStatus
from chalicelib.domain.errors import Conflict, DayNotOver, NotFound
from chalicelib.domain.ledger import channel_fee_account, journal_id, merchant_payable_account, settlement_hold_account
from chalicelib.recon import fanout, repo
from chalicelib.recon.matching import NEAR_MIDNIGHT
from chalicelib.recon.run import RunResult, StatementNotReady, run_day
from chalicelib.service import audit as operator_audit
from chalicelib.service import settlement
from chalicelib.service.operators import create_operator_key
from chalicelib.service.outcomes import apply_attempt_status
from chalicelib.storage import ledger_repo, state_repo
from chalicelib.storage.aws import client
from tests.helpers import MerchantClient, make_merchant, morning_after, wait_for

BEIJING = timezone(timedelta(hours=8))
NO_POOL = timedelta(0)  # tests outside the pool's: nothing waits, whatever the time of day the suite runs


def today() -> date:
    return datetime.now(BEIJING).date()


def reconcile(account_id: str, day: date, **options: Any) -> RunResult:
    """``run_day`` as the next morning's run would do it: the day's payments are made today, in the test."""
    return run_day(account_id, day, now=morning_after(day), **options)


@dataclass
class Recon:
    """One test's merchant, its dedicated WeChat account at the sandbox, and helpers around them."""

    stack: Any
    merchant: MerchantClient
    account_id: str
    mchid: str
    drain: Callable[[], Any]

    # --- the channel side ----------------------------------------------------------------------------------

    def sandbox(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.request(method, f"{self.stack.sandbox_url}{path}", json=body, timeout=10)

    def fault(self, kind: str, day: date | None = None, **options: Any) -> None:
        answer = self.sandbox("POST", "/_sandbox/statement-faults",
                              {"day": (day or today()).isoformat(), "kind": kind, "mchid": self.mchid, **options})
        assert answer.status_code == 200, answer.text

    def callback_fault(self, mode: str) -> None:
        assert self.sandbox("POST", "/_sandbox/faults", {"mode": mode}).status_code == 200

    # --- the merchant side ---------------------------------------------------------------------------------

    def payment(self, amount: int = 1000, *, paid: bool = True, wait: bool = True, **pay: Any) -> dict[str, Any]:
        created = self.merchant.create_payment(amount=amount)
        if paid:
            answer = self.sandbox("POST", "/_sandbox/pay", {"out_trade_no": created["attempt_id"], "mchid": self.mchid,
                                                           **pay})
            assert answer.status_code == 200, answer.text
            if wait:
                wait_for(lambda: self.merchant.get(f"/v1/payments/{created['id']}")["status"] == "succeeded")
        return created

    def refund(self, payment: dict[str, Any], amount: int, *, wait: bool = True) -> dict[str, Any]:
        answer = self.merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                                    {"amount": amount, "merchant_refund_no": secrets.token_hex(6)})
        assert answer.status_code == 201, answer.text
        self.drain()
        if wait:
            wait_for(lambda: self.merchant.get(f"/v1/refunds/{answer.json()['id']}")["status"] == "succeeded")
        return dict(answer.json())

    # --- reconciliation ------------------------------------------------------------------------------------

    def run(self, day: date | None = None, *, near_midnight: timedelta = NO_POOL) -> RunResult:
        return reconcile(self.account_id, day or today(), near_midnight=near_midnight)

    def items(self, day: date | None = None) -> dict[str, dict[str, Any]]:
        """The run's items by ``<object id>:<kind>``."""
        stored = repo.items(repo.run_id(self.account_id, day or today()))
        return {f"{item['object_id']}:{item['kind']}": item for item in stored.values()}


@pytest.fixture
def recon(stack: Any, channel_account: Any, drain: Any) -> Iterator[Recon]:
    merchant = make_merchant(stack)
    mchid = str(1_900_000_000 + secrets.randbelow(99_999_999))
    account = channel_account("wechatpay", account_id=f"wx-recon-{secrets.token_hex(4)}", mchid=mchid,
                              merchant_ids=(merchant.merchant_id,), priority=1)
    yield Recon(stack, merchant, account.account_id, mchid, drain)
    requests.delete(f"{stack.sandbox_url}/_sandbox/statement-faults?mchid={mchid}", timeout=10)
    drain()


def journals(reference: str, purpose: str) -> dict[str, Any] | None:
    item = client("dynamodb").get_item(TableName=state_repo.ledger_table(), ConsistentRead=True, Key={
        "pk": {"S": f"JRN#{journal_id(purpose, reference)}"}, "sk": {"S": "JOURNAL"}}).get("Item")
    return item


def audit(object_id: str) -> list[dict[str, Any]]:
    items, _ = state_repo.query("pk = :pk", {":pk": f"AUDIT#{object_id}"})
    return items


def state_of(result: RunResult) -> tuple[Any, ...]:
    """What must be the same after a re-run: the run's outcome and every item with its status and action."""
    items = repo.items(result.run_id)
    run = repo.get_run(*repo.parse_run_id(result.run_id)) or {}
    return (run["status"], run["unresolved"], run["items_by_status"], run["totals"],
            sorted((key, item["status"], item.get("action")) for key, item in items.items()))


# --- a day without differences ----------------------------------------------------------------------------------


def test_a_clean_day_matches_every_payment_and_refund_and_the_ledger_agrees(recon: Recon) -> None:
    first = recon.payment(8888)
    recon.payment(100)
    recon.refund(first, 888)
    result = recon.run()
    assert result.ok and result.unresolved == 0 and recon.items() == {}
    totals = result.run["totals"]
    assert (totals["statement_rows"], totals["hub_records"], totals["matched"]) == (3, 3, 3)
    # Fees at 0.6 %, per row rounded: 53 + 1 on the payments, 5 returned with the refund. The run books them:
    # clearing moves by what the rows settle net of their fees, and the ledger agrees.
    assert totals["by_currency"]["CNY"] == {"statement_payments": 8988, "statement_refunds": 888,
                                            "statement_settled": 8100, "statement_fees": 49,
                                            "statement_net_settlement": None, "ledger_clearing": 8051, "matched": 8100}
    fee_account = channel_fee_account(recon.account_id, "CNY")
    assert ledger_repo.balance(fee_account) == 49
    # Each payment's fee was booked with its capture, from the account's schedule; the day's statement added only
    # what the schedule does not predict (the 5 the refund gave back).
    accrued = ledger_repo.journal("channel_fee", first["attempt_id"])
    assert accrued is not None and [e["amount"] for e in accrued["entries"]] == [53, -53]
    statement = result.run["statement"]
    stored = client("s3").get_object(Bucket="payhub-local-recon", Key=statement["key"])["Body"].read()
    assert len(stored) == statement["size_bytes"] and stored.startswith("交易时间".encode())
    again = recon.run()
    assert state_of(again) == state_of(result)
    assert repo.get_run(recon.account_id, today())["executions"] == 2
    assert ledger_repo.balance(fee_account) == 49  # booked once


def test_a_corrected_statement_books_only_the_change_in_fees_once(recon: Recon) -> None:
    recon.payment(5000)
    second = recon.payment(2000)  # fees 30 and 12 at 0.6 %
    fee_account = channel_fee_account(recon.account_id, "CNY")
    assert recon.run().unresolved == 0 and ledger_repo.balance(fee_account) == 42
    recon.fault("fee", out_trade_no=second["attempt_id"], fee=20)  # the channel now says it took 20, not 12
    corrected = recon.run()
    assert ledger_repo.balance(fee_account) == 50
    assert ledger_repo.day_movement(fee_account, today().isoformat(), consistent=True) == 50
    # The ledger follows the statement's fees, so the day still balances; the row's fee differs from the
    # account's schedule, which is left to a person.
    assert corrected.run["items_by_kind"] == {"fee": 1} and corrected.unresolved == 1
    assert corrected.run["totals"]["by_currency"]["CNY"]["ledger_clearing"] == 7000 - 50
    recon.run()
    assert ledger_repo.balance(fee_account) == 50  # the same change is booked once


def test_report_files_and_the_metric_are_published(recon: Recon, published_metrics) -> None:
    recon.payment(500)
    recon.fault("amount", out_trade_no=recon.payment(700)["attempt_id"], delta=1)
    result = recon.run()
    reports = result.run["reports"]
    s3 = client("s3")
    csv_text = s3.get_object(Bucket="payhub-local-recon", Key=reports["csv"])["Body"].read().decode("utf-8-sig")
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("run_id,account_id,day,kind") and len(lines) == 3  # the amount item, the ledger item
    html = s3.get_object(Bucket="payhub-local-recon", Key=reports["html"])["Body"].read().decode()
    assert "<svg" in html and "amount" in html and "ledger_mismatch" in html
    # embedded metric format on stdout (no PutMetricData): per account, and per stage for the alarms
    by_account = {"Stage": "local", "Account": recon.account_id}
    assert published_metrics.values("PayHub/Recon", "UnresolvedDifferences", **by_account) == [2]
    assert published_metrics.values("PayHub/Recon", "UnresolvedDifferences", Stage="local") == [2]
    assert published_metrics.values("PayHub/Recon", "Runs", Stage="local") == [1]
    assert published_metrics.values("PayHub/Recon", "FailedRuns", Stage="local") == [0]


# --- the channel has money the hub did not record ------------------------------------------------------------


def test_a_lost_callback_is_found_confirmed_and_recorded_once(recon: Recon) -> None:
    recon.callback_fault("no_callback")
    payment = recon.payment(1200, wait=False)
    assert recon.merchant.get(f"/v1/payments/{payment['id']}")["status"] == "pending"
    result = recon.run()
    item = recon.items()[f"{payment['attempt_id']}:channel_only"]
    assert item["status"] == "repaired" and "merchant notified" in item["action"]
    assert recon.merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"
    assert journals(payment["attempt_id"], "payment_captured") is not None
    assert [a["source"] for a in audit(payment["attempt_id"])] == ["recon"]
    recon.drain()
    assert recon.stack.receiver.types_for(payment["id"]) == ["payment.succeeded"]
    assert result.unresolved == 0
    again = recon.run()  # the hub now agrees: matched, and the repair is not repeated
    assert again.run["totals"]["matched"] == result.run["totals"]["matched"] + 1
    assert state_of(again)[:2] == state_of(result)[:2] and state_of(again)[-1] == state_of(result)[-1]
    assert [a["source"] for a in audit(payment["attempt_id"])] == ["recon"]
    assert recon.items()[f"{payment['attempt_id']}:channel_only"]["status"] == "repaired"
    recon.drain()
    assert recon.stack.receiver.types_for(payment["id"]) == ["payment.succeeded"]


def test_money_that_arrived_after_the_hub_closed_the_payment_is_refunded_per_merchant_policy(recon: Recon) -> None:
    recon.callback_fault("no_callback")
    payment = recon.payment(900, wait=False)
    # The hub recorded the close first (as an expiry sweep would have) while the payer's money was moving.
    closed = PaymentStatus(PaymentOutcome.CLOSED, "CLOSED")
    assert str(apply_attempt_status(payment["attempt_id"], closed, source="test")) == "applied"
    recon.run()
    item = recon.items()[f"{payment['attempt_id']}:channel_only"]
    assert item["status"] == "repaired" and "refunded automatically" in item["action"]
    recon.drain()
    after = recon.merchant.get(f"/v1/payments/{payment['id']}")
    assert after["status"] == "closed" and after["amount_captured"] == 900
    wait_for(lambda: recon.merchant.get(f"/v1/payments/{payment['id']}")["amount_refunded"] == 900)
    order = recon.sandbox("GET", f"/_sandbox/orders/{payment['attempt_id']}").json()
    assert [r["status"] for r in order["refunds"]] == ["SUCCESS"]


def test_a_refund_whose_callback_was_lost_is_queried_and_recorded(recon: Recon) -> None:
    payment = recon.payment(1000)
    recon.callback_fault("no_callback")
    refund = recon.refund(payment, 400, wait=False)
    assert recon.merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "processing"
    recon.run()
    item = recon.items()[f"{refund['id']}:status"]
    assert item["status"] == "repaired" and item["reasons"] == [
        {"field": "status", "hub": "processing", "channel": "succeeded"}]
    assert recon.merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "succeeded"
    assert journals(refund["id"], "refund_paid") is not None
    assert [a["source"] for a in audit(refund["id"])] == ["recon"]


def test_a_success_row_for_an_order_the_hub_never_heard_of_goes_to_a_person(recon: Recon) -> None:
    recon.payment(300)
    recon.fault("extra_row", out_trade_no="att_neverheardof01", amount=777)
    result = recon.run()
    items = recon.items()
    assert items["att_neverheardof01:channel_only"]["status"] == "needs_review"
    assert items[f"{recon.account_id}:CNY:ledger_mismatch"]["amount_minor"] == -777
    assert result.unresolved == 2


# --- the hub has money the statement lacks ------------------------------------------------------------------


def test_a_payment_the_channel_lost_is_flagged_and_its_settlement_held_once(recon: Recon) -> None:
    kept, lost = recon.payment(500), recon.payment(2500)
    assert recon.sandbox("POST", f"/_sandbox/orders/{lost['attempt_id']}/forget").status_code == 200
    result = recon.run()
    items = recon.items()
    held = items[f"{lost['attempt_id']}:hub_only"]
    assert held["status"] == "needs_review" and "settlement held" in held["action"]
    ledger_item = items[f"{recon.account_id}:CNY:ledger_mismatch"]
    assert ledger_item["amount_minor"] == 2500 and ledger_item["status"] == "needs_review"
    payment = state_repo.get_item({"pk": f"PAY#{lost['id']}", "sk": "PAYMENT"})
    assert payment is not None and payment["settlement_hold"]["attempt_id"] == lost["attempt_id"]
    assert ledger_repo.balance(settlement_hold_account(recon.merchant.merchant_id, "CNY")) == -2500
    assert journals(lost["attempt_id"], "settlement_held") is not None
    assert [a.get("action") for a in audit(lost["attempt_id"])].count("settlement_held") == 1
    assert f"{kept['attempt_id']}:hub_only" not in items
    again = recon.run()
    assert state_of(again) == state_of(result)
    assert ledger_repo.balance(settlement_hold_account(recon.merchant.merchant_id, "CNY")) == -2500
    assert [a.get("action") for a in audit(lost["attempt_id"])].count("settlement_held") == 1

    # An operator who has found the money (the channel paid it after all) releases the hold, once, audited.
    operator = operator_audit.Actor("cli", "ops-recon", "ops-recon")
    payable = ledger_repo.balance(merchant_payable_account(recon.merchant.merchant_id, "CNY"))
    released = settlement.release_hold(operator, lost["attempt_id"], "channel confirmed the payment by phone")
    assert released["amount"] == 2500 and released["status"] == "released"
    assert ledger_repo.balance(settlement_hold_account(recon.merchant.merchant_id, "CNY")) == 0
    assert ledger_repo.balance(merchant_payable_account(recon.merchant.merchant_id, "CNY")) == payable - 2500
    assert "settlement_hold" not in (state_repo.get_item({"pk": f"PAY#{lost['id']}", "sk": "PAYMENT"}) or {})
    with pytest.raises(Conflict):
        settlement.release_hold(operator, lost["attempt_id"], "twice")
    with pytest.raises(NotFound):
        settlement.release_hold(operator, kept["attempt_id"], "never held")
    records, _ = operator_audit.list_records(action="settlement.release", target=lost["attempt_id"])
    assert [r["after"]["reason"] for r in records] == ["channel confirmed the payment by phone"]


def test_a_row_the_statement_dropped_but_the_channel_confirms_is_not_held(recon: Recon) -> None:
    payment = recon.payment(640)
    recon.fault("drop_row", out_trade_no=payment["attempt_id"])
    recon.run()
    item = recon.items()[f"{payment['attempt_id']}:hub_only"]
    assert item["status"] == "needs_review" and "omits it" in item["action"]
    assert state_repo.get_item({"pk": f"PAY#{payment['id']}", "sk": "PAYMENT"}).get("settlement_hold") is None
    assert journals(payment["attempt_id"], "settlement_held") is None


# --- differences a person must look at ------------------------------------------------------------------------


STATEMENT_FAULTS = [  # fault kind, its options, the item's kind, the reason it must give
    ("amount", {"delta": 5}, "amount", {"field": "amount", "hub": "10.00", "channel": "10.05"}),
    ("currency", {"currency": "USD"}, "currency", {"field": "currency", "hub": "CNY", "channel": "USD"}),
    ("fee", {"fee": 9}, "fee", {"field": "fee", "hub": "0.06", "channel": "0.09"}),
    ("status", {"status": "REVOKED"}, "status", {"field": "status", "hub": "succeeded", "channel": "revoked"}),
    ("duplicate_row", {}, "duplicate_row", {"field": "duplicate_of", "hub": None, "channel": "line"}),
]


def test_each_statement_difference_is_classified_with_its_reason_and_changes_nothing(recon: Recon) -> None:
    payments = [recon.payment(1000) for _ in STATEMENT_FAULTS]
    for payment, (kind, options, _, _) in zip(payments, STATEMENT_FAULTS, strict=True):
        recon.fault(kind, out_trade_no=payment["attempt_id"], **options)
    before = [recon.merchant.get(f"/v1/payments/{payment['id']}") for payment in payments]
    result = recon.run()
    items = recon.items()
    for payment, (_, _, item_kind, reason) in zip(payments, STATEMENT_FAULTS, strict=True):
        item = items[f"{payment['attempt_id']}:{item_kind}"]
        assert item["status"] == "needs_review", item
        (found,) = [r for r in item["reasons"] if r["field"] == reason["field"]]
        assert {**found, "channel": found["channel"][:4]} == {**reason, "channel": reason["channel"][:4]}
        assert journals(payment["attempt_id"], "settlement_held") is None
    assert "statement lists it as revoked" in items[f"{payments[3]['attempt_id']}:status"]["action"]
    assert [recon.merchant.get(f"/v1/payments/{payment['id']}") for payment in payments] == before
    # The statement settled 10.05 + 0 (USD row) + 10.00 + 0 (revoked) + 2 x 10.00 in CNY; the ledger 50.00.
    gaps = {key: item["amount_minor"] for key, item in items.items() if item["kind"] == "ledger_mismatch"}
    assert gaps == {f"{recon.account_id}:CNY:ledger_mismatch": 5000 - 4005, f"{recon.account_id}:USD:ledger_mismatch": -1000}
    assert result.unresolved == len(STATEMENT_FAULTS) + 2


def test_a_refund_shown_processing_on_the_statement_is_confirmed_and_resolved(recon: Recon) -> None:
    payment = recon.payment(1000)
    refund = recon.refund(payment, 250)
    recon.fault("status", out_refund_no=refund["id"], status="PROCESSING")
    recon.run()
    item = recon.items()[f"{refund['id']}:status"]
    assert item["status"] == "resolved" and "agree" in item["action"]


# --- a statement that is not one ------------------------------------------------------------------------------


def test_a_malformed_statement_fails_the_run_and_changes_nothing(recon: Recon) -> None:
    recon.callback_fault("no_callback")
    payment = recon.payment(1500, wait=False)
    recon.fault("corrupt")
    failed = recon.run()
    assert not failed.ok and "malformed statement: trade bill line 2" in (failed.failure_reason or "")
    run = repo.get_run(recon.account_id, today())
    assert run["status"] == "failed" and run["failure_reason"] == failed.failure_reason
    assert recon.items() == {}
    assert recon.merchant.get(f"/v1/payments/{payment['id']}")["status"] == "pending"
    assert journals(payment["attempt_id"], "payment_captured") is None
    requests.delete(f"{recon.stack.sandbox_url}/_sandbox/statement-faults?mchid={recon.mchid}", timeout=10)
    repaired = recon.run()
    assert repaired.ok and recon.items()[f"{payment['attempt_id']}:channel_only"]["status"] == "repaired"


# --- the cross-day pool --------------------------------------------------------------------------------------


def test_a_payment_just_before_midnight_listed_the_next_day_waits_in_the_pool_and_pairs(recon: Recon) -> None:
    day, next_day = today() - timedelta(days=1), today()
    payment = recon.payment(4200, paid_at=f"{day.isoformat()}T23:59:58+08:00")
    recon.fault("drop_row", day=day, out_trade_no=payment["attempt_id"])  # the channel cut its day earlier
    recon.fault("extra_row", day=next_day, out_trade_no=payment["attempt_id"], amount=4200,
                occurred_at=f"{next_day.isoformat()} 00:00:01")
    first = reconcile(recon.account_id, day)
    waiting = recon.items(day)[f"{payment['attempt_id']}:hub_only"]
    assert waiting["status"] == "waiting" and first.unresolved == 1
    assert f"{recon.account_id}:CNY:ledger_mismatch" not in recon.items(day)  # the pool explains the gap
    second = reconcile(recon.account_id, next_day)
    assert second.ok and second.unresolved == 0 and recon.items(next_day) == {}
    assert second.run["totals"]["matched"] == 1 and second.run["pool_from"] == day.isoformat()
    resolved = recon.items(day)[f"{payment['attempt_id']}:hub_only"]
    assert resolved["status"] == "resolved" and resolved["action"] == f"matched its counterpart on {next_day}"
    earlier = repo.get_run(recon.account_id, day)  # the earlier run's figures follow
    assert (earlier["unresolved"], earlier["items_by_status"]) == (0, {"resolved": 1})
    assert state_of(reconcile(recon.account_id, next_day)) == state_of(second)


def test_a_day_waits_until_the_day_before_is_reconciled(recon: Recon) -> None:
    """Days close in order: a day before whose statement failed (or is late) holds the next day back, so the
    pool it will leave is neither skipped now nor matched twice later."""
    yesterday = today() - timedelta(days=1)
    recon.fault("corrupt", day=yesterday)
    assert not reconcile(recon.account_id, yesterday).ok
    with pytest.raises(StatementNotReady, match=f"{yesterday} is not reconciled yet"):
        reconcile(recon.account_id, today())
    waiting = repo.get_run(recon.account_id, today())
    assert waiting["status"] == "failed" and waiting["retryable"] is True
    requests.delete(f"{recon.stack.sandbox_url}/_sandbox/statement-faults?mchid={recon.mchid}", timeout=10)
    assert reconcile(recon.account_id, yesterday).ok
    after = reconcile(recon.account_id, today())
    assert after.ok and after.run["pool_from"] == yesterday.isoformat()


def test_an_item_that_waits_three_days_becomes_a_difference(recon: Recon) -> None:
    day = today() - timedelta(days=3)
    recon.fault("extra_row", day=day, out_trade_no="att_lonelynearmidnight", amount=321,
                occurred_at=f"{day.isoformat()} 23:59:50")
    assert reconcile(recon.account_id, day).unresolved == 1
    assert recon.items(day)["att_lonelynearmidnight:channel_only"]["status"] == "waiting"
    result = reconcile(recon.account_id, today())
    assert result.run["pool_from"] == day.isoformat()
    assert recon.items()["att_lonelynearmidnight:channel_only"]["status"] == "needs_review"
    assert recon.items(day)["att_lonelynearmidnight:channel_only"]["status"] == "resolved"
    assert repo.get_run(recon.account_id, day)["unresolved"] == 0 and result.unresolved == 1


def test_an_operator_closes_a_reviewed_difference_once_and_the_run_follows(recon: Recon) -> None:
    recon.fault("amount", out_trade_no=recon.payment(700)["attempt_id"], delta=1)
    result = recon.run()
    assert result.unresolved == 2  # the amount, and the ledger gap it makes
    run_id = result.run_id
    item_id = next(key for key, item in repo.items(run_id).items() if item["kind"] == "amount")
    key = create_operator_key("recon reviewer").api_key
    url = f"{recon.stack.api_url}/v1/recon/runs/{run_id}/items/{quote(item_id, safe='')}/close"  # ids hold '#'
    headers = {"Authorization": f"Bearer {key}"}
    assert requests.post(url, json={}, headers=headers, timeout=10).json()["error"]["param"] == "note"
    closed = requests.post(url, json={"note": "channel confirmed 7.00 by email; their file is wrong"}, headers=headers,
                           timeout=10)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "resolved" and closed.json()["close_note"].startswith("channel confirmed")
    assert repo.get_run(recon.account_id, today())["unresolved"] == 1
    again = requests.post(url, json={"note": "twice"}, headers=headers, timeout=10)
    assert again.status_code == 409
    records, _ = operator_audit.list_records(action="recon.close_item", target=f"{run_id}/{item_id}")
    assert [r["after"]["note"] for r in records] == ["channel confirmed 7.00 by email; their file is wrong"]
    missing = requests.post(url.replace(quote(item_id, safe=""), quote("payment#att_none#amount", safe="")),
                            json={"note": "x"}, headers=headers, timeout=10)
    assert missing.status_code == 404


def test_a_rerun_of_a_day_refreshes_the_days_after_it(recon: Recon) -> None:
    """The day after started from the pool this day left: when a corrected statement no longer has the row that
    was waiting, the next day's run is done again and no longer carries it."""
    day, next_day = today() - timedelta(days=2), today() - timedelta(days=1)
    recon.fault("extra_row", day=day, out_trade_no="att_waitingnearmidnight", amount=555,
                occurred_at=f"{day.isoformat()} 23:59:40")
    assert recon.run(day, near_midnight=NEAR_MIDNIGHT).unresolved == 1
    assert recon.run(next_day, near_midnight=NEAR_MIDNIGHT).run["totals"]["waiting"] == 1  # carried on
    executions = repo.get_run(recon.account_id, next_day)["executions"]
    requests.delete(f"{recon.stack.sandbox_url}/_sandbox/statement-faults?mchid={recon.mchid}", timeout=10)
    corrected = run_day(recon.account_id, day)  # now: both days have ended
    assert corrected.unresolved == 0
    refreshed = repo.get_run(recon.account_id, next_day)
    assert refreshed["executions"] == executions + 1 and refreshed["totals"]["waiting"] == 0


# --- how runs are started -------------------------------------------------------------------------------------


def yesterday_noon() -> str:
    return datetime.combine(today() - timedelta(days=1), datetime.min.time().replace(hour=12),
                            tzinfo=BEIJING).isoformat()


def test_the_recon_queue_worker_runs_a_day_and_refuses_one_not_over(recon: Recon) -> None:
    recon.payment(600, paid_at=yesterday_noon())
    fanout.enqueue(recon.account_id, today() - timedelta(days=1))
    fanout.enqueue(recon.account_id, today())  # a day still running: its statement would be partial
    recon.drain()
    run = repo.get_run(recon.account_id, today() - timedelta(days=1))
    assert run is not None and run["status"] == "completed" and run["totals"]["matched"] == 1
    assert repo.get_run(recon.account_id, today()) is None  # refused before anything was begun or written


def test_a_day_that_has_not_ended_in_beijing_is_refused_before_anything_is_written(recon: Recon) -> None:
    recon.payment(700)
    with pytest.raises(DayNotOver) as refused:
        run_day(recon.account_id, today())
    assert refused.value.param == "day" and refused.value.http_status == 422
    assert repo.get_run(recon.account_id, today()) is None
    just_before = datetime.combine(today(), datetime.max.time(), tzinfo=BEIJING)  # 23:59:59.999999 Beijing
    with pytest.raises(DayNotOver):
        run_day(recon.account_id, today(), now=just_before)
    midnight = datetime.combine(today() + timedelta(days=1), datetime.min.time(), tzinfo=BEIJING)
    assert run_day(recon.account_id, today(), now=midnight).ok  # from the next Beijing midnight on


def test_the_schedule_fans_out_one_message_per_enabled_account_for_yesterday(recon: Recon) -> None:
    from chalicelib.storage import config_repo, outbox

    now = datetime.now(UTC)
    enqueued = fanout.fan_out("wechatpay", now)
    wechat = {c.account_id for c in config_repo.list_channel_accounts() if c.channel == "wechatpay" and c.enabled}
    assert set(enqueued) == wechat and recon.account_id in enqueued
    sqs, url = client("sqs"), outbox.queue_url("recon")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:  # taken off the queue here: running every account's day is not this test's job
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    yesterday = (now.astimezone(BEIJING).date() - timedelta(days=1)).isoformat()
    assert sorted(b["account_id"] for b in bodies) == sorted(enqueued)
    assert {b["day"] for b in bodies} == {yesterday}


def test_the_cli_runs_a_day_shows_progress_and_fails_loudly(recon: Recon, capsys: pytest.CaptureFixture[str]) -> None:
    from payhub_cli.main import main

    day = today() - timedelta(days=1)
    recon.payment(350, paid_at=yesterday_noon())
    assert main(["recon", "run", "--account", recon.account_id, "--date", day.isoformat()]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["status"] == "completed" and summary["totals"]["matched"] == 1
    assert "recon: fetching the wechatpay statement" in captured.err and "completed" in captured.err
    recon.fault("corrupt", day=day)
    assert main(["recon", "run", "--account", recon.account_id, "--date", day.isoformat()]) == 1
    captured = capsys.readouterr()
    assert "malformed statement" in captured.err and json.loads(captured.out)["status"] == "failed"
    assert main(["recon", "run", "--account", recon.account_id, "--date", today().isoformat()]) == 1
    assert "has not ended in Beijing yet" in capsys.readouterr().err
    assert main(["recon", "list", "--account", recon.account_id]) == 0
    assert [run["run_id"] for run in json.loads(capsys.readouterr().out)] == [repo.run_id(recon.account_id, day)]
    assert main(["recon", "run", "--account", "no-such-account", "--date", day.isoformat()]) == 1
    capsys.readouterr()
    assert main(["operator-key", "create", "--name", "cli test"]) == 0
    created = json.loads(capsys.readouterr().out)
    auth = {"Authorization": f"Bearer {created['operator_key']}"}
    assert requests.get(f"{recon.stack.api_url}/v1/recon/runs?limit=1", headers=auth, timeout=10).status_code == 200
    assert main(["operator-key", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert created["key_id"] in {k["key_id"] for k in listed} and created["operator_key"] not in json.dumps(listed)
    assert main(["operator-key", "revoke", created["key_id"]]) == 0
    assert requests.get(f"{recon.stack.api_url}/v1/recon/runs?limit=1", headers=auth, timeout=10).status_code == 401


# --- the operator API ----------------------------------------------------------------------------------------


def test_the_operator_api_lists_runs_and_items_for_operators_only(recon: Recon) -> None:
    payment = recon.payment(990)
    recon.fault("amount", out_trade_no=payment["attempt_id"], delta=-10)
    result = recon.run()
    api = recon.stack.api_url
    key = create_operator_key("e2e").api_key

    def get(path: str, token: str | None = key) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(f"{api}{path}", headers=headers, timeout=10)

    assert get("/v1/recon/runs", None).status_code == 401
    assert get("/v1/recon/runs", recon.merchant.api_key).status_code == 401  # a merchant key is not an operator's
    assert get("/v1/recon/runs", "op_local_" + "x" * 43).status_code == 401
    listed = get(f"/v1/recon/runs?account={recon.account_id}&date={today().isoformat()}").json()
    assert [run["id"] for run in listed["data"]] == [result.run_id] and listed["has_more"] is False
    assert all(run["day"] == today().isoformat() for run in get(f"/v1/recon/runs?date={today()}&limit=5").json()["data"])
    run = get(f"/v1/recon/runs/{result.run_id}").json()
    assert run["object"] == "recon_run" and run["unresolved"] == 2 and "lease" not in run
    html = requests.get(run["reports"]["html"]["url"], timeout=10)
    assert html.status_code == 200 and "<svg" in html.text
    items = get(f"/v1/recon/runs/{result.run_id}/items").json()["data"]
    assert sorted(item["kind"] for item in items) == ["amount", "ledger_mismatch"]
    amount = get(f"/v1/recon/runs/{result.run_id}/items?status=needs_review&limit=1").json()
    assert len(amount["data"]) == 1 and amount["has_more"] is True
    assert get(f"/v1/recon/runs/{result.run_id}/items?status=repaired").json()["data"] == []
    missing = get(f"/v1/recon/runs/rr_20000101_{recon.account_id}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert get("/v1/recon/runs/nonsense").status_code == 400
    assert get("/v1/recon/runs?date=yesterday").status_code == 400


# --- statements in S3 ------------------------------------------------------------------------------------------


def test_a_large_statement_is_streamed_to_s3_in_parts_and_read_back_verified(stack: Any) -> None:
    from chalicelib.recon import statement_store

    chunk = bytes(range(256)) * 256  # 64 KiB
    chunks = [chunk] * (statement_store.PART_BYTES // len(chunk) * 2 + 3)  # two full parts and a short last one
    stored = statement_store.save(iter(chunks), "statements/test/large")
    assert stored.size_bytes == len(chunk) * len(chunks)
    back = b"".join(statement_store.read(stored.key, expected_sha256=stored.sha256))
    assert back == b"".join(chunks)
    with pytest.raises(statement_store.StatementIntegrityError):
        list(statement_store.read(stored.key, expected_sha256="0" * 64))

    def broken() -> Iterator[bytes]:
        yield from chunks[:200]
        raise ConnectionError("the channel hung up")

    with pytest.raises(ConnectionError):
        statement_store.save(broken(), "statements/test/partial")
    s3 = client("s3")
    assert "Contents" not in s3.list_objects_v2(Bucket=statement_store.bucket(), Prefix="statements/test/partial")
    assert s3.list_multipart_uploads(Bucket=statement_store.bucket()).get("Uploads", []) == []
