"""What a channel's news about an attempt means for the attempt, its payment, the ledger and the merchant.

Pure: takes the records as read and returns a Plan; the service writes the plan in one conditional
transaction. If the records changed in between, the transaction fails and the news is decided again on
fresh records, so every path through here is safe to repeat.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.channels.base import PaymentOutcome
from chalicelib.domain.models import Attempt, Payment
from chalicelib.domain.states import AttemptState, PaymentState, attempt_can, payment_can

_OUTCOME_TO_ATTEMPT = {
    PaymentOutcome.PROCESSING: AttemptState.PROCESSING,
    PaymentOutcome.SUCCEEDED: AttemptState.SUCCEEDED,
    PaymentOutcome.FAILED: AttemptState.FAILED,
    PaymentOutcome.CLOSED: AttemptState.CLOSED,
}


@dataclass(frozen=True)
class Plan:
    attempt_to: AttemptState | None = None
    payment_to: PaymentState | None = None
    capture: bool = False  # money arrived: post the journal and count it as captured
    auto_refund: bool = False  # money arrived where it must go back (late or second success)
    reason: str = ""

    @property
    def is_noop(self) -> bool:
        return self.attempt_to is None and self.payment_to is None


def decide(payment: Payment, attempt: Attempt, outcome: PaymentOutcome, late_success_policy: str) -> Plan:
    target = _OUTCOME_TO_ATTEMPT.get(outcome)
    if target is None or not attempt_can(attempt.status, target):
        # PENDING / NOT_FOUND change nothing; anything else is a repeat or older news than what we hold.
        return Plan(reason=f"attempt {attempt.status} ignores {outcome}")
    if target is AttemptState.SUCCEEDED:
        return _success(payment, attempt, late_success_policy)
    payment_to = None
    if payment.current_attempt_id == attempt.attempt_id:
        wanted = {AttemptState.PROCESSING: PaymentState.PROCESSING, AttemptState.FAILED: PaymentState.FAILED,
                  AttemptState.CLOSED: PaymentState.CLOSED}[target]
        payment_to = wanted if payment_can(payment.status, wanted) else None
    return Plan(attempt_to=target, payment_to=payment_to, reason=str(outcome))


def _success(payment: Payment, attempt: Attempt, policy: str) -> Plan:
    if payment.status in (PaymentState.PENDING, PaymentState.PROCESSING):
        return Plan(attempt_to=AttemptState.SUCCEEDED, payment_to=PaymentState.SUCCEEDED, capture=True,
                    reason="success")
    if payment.status is PaymentState.SUCCEEDED:
        # A second attempt of an already paid payment succeeded too: keep one, give the other back.
        return Plan(attempt_to=AttemptState.SUCCEEDED, capture=True, auto_refund=True, reason="double_success")
    if policy == "accept":
        return Plan(attempt_to=AttemptState.SUCCEEDED, payment_to=PaymentState.SUCCEEDED, capture=True,
                    reason="late_success_accepted")
    return Plan(attempt_to=AttemptState.SUCCEEDED, capture=True, auto_refund=True, reason="late_success_refunded")
