"""What a channel's news about an attempt means for the attempt, its payment, the ledger and the merchant.

Pure: takes the records as read and returns a Plan; the service writes the plan in one conditional
transaction. If the records changed in between, the transaction fails and the news is decided again on
fresh records, so every path through here is safe to repeat.
"""

from __future__ import annotations

from chalicelib.channels.base import PaymentOutcome
from chalicelib.domain.models import Attempt, Payment
from chalicelib.domain.states import AttemptState, PaymentState, attempt_can, payment_can
from chalicelib.domain.value_class import value_class

_OUTCOME_TO_ATTEMPT = {
    PaymentOutcome.PROCESSING: AttemptState.PROCESSING,
    PaymentOutcome.SUCCEEDED: AttemptState.SUCCEEDED,
    PaymentOutcome.FAILED: AttemptState.FAILED,
    PaymentOutcome.CLOSED: AttemptState.CLOSED,
    # The payer did their part; the hub must complete it at the channel. Still open, never success.
    PaymentOutcome.REQUIRES_CONFIRMATION: AttemptState.PROCESSING,
}
_OPEN = (PaymentState.PENDING, PaymentState.PROCESSING)


@value_class
class Plan:
    """What to do with an attempt and its payment after a channel's outcome."""

    attempt_to: AttemptState | None = None
    payment_to: PaymentState | None = None
    capture: bool = False  # money arrived: post the journal and count it as captured
    auto_refund: bool = False  # money arrived where it must go back (late or second success)
    confirm: bool = False  # have the status-sync worker complete the attempt at the channel right away
    reason: str = ""
    note: str = ""  # why, in words, for the audit record of a decision that overrides a setting

    @property
    def is_noop(self) -> bool:
        return self.attempt_to is None and self.payment_to is None


def decide(payment: Payment, attempt: Attempt, outcome: PaymentOutcome, late_success_policy: str, *,
           settled_offline: bool = False) -> Plan:
    """``settled_offline``: the channel reports money that already moved and cannot be refused (e-CNY offline)."""
    target = _OUTCOME_TO_ATTEMPT.get(outcome)
    if target is None or not attempt_can(attempt.status, target):
        # PENDING / NOT_FOUND change nothing; anything else is a repeat or older news than what we hold.
        return Plan(reason=f"attempt {attempt.status} ignores {outcome}")
    if target is AttemptState.SUCCEEDED:
        if settled_offline and payment.status in (PaymentState.CLOSED, PaymentState.FAILED):
            return _offline_success(payment, late_success_policy)
        return _success(payment, attempt, late_success_policy)
    current = payment.current_attempt_id == attempt.attempt_id
    payment_to = None
    if current and payment.session_id and target is AttemptState.FAILED:
        # A checkout session outlives a failed attempt: the payer retries or switches method on the same payment
        # until it is paid or the session expires (the attempt's close then closes the payment).
        return Plan(attempt_to=target, reason=f"{outcome}:session_stays_open")
    if current:
        wanted = {AttemptState.PROCESSING: PaymentState.PROCESSING, AttemptState.FAILED: PaymentState.FAILED,
                  AttemptState.CLOSED: PaymentState.CLOSED}[target]
        payment_to = wanted if payment_can(payment.status, wanted) else None
    if outcome is PaymentOutcome.REQUIRES_CONFIRMATION:
        # Only the live attempt of an open payment is completed: capturing money for a payment that was
        # closed, failed or paid another way would only make a refund.
        return Plan(attempt_to=target, payment_to=payment_to, confirm=current and payment.status in _OPEN,
                    reason=str(outcome))
    return Plan(attempt_to=target, payment_to=payment_to, reason=str(outcome))


def _success(payment: Payment, attempt: Attempt, policy: str) -> Plan:
    switched_away = (payment.session_id is not None and payment.current_attempt_id != attempt.attempt_id
                     and attempt.status is AttemptState.CLOSED)
    if payment.status in _OPEN and switched_away:
        # The payer left this attempt for another one and it was closed at its channel, yet the channel took the
        # money (a late success). The merchant's policy decides: take it as the payment's success, or give it back
        # and leave the payer on the attempt they switched to.
        if policy == "accept":
            return Plan(attempt_to=AttemptState.SUCCEEDED, payment_to=PaymentState.SUCCEEDED, capture=True,
                        reason="late_success_accepted")
        return Plan(attempt_to=AttemptState.SUCCEEDED, capture=True, auto_refund=True, reason="late_success_refunded")
    if payment.status in _OPEN:
        return Plan(attempt_to=AttemptState.SUCCEEDED, payment_to=PaymentState.SUCCEEDED, capture=True,
                    reason="success")
    if payment.status is PaymentState.SUCCEEDED:
        # A second attempt of an already paid payment succeeded too: keep one, give the other back.
        return Plan(attempt_to=AttemptState.SUCCEEDED, capture=True, auto_refund=True, reason="double_success")
    if payment.status is PaymentState.REQUIRES_STEP_UP:
        # Money for a payment held for step-up (the hub had not asked the channel): the payer has not passed the
        # check the risk rules asked for, so whatever the merchant's policy, it is recorded and given back.
        return Plan(attempt_to=AttemptState.SUCCEEDED, capture=True, auto_refund=True,
                    reason="success_while_held_for_step_up_refunded")
    if policy == "accept":
        return Plan(attempt_to=AttemptState.SUCCEEDED, payment_to=PaymentState.SUCCEEDED, capture=True,
                    reason="late_success_accepted")
    return Plan(attempt_to=AttemptState.SUCCEEDED, capture=True, auto_refund=True, reason="late_success_refunded")


def _offline_success(payment: Payment, policy: str) -> Plan:
    return Plan(
        attempt_to=AttemptState.SUCCEEDED, payment_to=PaymentState.SUCCEEDED, capture=True,
        reason="settled_offline_credited",
        note=(f"the payer's money moved offline and cannot be refused: credited although the payment was "
              f"{payment.status} (late_success_policy={policy} does not apply to offline settlement)"),
    )
