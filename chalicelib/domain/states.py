"""Statuses and the one transitions table of the hub.

Every status change anywhere in the hub is checked against these tables and written as a DynamoDB
conditional update on the expected status and version. A transition not listed here is a domain outcome
(stale or conflicting news), never a crash and never a second side effect.
"""

from __future__ import annotations

import enum


class PaymentState(enum.StrEnum):
    PENDING = "pending"  # 待支付: created at the channel, waiting for the payer
    PROCESSING = "processing"  # 支付中: the payer is paying (password, bank), outcome not yet known
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"  # expired or closed by the merchant
    # Risk control asked the payer to prove who they are (SMS code, face, device biometrics) before the channel is
    # asked for the money; nothing exists at the channel yet (chalicelib/risk, chalicelib/stepup).
    REQUIRES_STEP_UP = "requires_step_up"


class AttemptState(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"


class RefundState(enum.StrEnum):
    PENDING = "pending"  # accepted by the hub, amount reserved, not yet sent to the channel
    PROCESSING = "processing"  # the channel accepted it and is moving the money
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_P, _A, _R = PaymentState, AttemptState, RefundState

# (from, to) -> the merchant event type the transition emits (None: no merchant event).
PAYMENT_TRANSITIONS: dict[tuple[PaymentState, PaymentState], str | None] = {
    (_P.PENDING, _P.PROCESSING): None,
    # Step-up passed: the payment goes to the channel as any other would. Failed (tries used up) or abandoned
    # until the payment expired: final, and the merchant hears of it.
    (_P.REQUIRES_STEP_UP, _P.PENDING): None,
    # A checkout session's payment is pending until the payer picks a method; the attempt risk control challenges
    # holds it (stepup/hooks.py assess_attempt). Nothing is at a channel yet, so the merchant hears nothing.
    (_P.PENDING, _P.REQUIRES_STEP_UP): None,
    (_P.REQUIRES_STEP_UP, _P.FAILED): "payment.failed",
    (_P.REQUIRES_STEP_UP, _P.CLOSED): "payment.closed",
    (_P.PENDING, _P.SUCCEEDED): "payment.succeeded",
    (_P.PROCESSING, _P.SUCCEEDED): "payment.succeeded",
    (_P.PENDING, _P.FAILED): "payment.failed",
    (_P.PROCESSING, _P.FAILED): "payment.failed",
    (_P.PENDING, _P.CLOSED): "payment.closed",
    (_P.PROCESSING, _P.CLOSED): "payment.closed",
    # Late success: the channel took the money after we closed or failed the payment. Taken only when the
    # merchant's late_success policy is "accept"; otherwise the payment stays put and the money is refunded.
    (_P.CLOSED, _P.SUCCEEDED): "payment.succeeded",
    (_P.FAILED, _P.SUCCEEDED): "payment.succeeded",
}

# An attempt records what the channel did with money, so a success is always recorded, even late.
ATTEMPT_TRANSITIONS: frozenset[tuple[AttemptState, AttemptState]] = frozenset(
    {
        (_A.PENDING, _A.PROCESSING),
        (_A.PENDING, _A.SUCCEEDED),
        (_A.PROCESSING, _A.SUCCEEDED),
        (_A.PENDING, _A.FAILED),
        (_A.PROCESSING, _A.FAILED),
        (_A.PENDING, _A.CLOSED),
        (_A.PROCESSING, _A.CLOSED),
        (_A.CLOSED, _A.SUCCEEDED),
        (_A.FAILED, _A.SUCCEEDED),
    }
)

REFUND_TRANSITIONS: dict[tuple[RefundState, RefundState], str | None] = {
    (_R.PENDING, _R.PROCESSING): None,
    (_R.PENDING, _R.SUCCEEDED): "refund.succeeded",
    (_R.PROCESSING, _R.SUCCEEDED): "refund.succeeded",
    (_R.PENDING, _R.FAILED): "refund.failed",
    (_R.PROCESSING, _R.FAILED): "refund.failed",
}

PAYMENT_FINAL = frozenset({_P.SUCCEEDED, _P.FAILED, _P.CLOSED})
ATTEMPT_FINAL = frozenset({_A.SUCCEEDED, _A.FAILED, _A.CLOSED})
REFUND_FINAL = frozenset({_R.SUCCEEDED, _R.FAILED})


def payment_can(current: PaymentState, target: PaymentState) -> bool:
    return (current, target) in PAYMENT_TRANSITIONS


def attempt_can(current: AttemptState, target: AttemptState) -> bool:
    return (current, target) in ATTEMPT_TRANSITIONS


def refund_can(current: RefundState, target: RefundState) -> bool:
    return (current, target) in REFUND_TRANSITIONS
