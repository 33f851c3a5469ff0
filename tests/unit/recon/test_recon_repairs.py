"""Repair rules, on fakes: what a run does about each class of difference, and what it never does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from chalicelib.channels.base import (
    PaymentOutcome,
    PaymentStatus,
    RefundOutcome,
    RefundStatus,
    StatementKind,
    StatementRow,
)
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.models import Attempt, Payment, Refund
from chalicelib.domain.money import Money
from chalicelib.domain.states import AttemptState, PaymentState, RefundState
from chalicelib.recon.model import Discrepancy, DiscrepancyKind, FieldDiff, HubRecord
from chalicelib.recon.repairs import HubOps, ItemStatus, Repairer
from chalicelib.service.outcomes import Applied

BEIJING = timezone(timedelta(hours=8))
WHEN = datetime(2024, 5, 19, 12, tzinfo=BEIJING)
PAY, REF = StatementKind.PAYMENT, StatementKind.REFUND
ACCOUNT = ChannelAccount(ChannelAccountConfig(account_id="wechat-test", channel="wechatpay", methods=("wechat.native",),
                                              api_base_url="https://api.test.invalid"), ChannelSecrets({}))


def attempt(attempt_id: str = "att_1", *, account_id: str = "wechat-test", status: str = "pending") -> Attempt:
    return Attempt(attempt_id=attempt_id, payment_id="pay_1", merchant_id="mch_1", channel="wechatpay",
                   account_id=account_id, method="wechat.native", amount=1000, currency="CNY",
                   status=AttemptState(status), version=1, created_at="t", updated_at="t", expires_at="t")


def payment(succeeded_attempt_id: str | None = "att_1", status: str = "succeeded") -> Payment:
    return Payment(payment_id="pay_1", merchant_id="mch_1", merchant_order_no="o1", amount=1000, currency="CNY",
                   description="d", method="wechat.native", status=PaymentState(status), version=2, created_at="t",
                   updated_at="t", expires_at="t", succeeded_attempt_id=succeeded_attempt_id)


def refund(refund_id: str = "re_1", *, status: str = "processing", account_id: str = "wechat-test") -> Refund:
    return Refund(refund_id=refund_id, payment_id="pay_1", attempt_id="att_1", merchant_id="mch_1",
                  channel="wechatpay", account_id=account_id, amount=300, currency="CNY",
                  status=RefundState(status), version=1, created_at="t", updated_at="t", merchant_refund_no="r1")


def row(kind: StatementKind = PAY, object_id: str = "att_1", status: str = "succeeded", amount: int = 1000) -> StatementRow:
    return StatementRow(kind=kind, object_id=object_id, channel_ref="wx", amount=Money(amount, "CNY"), status=status,
                        occurred_at=WHEN, line=2)


def record(kind: StatementKind = PAY, object_id: str = "att_1", status: str = "succeeded",
           amount: int = 1000) -> HubRecord:
    return HubRecord(kind=kind, object_id=object_id, channel_ref="wx", amount=Money(amount, "CNY"), status=status,
                     occurred_at=WHEN)


@dataclass
class FakeChannel:
    payment: PaymentStatus | Exception = field(
        default_factory=lambda: PaymentStatus(PaymentOutcome.SUCCEEDED, "SUCCESS", "wx", Money(1000, "CNY"), WHEN))
    refund: RefundStatus | Exception = field(
        default_factory=lambda: RefundStatus(RefundOutcome.SUCCEEDED, "SUCCESS", "wxr", Money(300, "CNY")))
    asked: list[str] = field(default_factory=list)
    references: list[dict[str, Any]] = field(default_factory=list)  # the channel references each call was given

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, *,
              channel_order_ref: str | None = None) -> PaymentStatus:
        self.asked.append(f"query {attempt_id}")
        self.references.append({"channel_order_ref": channel_order_ref})
        if isinstance(self.payment, Exception):
            raise self.payment
        return self.payment

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, *, attempt_id: str | None = None,
                     channel_refund_id: str | None = None, channel_order_ref: str | None = None,
                     created_at: datetime | None = None) -> RefundStatus:
        self.asked.append(f"query_refund {refund_id}")
        self.references.append({"attempt_id": attempt_id, "channel_refund_id": channel_refund_id,
                                "channel_order_ref": channel_order_ref, "created_at": created_at})
        if isinstance(self.refund, Exception):
            raise self.refund
        return self.refund


@dataclass
class FakeHub:
    attempts: dict[str, Attempt] = field(default_factory=lambda: {"att_1": attempt()})
    payments: dict[str, Payment] = field(default_factory=lambda: {"pay_1": payment()})
    refunds: dict[str, Refund] = field(default_factory=lambda: {"re_1": refund()})
    applied: Applied = Applied.APPLIED
    refund_after: str | None = "succeeded"  # the refund's status once applied
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def ops(self) -> HubOps:
        return HubOps(get_attempt=self.attempts.get, get_payment=self.payments.get, get_refund=self._get_refund,
                      apply_attempt_status=self._apply_attempt, apply_refund_status=self._apply_refund,
                      hold_settlement=self._hold)

    def _get_refund(self, refund_id: str) -> Refund | None:
        return self.refunds.get(refund_id)

    def _apply_attempt(self, attempt_id: str, status: PaymentStatus, *, source: str) -> Applied:
        self.calls.append(("apply_attempt", (attempt_id, status.outcome, source)))
        self.applied_status = status
        return self.applied

    def _apply_refund(self, refund_id: str, status: RefundStatus, *, source: str, known: Refund, audit: str) -> Applied:
        self.calls.append(("apply_refund", (refund_id, status.outcome, source, audit)))
        if self.applied is Applied.APPLIED and self.refund_after:
            self.refunds[refund_id] = self.refunds[refund_id].evolve(status=RefundState(self.refund_after))
        return self.applied

    def _hold(self, attempt: Attempt, *, reason: str, run_id: str, channel_status: str) -> bool:
        self.calls.append(("hold", (attempt.attempt_id, run_id, channel_status)))
        return True


def repair(d: Discrepancy, hub: FakeHub, channel: FakeChannel) -> Any:
    return Repairer(ACCOUNT, channel, "rr_20240519_wechat-test", hub.ops()).repair(d)  # type: ignore[arg-type]


def channel_only(r: StatementRow) -> Discrepancy:
    return Discrepancy(DiscrepancyKind.CHANNEL_ONLY, r.kind, r.object_id, (FieldDiff("status", None, r.status),), row=r)


def hub_only(rec: HubRecord) -> Discrepancy:
    return Discrepancy(DiscrepancyKind.HUB_ONLY, rec.kind, rec.object_id, (FieldDiff("status", rec.status, None),),
                       record=rec)


# --- the channel has money the hub did not record -----------------------------------------------------------


def test_channel_only_success_is_confirmed_by_query_then_recorded_through_the_state_machine() -> None:
    hub, channel = FakeHub(), FakeChannel()
    outcome = repair(channel_only(row()), hub, channel)
    assert outcome.status is ItemStatus.REPAIRED and "merchant notified" in outcome.action
    assert channel.asked == ["query att_1"]
    assert hub.calls == [("apply_attempt", ("att_1", PaymentOutcome.SUCCEEDED, "recon"))]


def test_a_late_success_the_merchant_refuses_is_refunded_automatically() -> None:
    hub = FakeHub(payments={"pay_1": payment(succeeded_attempt_id=None, status="closed")})
    outcome = repair(channel_only(row()), hub, FakeChannel())
    assert outcome.status is ItemStatus.REPAIRED and "refunded automatically" in outcome.action


def test_status_difference_where_the_channel_succeeded_is_repaired_like_channel_only() -> None:
    hub, d = FakeHub(), Discrepancy(DiscrepancyKind.STATUS, PAY, "att_1", (FieldDiff("status", "closed", "succeeded"),),
                                    row=row(), record=record(status="closed"))
    assert repair(d, hub, FakeChannel()).status is ItemStatus.REPAIRED
    assert hub.calls[0][0] == "apply_attempt"


@pytest.mark.parametrize("answer", [PaymentStatus(PaymentOutcome.NOT_FOUND, "ORDER_NOT_EXIST"),
                                    PaymentStatus(PaymentOutcome.CLOSED, "CLOSED")])
def test_a_statement_success_the_query_denies_goes_to_a_person(answer: PaymentStatus) -> None:
    hub = FakeHub()
    outcome = repair(channel_only(row()), hub, FakeChannel(payment=answer))
    assert outcome.status is ItemStatus.NEEDS_REVIEW and answer.raw_status in outcome.action
    assert hub.calls == []


def test_money_for_an_order_the_hub_never_had_cannot_be_credited() -> None:
    hub, channel = FakeHub(), FakeChannel()
    outcome = repair(channel_only(row(object_id="att_ghost")), hub, channel)
    assert outcome.status is ItemStatus.NEEDS_REVIEW and channel.asked == [] and hub.calls == []


def test_an_attempt_of_another_account_is_not_touched() -> None:
    hub = FakeHub(attempts={"att_1": attempt(account_id="wechat-other")})
    assert repair(channel_only(row()), hub, FakeChannel()).status is ItemStatus.NEEDS_REVIEW
    assert hub.calls == []


@pytest.mark.parametrize(("applied", "status"), [(Applied.NO_CHANGE, ItemStatus.RESOLVED),
                                                 (Applied.DUPLICATE, ItemStatus.RESOLVED),
                                                 (Applied.MISMATCH, ItemStatus.NEEDS_REVIEW)])
def test_what_the_state_machine_answers_decides_the_item(applied: Applied, status: ItemStatus) -> None:
    assert repair(channel_only(row()), FakeHub(applied=applied), FakeChannel()).status is status


def test_a_channel_row_that_did_not_succeed_moved_no_money() -> None:
    hub, channel = FakeHub(), FakeChannel()
    outcome = repair(channel_only(row(status="revoked")), hub, channel)
    assert outcome.status is ItemStatus.RESOLVED and channel.asked == [] and hub.calls == []


# --- the hub has money the channel does not list ------------------------------------------------------------


@pytest.mark.parametrize("answer", [PaymentStatus(PaymentOutcome.NOT_FOUND, "ORDER_NOT_EXIST"),
                                    PaymentStatus(PaymentOutcome.CLOSED, "CLOSED"),
                                    PaymentStatus(PaymentOutcome.PENDING, "NOTPAY")])
def test_hub_only_success_the_channel_does_not_have_is_held(answer: PaymentStatus) -> None:
    hub = FakeHub(attempts={"att_1": attempt(status="succeeded")})
    outcome = repair(hub_only(record()), hub, FakeChannel(payment=answer))
    assert outcome.status is ItemStatus.NEEDS_REVIEW and "settlement held" in outcome.action
    assert hub.calls == [("hold", ("att_1", "rr_20240519_wechat-test", answer.raw_status))]
    assert outcome.details["settlement_hold"] is True


def test_hub_only_success_the_channel_confirms_is_the_statements_fault_and_nothing_is_held() -> None:
    hub = FakeHub(attempts={"att_1": attempt(status="succeeded")})
    outcome = repair(hub_only(record()), hub, FakeChannel())
    assert outcome.status is ItemStatus.NEEDS_REVIEW and "omits it" in outcome.action
    assert hub.calls == []


def test_a_statement_row_revoked_for_a_hub_success_checks_the_channel() -> None:
    hub = FakeHub(attempts={"att_1": attempt(status="succeeded")})
    d = Discrepancy(DiscrepancyKind.STATUS, PAY, "att_1", (FieldDiff("status", "succeeded", "revoked"),),
                    row=row(status="revoked"), record=record())
    confirmed = repair(d, hub, FakeChannel())
    assert confirmed.status is ItemStatus.NEEDS_REVIEW and "lists it as revoked" in confirmed.action
    denied = repair(d, hub, FakeChannel(payment=PaymentStatus(PaymentOutcome.CLOSED, "REVOKED")))
    assert "settlement held" in denied.action and hub.calls[-1][0] == "hold"


# --- what is never changed automatically ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", [DiscrepancyKind.AMOUNT, DiscrepancyKind.CURRENCY, DiscrepancyKind.FEE,
                                  DiscrepancyKind.DUPLICATE_ROW])
def test_amount_currency_fee_and_duplicates_go_to_a_person_untouched(kind: DiscrepancyKind) -> None:
    hub, channel = FakeHub(), FakeChannel()
    d = Discrepancy(kind, PAY, "att_1", (FieldDiff(str(kind), "x", "y"),), row=row(amount=1001), record=record())
    outcome = repair(d, hub, channel)
    assert outcome.status is ItemStatus.NEEDS_REVIEW
    assert channel.asked == [] and hub.calls == []


def test_a_channel_that_cannot_be_asked_leaves_the_item_to_retry() -> None:
    hub = FakeHub()
    outcome = repair(channel_only(row()), hub, FakeChannel(payment=ChannelError("timeout", retryable=True)))
    assert outcome.status is ItemStatus.RETRY and hub.calls == []


# --- refunds ------------------------------------------------------------------------------------------------


def test_channel_only_refund_success_is_queried_and_applied_with_an_audit_record() -> None:
    hub, channel = FakeHub(), FakeChannel()
    outcome = repair(channel_only(row(kind=REF, object_id="re_1", amount=300)), hub, channel)
    assert outcome.status is ItemStatus.REPAIRED and outcome.details["refund_status"] == "succeeded"
    assert channel.asked == ["query_refund re_1"]
    ((name, (refund_id, result, source, audit)),) = hub.calls
    assert (name, refund_id, result, source) == ("apply_refund", "re_1", RefundOutcome.SUCCEEDED, "recon")
    assert "rr_20240519_wechat-test" in audit


def test_the_channel_is_asked_with_the_references_the_hub_recorded() -> None:
    recorded = attempt().evolve(channel_order_ref="wx_prepay_1")
    stamped = refund().evolve(channel_refund_id="5030000000", created_at="2024-05-19T04:00:00+00:00")
    hub, channel = FakeHub(attempts={"att_1": recorded}, refunds={"re_1": stamped}), FakeChannel()
    repair(channel_only(row()), hub, channel)
    repair(channel_only(row(kind=REF, object_id="re_1", amount=300)), hub, channel)
    assert channel.references == [
        {"channel_order_ref": "wx_prepay_1"},
        {"attempt_id": "att_1", "channel_refund_id": "5030000000", "channel_order_ref": "wx_prepay_1",
         "created_at": datetime(2024, 5, 19, 4, tzinfo=UTC)},
    ]


def test_refund_the_channel_does_not_know_goes_to_a_person() -> None:
    hub = FakeHub(refunds={"re_1": refund(status="succeeded")})
    answer = RefundStatus(RefundOutcome.NOT_FOUND, "RESOURCE_NOT_EXISTS")
    outcome = repair(hub_only(record(kind=REF, object_id="re_1", amount=300)), hub, FakeChannel(refund=answer))
    assert outcome.status is ItemStatus.NEEDS_REVIEW and hub.calls == []


def test_refund_shown_processing_on_the_statement_that_since_succeeded_is_resolved() -> None:
    hub = FakeHub(refunds={"re_1": refund(status="succeeded")}, applied=Applied.NO_CHANGE)
    d = Discrepancy(DiscrepancyKind.STATUS, REF, "re_1", (FieldDiff("status", "succeeded", "processing"),),
                    row=row(kind=REF, object_id="re_1", status="processing", amount=300),
                    record=record(kind=REF, object_id="re_1", amount=300))
    assert repair(d, hub, FakeChannel()).status is ItemStatus.RESOLVED


def test_refund_hub_success_the_statement_omits_but_the_channel_confirms_goes_to_a_person() -> None:
    hub = FakeHub(refunds={"re_1": refund(status="succeeded")}, applied=Applied.NO_CHANGE)
    outcome = repair(hub_only(record(kind=REF, object_id="re_1", amount=300)), hub, FakeChannel())
    assert outcome.status is ItemStatus.NEEDS_REVIEW and "omits it" in outcome.action


def test_refund_the_hub_recorded_failed_but_the_channel_paid_goes_to_a_person() -> None:
    hub = FakeHub(refunds={"re_1": refund(status="failed")}, applied=Applied.NO_CHANGE)
    outcome = repair(channel_only(row(kind=REF, object_id="re_1", amount=300)), hub, FakeChannel())
    assert outcome.status is ItemStatus.NEEDS_REVIEW and "failed" in outcome.action


@pytest.mark.parametrize("refunds", [{}, {"re_1": refund(account_id="wechat-other")}])
def test_refund_unknown_on_this_account_goes_to_a_person(refunds: dict[str, Refund]) -> None:
    hub, channel = FakeHub(refunds=refunds), FakeChannel()
    outcome = repair(channel_only(row(kind=REF, object_id="re_1", amount=300)), hub, channel)
    assert outcome.status is ItemStatus.NEEDS_REVIEW and channel.asked == []


@pytest.mark.parametrize("answer", [PaymentStatus(PaymentOutcome.PROCESSING, "USERPAYING"),
                                    PaymentStatus(PaymentOutcome.REQUIRES_CONFIRMATION, "APPROVED")])
def test_hub_only_success_still_in_flight_at_the_channel_is_asked_again_not_held(answer: PaymentStatus) -> None:
    hub = FakeHub(attempts={"att_1": attempt(status="succeeded")})
    outcome = repair(hub_only(record()), hub, FakeChannel(payment=answer))
    assert outcome.status is ItemStatus.RETRY and not [call for call in hub.calls if call[0] == "hold"]


def test_a_repaired_success_is_booked_on_the_day_the_statement_says_the_money_moved() -> None:
    hub = FakeHub()
    no_time = PaymentStatus(PaymentOutcome.SUCCEEDED, "SUCCESS", "wx", Money(1000, "CNY"))  # no success time
    outcome = repair(channel_only(row()), hub, FakeChannel(payment=no_time))
    assert outcome.status is ItemStatus.REPAIRED
    assert hub.applied_status.paid_at == WHEN
