"""decide() for the two newer kinds of news: REQUIRES_CONFIRMATION (the hub must complete the attempt at the
channel) and success that was settled offline (e-CNY), which is credited whatever happened to the payment."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.channels.base import PaymentOutcome
from chalicelib.domain.decisions import Plan, decide
from tests.unit.domain.test_decisions import A, P, make_attempt, make_payment

Out = PaymentOutcome


def plan_for(payment_status: P, attempt_status: A, outcome: Out, policy: str = "refund", *, current: bool = True,
             offline: bool = False) -> Plan:
    payment = make_payment(payment_status, current_attempt_id="att_1" if current else "att_2")
    return decide(payment, make_attempt(attempt_status), outcome, policy, settled_offline=offline)


# --- REQUIRES_CONFIRMATION ---------------------------------------------------------------------------------


@pytest.mark.parametrize("payment_status", [P.PENDING, P.PROCESSING])
def test_awaiting_confirmation_moves_to_processing_and_asks_status_sync_to_confirm(payment_status: P) -> None:
    plan = plan_for(payment_status, A.PENDING, Out.REQUIRES_CONFIRMATION)
    expected_payment = P.PROCESSING if payment_status is P.PENDING else None
    assert plan == Plan(attempt_to=A.PROCESSING, payment_to=expected_payment, confirm=True,
                        reason="requires_confirmation")


def test_a_repeat_while_processing_changes_nothing_and_asks_nothing() -> None:
    assert plan_for(P.PROCESSING, A.PROCESSING, Out.REQUIRES_CONFIRMATION).is_noop


@pytest.mark.parametrize(("payment_status", "current"), [
    (P.PENDING, False),  # the payer switched method: an old attempt is not captured
    (P.CLOSED, True), (P.FAILED, True), (P.SUCCEEDED, True), (P.SUCCEEDED, False),
])
def test_no_confirmation_for_an_attempt_that_is_not_the_live_one_of_an_open_payment(payment_status: P,
                                                                                    current: bool) -> None:
    plan = plan_for(payment_status, A.PENDING, Out.REQUIRES_CONFIRMATION, current=current)
    assert plan.attempt_to is A.PROCESSING and plan.payment_to is None
    assert not plan.confirm and not plan.capture


def test_awaiting_confirmation_is_never_success() -> None:
    for payment_status, attempt_status, policy, current in itertools.product(P, A, ("refund", "accept"), (True, False)):
        plan = plan_for(payment_status, attempt_status, Out.REQUIRES_CONFIRMATION, policy, current=current)
        assert plan.attempt_to in (None, A.PROCESSING)
        assert plan.payment_to in (None, P.PROCESSING)
        assert not plan.capture and not plan.auto_refund


# --- settled offline -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("payment_status", "attempt_status"), [(P.CLOSED, A.CLOSED), (P.FAILED, A.FAILED),
                                                                (P.CLOSED, A.PENDING)])
@pytest.mark.parametrize("policy", ["refund", "accept", ""])
def test_offline_settlement_is_credited_on_a_closed_or_failed_payment_whatever_the_policy(
        payment_status: P, attempt_status: A, policy: str) -> None:
    plan = plan_for(payment_status, attempt_status, Out.SUCCEEDED, policy, offline=True)
    assert (plan.attempt_to, plan.payment_to, plan.capture, plan.auto_refund) == (A.SUCCEEDED, P.SUCCEEDED, True, False)
    assert plan.reason == "settled_offline_credited"
    assert str(payment_status) in plan.note and f"late_success_policy={policy}" in plan.note


def test_the_same_news_online_is_still_a_refunded_late_success() -> None:
    plan = plan_for(P.CLOSED, A.CLOSED, Out.SUCCEEDED, "refund", offline=False)
    assert plan.auto_refund and plan.payment_to is None and plan.reason == "late_success_refunded"


def test_offline_settlement_of_an_open_payment_is_a_plain_success() -> None:
    plan = plan_for(P.PENDING, A.PENDING, Out.SUCCEEDED, offline=True)
    assert (plan.payment_to, plan.reason, plan.note) == (P.SUCCEEDED, "success", "")


def test_offline_settlement_after_another_attempt_paid_is_a_double_success() -> None:
    plan = plan_for(P.SUCCEEDED, A.CLOSED, Out.SUCCEEDED, offline=True, current=False)
    assert plan.auto_refund and plan.payment_to is None and plan.reason == "double_success"


def test_offline_settlement_reported_twice_is_credited_once() -> None:
    assert plan_for(P.SUCCEEDED, A.SUCCEEDED, Out.SUCCEEDED, offline=True).is_noop
