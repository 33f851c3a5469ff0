"""The transitions tables: what may follow what, and that final states stay final (bar late success)."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.domain.states import (
    ATTEMPT_FINAL,
    ATTEMPT_TRANSITIONS,
    PAYMENT_FINAL,
    PAYMENT_TRANSITIONS,
    REFUND_FINAL,
    REFUND_TRANSITIONS,
    AttemptState,
    PaymentState,
    RefundState,
    attempt_can,
    payment_can,
    refund_can,
)

P, A, R = PaymentState, AttemptState, RefundState

# The only edges out of a final state: money that arrived after we closed or failed (docs/design.md#state-machine).
LATE_SUCCESS_PAYMENT = {(P.CLOSED, P.SUCCEEDED), (P.FAILED, P.SUCCEEDED)}
LATE_SUCCESS_ATTEMPT = {(A.CLOSED, A.SUCCEEDED), (A.FAILED, A.SUCCEEDED)}


def test_state_values_are_the_public_strings() -> None:
    assert [str(s) for s in P] == ["pending", "processing", "succeeded", "failed", "closed", "requires_step_up"]
    assert [str(s) for s in A] == ["pending", "processing", "succeeded", "failed", "closed"]
    assert [str(s) for s in R] == ["pending", "processing", "succeeded", "failed"]


def test_final_sets() -> None:
    assert PAYMENT_FINAL == {P.SUCCEEDED, P.FAILED, P.CLOSED}
    assert ATTEMPT_FINAL == {A.SUCCEEDED, A.FAILED, A.CLOSED}
    assert REFUND_FINAL == {R.SUCCEEDED, R.FAILED}


@pytest.mark.parametrize(("table", "state_type"), [(PAYMENT_TRANSITIONS, P), (ATTEMPT_TRANSITIONS, A),
                                                    (REFUND_TRANSITIONS, R)])
def test_every_pair_is_between_states_of_its_own_kind_and_never_a_self_loop(table: object, state_type: type) -> None:
    for current, target in table:  # type: ignore[attr-defined]
        assert isinstance(current, state_type) and isinstance(target, state_type)
        assert current is not target


@pytest.mark.parametrize(("current", "target"), list(itertools.product(P, P)))
def test_payment_can_matches_the_table(current: PaymentState, target: PaymentState) -> None:
    assert payment_can(current, target) is ((current, target) in PAYMENT_TRANSITIONS)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(A, A)))
def test_attempt_can_matches_the_table(current: AttemptState, target: AttemptState) -> None:
    assert attempt_can(current, target) is ((current, target) in ATTEMPT_TRANSITIONS)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(R, R)))
def test_refund_can_matches_the_table(current: RefundState, target: RefundState) -> None:
    assert refund_can(current, target) is ((current, target) in REFUND_TRANSITIONS)


def test_payment_table_is_exactly_the_documented_one() -> None:
    assert PAYMENT_TRANSITIONS == {
        (P.PENDING, P.PROCESSING): None,
        (P.REQUIRES_STEP_UP, P.PENDING): None,
        (P.PENDING, P.REQUIRES_STEP_UP): None,
        (P.REQUIRES_STEP_UP, P.FAILED): "payment.failed",
        (P.REQUIRES_STEP_UP, P.CLOSED): "payment.closed",
        (P.PENDING, P.SUCCEEDED): "payment.succeeded",
        (P.PROCESSING, P.SUCCEEDED): "payment.succeeded",
        (P.PENDING, P.FAILED): "payment.failed",
        (P.PROCESSING, P.FAILED): "payment.failed",
        (P.PENDING, P.CLOSED): "payment.closed",
        (P.PROCESSING, P.CLOSED): "payment.closed",
        (P.CLOSED, P.SUCCEEDED): "payment.succeeded",
        (P.FAILED, P.SUCCEEDED): "payment.succeeded",
    }


# A payment held for step-up has its attempt waiting as pending (nothing is at the channel yet): payment only.
STEP_UP_PAYMENT = {pair for pair in PAYMENT_TRANSITIONS if P.REQUIRES_STEP_UP in pair}


def test_attempt_table_mirrors_the_payment_table() -> None:
    assert {(str(a), str(b)) for a, b in ATTEMPT_TRANSITIONS} == {
        (str(a), str(b)) for a, b in PAYMENT_TRANSITIONS if (a, b) not in STEP_UP_PAYMENT}


def test_nothing_leaves_a_final_payment_state_except_late_success() -> None:
    leaving = {pair for pair in PAYMENT_TRANSITIONS if pair[0] in PAYMENT_FINAL}
    assert leaving == LATE_SUCCESS_PAYMENT


def test_nothing_leaves_a_final_attempt_state_except_late_success() -> None:
    leaving = {pair for pair in ATTEMPT_TRANSITIONS if pair[0] in ATTEMPT_FINAL}
    assert leaving == LATE_SUCCESS_ATTEMPT


@pytest.mark.parametrize("target", list(P))
def test_succeeded_payment_never_changes(target: PaymentState) -> None:
    assert not payment_can(P.SUCCEEDED, target)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(REFUND_FINAL, R)))
def test_refunds_never_leave_succeeded_or_failed(current: RefundState, target: RefundState) -> None:
    assert not refund_can(current, target)


def test_nothing_returns_to_pending() -> None:
    # pending is entered from requires_step_up only (a step-up passed: forward, before any channel call)
    assert {source for source, target in PAYMENT_TRANSITIONS if target is P.PENDING} == {P.REQUIRES_STEP_UP}
    assert all(target is not A.PENDING for _, target in ATTEMPT_TRANSITIONS)
    assert all(target is not R.PENDING for _, target in REFUND_TRANSITIONS)


def test_every_state_is_reachable_from_pending() -> None:
    # a payment starts pending, or requires_step_up when risk control holds it
    for table, states, starts in ((PAYMENT_TRANSITIONS, P, {P.PENDING, P.REQUIRES_STEP_UP}),
                                  (ATTEMPT_TRANSITIONS, A, {A.PENDING}), (REFUND_TRANSITIONS, R, {R.PENDING})):
        reached, frontier = set(starts), list(starts)
        while frontier:
            current = frontier.pop()
            for source, target in table:
                if source is current and target not in reached:
                    reached.add(target)
                    frontier.append(target)
        assert reached == set(states)


def test_merchant_events_only_on_entering_a_final_state() -> None:
    for (_, target), event in PAYMENT_TRANSITIONS.items():
        assert (event is None) is (target not in PAYMENT_FINAL)
        if event is not None:
            assert event == f"payment.{target}"
    for (_, target), event in REFUND_TRANSITIONS.items():
        assert (event is None) is (target not in REFUND_FINAL)
        if event is not None:
            assert event == f"refund.{target}"
