"""decide() for a checkout session's payment, which can hold several attempts: a failed attempt leaves it open,
and money on an attempt the payer switched away from is a late success under the merchant's policy."""

from __future__ import annotations

import pytest

from chalicelib.channels.base import PaymentOutcome
from chalicelib.domain.decisions import decide
from chalicelib.domain.states import AttemptState, PaymentState
from tests.unit.domain.test_decisions import make_attempt, make_payment

P, A, Out = PaymentState, AttemptState, PaymentOutcome


def session_payment(status: PaymentState = P.PENDING, current: str = "att_2"):
    return make_payment(status, current_attempt_id=current).evolve(session_id="cs_1")


@pytest.mark.parametrize("policy", ["refund", "accept"])
def test_a_failed_attempt_leaves_a_session_open(policy):
    plan = decide(session_payment(current="att_1"), make_attempt(A.PENDING), Out.FAILED, policy)
    assert plan.attempt_to is A.FAILED and plan.payment_to is None and not plan.capture


def test_a_failed_attempt_still_fails_a_plain_payment():
    plan = decide(make_payment(P.PENDING), make_attempt(A.PENDING), Out.FAILED, "refund")
    assert plan.attempt_to is A.FAILED and plan.payment_to is P.FAILED


def test_the_current_attempt_of_a_session_closing_closes_the_payment():
    plan = decide(session_payment(current="att_1"), make_attempt(A.PENDING), Out.CLOSED, "refund")
    assert plan.payment_to is P.CLOSED


def test_late_success_on_a_switched_attempt_is_refunded_under_refund():
    plan = decide(session_payment(current="att_2"), make_attempt(A.CLOSED), Out.SUCCEEDED, "refund")
    assert plan.attempt_to is A.SUCCEEDED and plan.payment_to is None
    assert plan.capture and plan.auto_refund and plan.reason == "late_success_refunded"


def test_late_success_on_a_switched_attempt_is_taken_under_accept():
    plan = decide(session_payment(current="att_2"), make_attempt(A.CLOSED), Out.SUCCEEDED, "accept")
    assert plan.payment_to is P.SUCCEEDED and plan.capture and not plan.auto_refund


def test_success_on_the_current_attempt_of_a_session_is_the_payments_success():
    plan = decide(session_payment(current="att_1"), make_attempt(A.PENDING), Out.SUCCEEDED, "refund")
    assert plan.payment_to is P.SUCCEEDED and plan.capture and not plan.auto_refund


def test_a_second_success_after_a_session_is_paid_goes_back():
    paid = session_payment(P.SUCCEEDED, current="att_2")
    plan = decide(paid, make_attempt(A.CLOSED), Out.SUCCEEDED, "accept")
    assert plan.payment_to is None and plan.auto_refund


def test_a_plain_payment_keeps_its_rule_for_a_replaced_attempt():
    """Outside sessions nothing changed: a success on a replaced (closed, not current) attempt of an open payment
    is the payment's success, as before."""
    plan = decide(make_payment(P.PENDING, current_attempt_id="att_2"), make_attempt(A.CLOSED), Out.SUCCEEDED,
                  "refund")
    assert plan.payment_to is P.SUCCEEDED and not plan.auto_refund
