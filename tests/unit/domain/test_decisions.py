"""decide(): what a channel's news about an attempt does to the attempt, the payment, the ledger and refunds.

Table-driven tests for the combinations that matter, exhaustive invariants over every combination, and a
property test that drives random (duplicate, out-of-order) news through decide() and a tiny in-memory applier.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import PaymentOutcome
from chalicelib.domain.decisions import Plan, decide
from chalicelib.domain.models import Attempt, Payment
from chalicelib.domain.states import AttemptState, PaymentState, attempt_can, payment_can

P, A, Out = PaymentState, AttemptState, PaymentOutcome
POLICIES = ("refund", "accept")
NOW = "2024-01-01T00:00:00.000Z"


def make_payment(status: PaymentState = P.PENDING, current_attempt_id: str | None = "att_1",
                 succeeded_attempt_id: str | None = None) -> Payment:
    return Payment(payment_id="pay_1", merchant_id="mch_1", merchant_order_no="order-1", amount=8888,
                   currency="CNY", description="test", method="wechat.native", status=status, version=1,
                   created_at=NOW, updated_at=NOW, expires_at=NOW, current_attempt_id=current_attempt_id,
                   succeeded_attempt_id=succeeded_attempt_id)


def make_attempt(status: AttemptState = A.PENDING, attempt_id: str = "att_1") -> Attempt:
    return Attempt(attempt_id=attempt_id, payment_id="pay_1", merchant_id="mch_1", channel="wechatpay",
                   account_id="acct_1", method="wechat.native", amount=8888, currency="CNY", status=status,
                   version=1, created_at=NOW, updated_at=NOW, expires_at=NOW)


def run(payment_status: PaymentState, attempt_status: AttemptState, outcome: PaymentOutcome, policy: str,
        current: bool = True) -> Plan:
    payment = make_payment(payment_status, current_attempt_id="att_1" if current else "att_2")
    return decide(payment, make_attempt(attempt_status), outcome, policy)


NOOP = Plan()

# (payment, attempt, outcome, policy, attempt is the payment's current one) -> (attempt_to, payment_to, capture,
# auto_refund, reason)
CASES = [
    # Normal success: the payment succeeds and the money is captured, whichever attempt it came on.
    (P.PENDING, A.PENDING, Out.SUCCEEDED, "refund", True, (A.SUCCEEDED, P.SUCCEEDED, True, False, "success")),
    (P.PROCESSING, A.PROCESSING, Out.SUCCEEDED, "refund", True, (A.SUCCEEDED, P.SUCCEEDED, True, False, "success")),
    (P.PENDING, A.PENDING, Out.SUCCEEDED, "accept", True, (A.SUCCEEDED, P.SUCCEEDED, True, False, "success")),
    (P.PENDING, A.PENDING, Out.SUCCEEDED, "refund", False, (A.SUCCEEDED, P.SUCCEEDED, True, False, "success")),
    (P.PENDING, A.CLOSED, Out.SUCCEEDED, "refund", False, (A.SUCCEEDED, P.SUCCEEDED, True, False, "success")),
    # Second success of an already paid payment: recorded, captured, and given back whatever the policy.
    (P.SUCCEEDED, A.PENDING, Out.SUCCEEDED, "refund", False, (A.SUCCEEDED, None, True, True, "double_success")),
    (P.SUCCEEDED, A.PENDING, Out.SUCCEEDED, "accept", False, (A.SUCCEEDED, None, True, True, "double_success")),
    (P.SUCCEEDED, A.CLOSED, Out.SUCCEEDED, "accept", True, (A.SUCCEEDED, None, True, True, "double_success")),
    (P.SUCCEEDED, A.PROCESSING, Out.SUCCEEDED, "refund", True, (A.SUCCEEDED, None, True, True, "double_success")),
    # Late success after close/fail: refunded under "refund", taken under "accept".
    (P.CLOSED, A.CLOSED, Out.SUCCEEDED, "refund", True, (A.SUCCEEDED, None, True, True, "late_success_refunded")),
    (P.FAILED, A.FAILED, Out.SUCCEEDED, "refund", True, (A.SUCCEEDED, None, True, True, "late_success_refunded")),
    (P.CLOSED, A.PENDING, Out.SUCCEEDED, "refund", True, (A.SUCCEEDED, None, True, True, "late_success_refunded")),
    (P.CLOSED, A.PROCESSING, Out.SUCCEEDED, "refund", False,
     (A.SUCCEEDED, None, True, True, "late_success_refunded")),
    (P.CLOSED, A.CLOSED, Out.SUCCEEDED, "accept", True,
     (A.SUCCEEDED, P.SUCCEEDED, True, False, "late_success_accepted")),
    (P.FAILED, A.FAILED, Out.SUCCEEDED, "accept", True,
     (A.SUCCEEDED, P.SUCCEEDED, True, False, "late_success_accepted")),
    (P.FAILED, A.CLOSED, Out.SUCCEEDED, "accept", False,
     (A.SUCCEEDED, P.SUCCEEDED, True, False, "late_success_accepted")),
    # Anything but "accept" is the safe default: give the money back.
    (P.CLOSED, A.CLOSED, Out.SUCCEEDED, "", True, (A.SUCCEEDED, None, True, True, "late_success_refunded")),
    (P.CLOSED, A.CLOSED, Out.SUCCEEDED, "ACCEPT", True, (A.SUCCEEDED, None, True, True, "late_success_refunded")),
    # Processing / failed / closed news moves the payment only for its current attempt.
    (P.PENDING, A.PENDING, Out.PROCESSING, "refund", True, (A.PROCESSING, P.PROCESSING, False, False, "processing")),
    (P.PENDING, A.PENDING, Out.PROCESSING, "refund", False, (A.PROCESSING, None, False, False, "processing")),
    (P.PENDING, A.PENDING, Out.FAILED, "refund", True, (A.FAILED, P.FAILED, False, False, "failed")),
    (P.PROCESSING, A.PROCESSING, Out.FAILED, "refund", True, (A.FAILED, P.FAILED, False, False, "failed")),
    (P.PENDING, A.PENDING, Out.FAILED, "refund", False, (A.FAILED, None, False, False, "failed")),
    (P.PENDING, A.PENDING, Out.CLOSED, "refund", True, (A.CLOSED, P.CLOSED, False, False, "closed")),
    (P.PROCESSING, A.PROCESSING, Out.CLOSED, "accept", True, (A.CLOSED, P.CLOSED, False, False, "closed")),
    (P.PROCESSING, A.PROCESSING, Out.CLOSED, "refund", False, (A.CLOSED, None, False, False, "closed")),
    # The attempt moves but the payment, already final, stays put.
    (P.SUCCEEDED, A.PENDING, Out.CLOSED, "refund", True, (A.CLOSED, None, False, False, "closed")),
    (P.SUCCEEDED, A.PENDING, Out.FAILED, "refund", True, (A.FAILED, None, False, False, "failed")),
    (P.SUCCEEDED, A.PENDING, Out.PROCESSING, "refund", True, (A.PROCESSING, None, False, False, "processing")),
    (P.CLOSED, A.PENDING, Out.CLOSED, "refund", True, (A.CLOSED, None, False, False, "closed")),
    (P.CLOSED, A.PENDING, Out.FAILED, "refund", True, (A.FAILED, None, False, False, "failed")),
    (P.FAILED, A.PROCESSING, Out.CLOSED, "refund", True, (A.CLOSED, None, False, False, "closed")),
    (P.PROCESSING, A.PENDING, Out.PROCESSING, "refund", True, (A.PROCESSING, None, False, False, "processing")),
]


@pytest.mark.parametrize(("payment_status", "attempt_status", "outcome", "policy", "current", "expected"), CASES)
def test_decide_table(payment_status: PaymentState, attempt_status: AttemptState, outcome: PaymentOutcome,
                      policy: str, current: bool, expected: tuple[object, ...]) -> None:
    plan = run(payment_status, attempt_status, outcome, policy, current)
    attempt_to, payment_to, capture, auto_refund, reason = expected
    assert (plan.attempt_to, plan.payment_to, plan.capture, plan.auto_refund) == (
        attempt_to, payment_to, capture, auto_refund)
    assert plan.reason == reason
    assert not plan.is_noop


# Repeats and news older than what we hold: nothing changes.
NOOP_CASES = [
    (P.SUCCEEDED, A.SUCCEEDED, Out.SUCCEEDED),  # duplicate success: never captured twice
    (P.CLOSED, A.SUCCEEDED, Out.SUCCEEDED),  # duplicate late success: never refunded twice
    (P.SUCCEEDED, A.SUCCEEDED, Out.PROCESSING),
    (P.SUCCEEDED, A.SUCCEEDED, Out.FAILED),
    (P.SUCCEEDED, A.SUCCEEDED, Out.CLOSED),
    (P.PROCESSING, A.PROCESSING, Out.PROCESSING),
    (P.FAILED, A.FAILED, Out.FAILED),
    (P.FAILED, A.FAILED, Out.CLOSED),
    (P.FAILED, A.FAILED, Out.PROCESSING),
    (P.CLOSED, A.CLOSED, Out.CLOSED),
    (P.CLOSED, A.CLOSED, Out.FAILED),
    (P.CLOSED, A.CLOSED, Out.PROCESSING),
]


@pytest.mark.parametrize(("payment_status", "attempt_status", "outcome"), NOOP_CASES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("current", [True, False])
def test_repeated_or_stale_news_changes_nothing(payment_status: PaymentState, attempt_status: AttemptState,
                                                outcome: PaymentOutcome, policy: str, current: bool) -> None:
    plan = run(payment_status, attempt_status, outcome, policy, current)
    assert plan.is_noop
    assert not plan.capture and not plan.auto_refund


ALL_COMBINATIONS = list(itertools.product(P, A, Out, POLICIES, [True, False]))


@pytest.mark.parametrize(("payment_status", "attempt_status", "policy", "current"),
                         list(itertools.product(P, A, POLICIES, [True, False])))
@pytest.mark.parametrize("outcome", [Out.PENDING, Out.NOT_FOUND])
def test_pending_and_not_found_never_change_anything(payment_status: PaymentState, attempt_status: AttemptState,
                                                     outcome: PaymentOutcome, policy: str, current: bool) -> None:
    assert run(payment_status, attempt_status, outcome, policy, current) == Plan(
        reason=f"attempt {attempt_status} ignores {outcome}")


def test_invariants_over_every_combination() -> None:
    for payment_status, attempt_status, outcome, policy, current in ALL_COMBINATIONS:
        plan = run(payment_status, attempt_status, outcome, policy, current)
        where = (payment_status, attempt_status, outcome, policy, current, plan)
        if plan.attempt_to is None:
            assert plan == Plan(reason=plan.reason), where  # a noop carries no side effect
            continue
        assert attempt_can(attempt_status, plan.attempt_to), where
        expected = A.PROCESSING if outcome is Out.REQUIRES_CONFIRMATION else AttemptState(str(outcome))
        assert plan.attempt_to == expected, where
        # Completing at the channel is asked for exactly when the live attempt of an open payment awaits it.
        assert plan.confirm is (outcome is Out.REQUIRES_CONFIRMATION and current
                                and payment_status in (P.PENDING, P.PROCESSING)), where
        if plan.payment_to is not None:
            assert payment_can(payment_status, plan.payment_to), where
        assert payment_status is not P.SUCCEEDED or plan.payment_to is None, where
        # Captured exactly when the money arrived; kept only if this attempt makes the payment succeed.
        assert plan.capture is (plan.attempt_to is A.SUCCEEDED), where
        if plan.capture:
            assert plan.auto_refund is (plan.payment_to is not P.SUCCEEDED), where
        else:
            assert not plan.auto_refund, where
        if plan.payment_to is not None and plan.payment_to is not P.SUCCEEDED:
            assert current, where  # only the current attempt can fail, close or advance the payment
        if outcome is Out.SUCCEEDED and payment_status in (P.CLOSED, P.FAILED) and policy == "refund":
            assert plan.auto_refund and plan.payment_to is None, where


def test_decide_is_pure_and_repeatable() -> None:
    payment, attempt = make_payment(P.CLOSED), make_attempt(A.CLOSED)
    first = decide(payment, attempt, Out.SUCCEEDED, "refund")
    assert decide(payment, attempt, Out.SUCCEEDED, "refund") == first
    assert payment == make_payment(P.CLOSED) and attempt == make_attempt(A.CLOSED)


# --- Property: random news through decide() and an in-memory applier --------------------------------------


@dataclass
class World:
    """What the service would hold after writing each plan in its conditional transaction."""

    policy: str
    payment: Payment
    attempts: dict[str, Attempt]
    captures: list[str] = field(default_factory=list)
    auto_refunds: list[str] = field(default_factory=list)

    def apply(self, attempt_id: str, outcome: PaymentOutcome) -> Plan:
        payment, attempt = self.payment, self.attempts[attempt_id]
        plan = decide(payment, attempt, outcome, self.policy)
        if plan.attempt_to is not None:
            assert attempt_can(attempt.status, plan.attempt_to)
            self.attempts[attempt_id] = attempt.evolve(status=plan.attempt_to, version=attempt.version + 1)
        if plan.payment_to is not None:
            assert payment_can(payment.status, plan.payment_to)
            changes: dict[str, object] = {"status": plan.payment_to, "version": payment.version + 1}
            if plan.payment_to is P.SUCCEEDED:
                changes["succeeded_attempt_id"] = attempt_id
            self.payment = payment.evolve(**changes)
        if plan.capture:
            self.captures.append(attempt_id)
        if plan.auto_refund:
            self.auto_refunds.append(attempt_id)
        return plan

    def close_payment(self) -> None:
        """The merchant closes, or the payment expires: only an open payment can be closed."""
        if payment_can(self.payment.status, P.CLOSED):
            self.payment = self.payment.evolve(status=P.CLOSED, version=self.payment.version + 1)

    def switch_to(self, attempt_id: str) -> None:
        """"Switch payment method": a new current attempt, only while the payment is open."""
        if self.payment.status in (P.PENDING, P.PROCESSING):
            self.payment = self.payment.evolve(current_attempt_id=attempt_id)


ATTEMPT_IDS = ("att_1", "att_2", "att_3")
EVENTS = st.one_of(
    st.tuples(st.just("news"), st.sampled_from(ATTEMPT_IDS), st.sampled_from(list(Out))),
    st.tuples(st.just("close"), st.none(), st.none()),
    st.tuples(st.just("switch"), st.sampled_from(ATTEMPT_IDS), st.none()),
)


@settings(max_examples=400)
@given(policy=st.sampled_from(POLICIES), events=st.lists(EVENTS, max_size=30))
def test_any_sequence_of_news_keeps_the_money_right(policy: str, events: list[tuple[str, str, Out]]) -> None:
    world = World(policy, make_payment(P.PENDING, "att_1"), {i: make_attempt(A.PENDING, i) for i in ATTEMPT_IDS})
    for kind, attempt_id, outcome in events:
        before_payment, before_attempt = world.payment, world.attempts.get(attempt_id or "")
        if kind == "close":
            world.close_payment()
        elif kind == "switch":
            world.switch_to(attempt_id)
        else:
            assert before_attempt is not None
            plan = world.apply(attempt_id, outcome)
            if outcome in (Out.PENDING, Out.NOT_FOUND):
                assert plan.is_noop and (world.payment, world.attempts[attempt_id]) == (before_payment, before_attempt)
            if (policy == "refund" and plan.attempt_to is A.SUCCEEDED
                    and before_payment.status in (P.CLOSED, P.FAILED)):
                assert plan.auto_refund and world.payment.status is before_payment.status
            # The same news again, straight away, is a repeat: nothing more happens.
            assert world.apply(attempt_id, outcome).is_noop

        # Succeeded is for ever, and always with the same attempt.
        if before_payment.status is P.SUCCEEDED:
            assert world.payment.status is P.SUCCEEDED
            assert world.payment.succeeded_attempt_id == before_payment.succeeded_attempt_id
        # Captured at most once per attempt, and exactly the attempts that succeeded.
        assert len(world.captures) == len(set(world.captures))
        assert set(world.captures) == {i for i, a in world.attempts.items() if a.status is A.SUCCEEDED}
        # Every auto refund refunds a captured attempt, once; what is kept is the payment's one success.
        assert len(world.auto_refunds) == len(set(world.auto_refunds))
        assert set(world.auto_refunds) <= set(world.captures)
        kept = [i for i in world.captures if i not in world.auto_refunds]
        if world.payment.status is P.SUCCEEDED:
            assert kept == [world.payment.succeeded_attempt_id]
        else:
            assert kept == [] and world.payment.succeeded_attempt_id is None


@given(policy=st.sampled_from(POLICIES), outcomes=st.lists(st.sampled_from(list(Out)), max_size=12))
def test_news_for_one_attempt_in_any_order_succeeds_or_refunds_once(policy: str, outcomes: list[Out]) -> None:
    world = World(policy, make_payment(P.PENDING, "att_1"), {"att_1": make_attempt(A.PENDING, "att_1")})
    for outcome in outcomes:
        world.apply("att_1", outcome)
    succeeded = Out.SUCCEEDED in outcomes
    assert world.captures == (["att_1"] if succeeded else [])
    assert (world.attempts["att_1"].status is A.SUCCEEDED) is succeeded
    if not succeeded:
        return
    # Success after the same attempt closed or failed the payment is a late success.
    first_final = next((o for o in outcomes if o in (Out.SUCCEEDED, Out.FAILED, Out.CLOSED)), None)
    late = first_final is not Out.SUCCEEDED
    if late and policy == "refund":
        assert world.auto_refunds == ["att_1"] and world.payment.status is not P.SUCCEEDED
    else:
        assert world.auto_refunds == [] and world.payment.status is P.SUCCEEDED


@pytest.mark.parametrize("policy", ["accept", "refund"])
def test_money_for_a_payment_held_for_step_up_is_recorded_and_given_back_whatever_the_policy(policy: str) -> None:
    # The hub never asked the channel (the payer has not passed the step-up the risk rules asked for), yet the channel
    # reports a success for its attempt: captured in the ledger, refunded, and the payment stays held.
    plan = run(P.REQUIRES_STEP_UP, A.PENDING, PaymentOutcome.SUCCEEDED, policy)
    assert (plan.attempt_to, plan.payment_to, plan.capture, plan.auto_refund) == (A.SUCCEEDED, None, True, True)
    assert plan.reason == "success_while_held_for_step_up_refunded"
