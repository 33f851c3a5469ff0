"""Where risk decisions meet payments: create, confirm, refund and every attempt a checkout session's payer opens
(``assess_attempt``, decided as a create) each ask ``risk.decide`` and obey it.

  deny       402 ``risk_denied``; the decision is recorded (``RISKDEC#<payment or request>``), nothing reaches a
             channel (a denied create leaves no payment, a denied refund reserves nothing, a denied checkout
             attempt leaves the session's payment open for another method)
  challenge  create (and a checkout attempt): the payment is written ``requires_step_up`` with ``step_up.methods``
             and no channel call;
             confirm: 402 ``step_up_required`` until the payer passes a step-up for this payment's confirm;
             refund: no payer is present to challenge, so it is taken as review
  review     goes ahead, flagged (``risk.<op>.action`` = review) and logged with ``risk_review``
  allow      goes ahead
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import RiskDenied, StepUpRequired
from chalicelib.domain.models import Merchant, Payment
from chalicelib.domain.money import Money
from chalicelib.domain.states import PaymentState
from chalicelib.risk.counters import Subject
from chalicelib.risk.decide import Context, Decision, decide
from chalicelib.storage.transaction import Transaction

if TYPE_CHECKING:
    from chalicelib.service.inputs import CreatePaymentInput
    from chalicelib.storage.idempotency import Claim

log = logging.getLogger(__name__)


def _deny(decision: Decision) -> RiskDenied:
    """The decision is kept for operators even though nothing else is written."""
    tx = Transaction()
    # Denied tries count too (card testing shows in velocity); a confirm was counted by its create already.
    decision.write(tx, count=decision.context.operation != "confirm")
    tx.commit()
    return RiskDenied(f"refused by risk control (decision {decision.decision_id} on {decision.context.order_ref})")


def _review(decision: Decision) -> None:
    if decision.action == "review":
        log.warning("risk review: %s of %s flagged (decision %s)", decision.context.operation,
                    decision.context.order_ref, decision.decision_id, extra={"risk_review": decision.decision_id})


@dataclass
class CreateRisk:
    """The risk decision of one create, taken before its payment is written."""

    merchant: Merchant
    body: Any
    money: Money
    decision: Decision | None = field(default=None)

    def shape(self, payment: Payment, *, card_fingerprint: str | None) -> Payment:
        """Decide on the payment about to be written: raise on deny, hold it for step-up on challenge."""
        payer = self.body.payer
        ctx = Context("create", self.merchant.merchant_id, self.body.method, self.money.minor, self.money.currency,
                      Subject(user_id=payer.user_id, device_id=payer.device_id, card_fingerprint=card_fingerprint,
                              ip=payer.ip, city=payer.city), payment.payment_id)
        decision = self.decision = decide(ctx)
        if decision.action == "deny":
            raise _deny(decision)
        _review(decision)
        risk = {"create": decision.record()}
        if decision.action != "challenge":
            return payment.evolve(risk=risk)
        step_up = {"operation": "create", "methods": list(decision.outcome.step_up), "status": "required",
                   "required_at": iso(utcnow())}
        return payment.evolve(risk=risk, status=PaymentState.REQUIRES_STEP_UP, step_up=step_up,
                              action={"type": "step_up", "methods": list(decision.outcome.step_up)})

    def write(self, tx: Transaction) -> None:
        if self.decision is not None:
            self.decision.write(tx, count=True)

    def answer_challenged(self, payment: Payment, claim: Claim | None) -> Payment:
        """The request's answer is the held payment (stored under its Idempotency-Key like any create's)."""
        if claim is not None:
            tx = Transaction()
            claim.answer_in(tx, payment.public())
            tx.commit()
            claim.answered = True
        log.info("payment %s held for step-up (%s)", payment.payment_id, ", ".join(payment.step_up["methods"]
                                                                                   if payment.step_up else []))
        return payment


def assess_create(merchant: Merchant, body: CreatePaymentInput, money: Money) -> CreateRisk:
    return CreateRisk(merchant, body, money)


def confirm_passed(payment: Payment) -> bool:
    """A confirm step-up was passed for exactly the attempt (and card) now being confirmed. One passed for an attempt
    the payer has since left, e.g. another card on the checkout page, proves nothing for this one."""
    step_up = payment.step_up or {}
    return (step_up.get("operation") == "confirm" and step_up.get("status") == "passed"
            and bool(payment.current_attempt_id) and step_up.get("attempt_id") == payment.current_attempt_id
            and step_up.get("card_fingerprint") == (payment.card or {}).get("fingerprint"))


def assess_confirm(payment: Payment) -> None:
    """Before a confirm goes to the channel. A step-up already passed for this attempt's confirm lets it through
    (the decision is not asked again: the payer has proven who they are for exactly this attempt and card)."""
    from chalicelib.stepup import records as stepup_records

    if confirm_passed(payment):
        return
    payer = payment.payer or {}
    ctx = Context("confirm", payment.merchant_id, payment.method, payment.amount, payment.currency,
                  Subject(user_id=payer.get("user_id"), device_id=payer.get("device_id"),
                          card_fingerprint=(payment.card or {}).get("fingerprint"), ip=payer.get("ip"),
                          city=payer.get("city")), payment.payment_id)
    decision = decide(ctx)
    if decision.action == "deny":
        raise _deny(decision)
    _review(decision)
    if decision.action == "allow" and not decision.outcome.fired and not decision.outcome.shadow:
        return  # nothing fired: no write before the channel call (a confirm retried after a 503 finds all as it was)
    challenge = decision.action == "challenge"
    stepup_records.record_confirm_decision(payment, decision.record(), decision, challenge=challenge)
    if challenge:
        raise StepUpRequired(f"the payer must pass a step-up ({', '.join(decision.outcome.step_up)}) before "
                             "this payment is confirmed", param="payment_id")


def assess_refund(payment: Payment, amount: int) -> Decision:
    """Refunds: deny raises; the decision is returned for the refund's own transaction to record and count."""
    payer = payment.payer or {}
    ctx = Context("refund", payment.merchant_id, payment.method, amount, payment.currency,
                  Subject(user_id=payer.get("user_id"), device_id=payer.get("device_id"),
                          card_fingerprint=(payment.card or {}).get("fingerprint"), ip=payer.get("ip"),
                          city=payer.get("city")),
                  payment.payment_id, captured=payment.amount_captured,
                  refunded=payment.amount_refunded + payment.amount_refund_pending)
    decision = decide(ctx)
    if decision.action == "deny":
        raise _deny(decision)
    if decision.action in ("review", "challenge"):
        log.warning("risk review: refund on %s flagged (decision %s)", payment.payment_id, decision.decision_id,
                    extra={"risk_review": decision.decision_id})
    return decision


@dataclass
class AttemptRisk:
    """A checkout attempt's decision. It is taken before the payment's open attempt is closed at its channel, so a
    refusal leaves everything as it was (the payer may still pay what is on their screen, or pick another method).

    Counting: a session's payment is counted once, at its first attempt, as a merchant create is; a later attempt
    adds only a card not counted for this payment yet, so switching method does not inflate the payer's velocity
    or make a city "usual", while card testing through the page's card form still shows per card."""

    decision: Decision
    counted: Subject | None
    step_ups: tuple[str, ...] = ()  # a challenge: the step-ups this payer can use on this page

    @property
    def held(self) -> bool:
        return self.decision.action == "challenge"

    def changes(self, payment: Payment) -> dict[str, Any]:
        """What the attempt's transaction writes on the payment: the decision, and (challenge) the hold."""
        changes: dict[str, Any] = {"risk": {**(payment.risk or {}), "create": self.decision.record()}}
        step_up = payment.step_up or {}
        if step_up.get("status") in ("required", "started") or (
                step_up.get("operation") == "confirm" and step_up.get("status") == "passed"):
            # A card confirm's step-up belongs to the attempt the payer is leaving: unanswered or passed, it is over
            # (a passed one must not let the next attempt's card confirm undecided), and says so.
            ended = ({"was": "passed", "abandoned_at": iso(utcnow())} if step_up.get("status") == "passed"
                     else {"completed_at": iso(utcnow())})
            changes["step_up"] = {**step_up, "status": "abandoned", **ended}
        if self.held:
            changes.update(status=str(PaymentState.REQUIRES_STEP_UP), action={"type": "step_up",
                                                                            "methods": list(self.step_ups)},
                           step_up={"operation": "create", "methods": list(self.step_ups), "status": "required",
                                    "required_at": iso(utcnow())})
        return changes

    def write(self, tx: Transaction) -> None:
        self.decision.write(tx, count=False)
        if self.counted is not None:
            from chalicelib.risk import counters

            ctx = self.decision.context
            counters.add_payment(tx, self.counted, amount=ctx.amount, shard_key=ctx.order_ref, now=utcnow())


def assess_attempt(payment: Payment, method: str, attempt_id: str, *, card_fingerprint: str | None,
                   usable: Callable[[tuple[str, ...]], tuple[str, ...]] | None = None) -> AttemptRisk:
    """Decide on a checkout attempt exactly as on a merchant create (operation ``create``: the same rules, scopes,
    features, counters and provider). Deny raises ``RiskDenied`` with the decision recorded; a challenge none of
    whose step-ups this payer can use here (``usable``) is refused the same way: failing closed, as nobody could
    pass it."""
    payer = payment.payer or {}
    subject = Subject(user_id=payer.get("user_id"), device_id=payer.get("device_id"),
                      card_fingerprint=card_fingerprint, ip=payer.get("ip"), city=payer.get("city"))
    ctx = Context("create", payment.merchant_id, method, payment.amount, payment.currency, subject,
                  payment.payment_id, attempt_id=attempt_id)
    decision = decide(ctx)
    first = not payment.current_attempt_id
    counted: Subject | None = subject if first else None
    if not first and card_fingerprint and card_fingerprint != (payment.card or {}).get("fingerprint"):
        counted = Subject(card_fingerprint=card_fingerprint)
    risk = AttemptRisk(decision, counted)
    if decision.action == "deny":
        raise _refuse_attempt(risk)
    _review(decision)
    if risk.held:
        offered = decision.outcome.step_up
        risk.step_ups = usable(offered) if usable is not None else offered
        if not risk.step_ups:
            log.warning("risk %s on %s: challenge with %s, none usable by this payer here: refused",
                        decision.decision_id, payment.payment_id, ", ".join(offered))
            raise _refuse_attempt(risk)
    return risk


def _refuse_attempt(risk: AttemptRisk) -> RiskDenied:
    tx = Transaction()
    risk.write(tx)  # refused tries count too, as on the create path
    tx.commit()
    ctx = risk.decision.context
    return RiskDenied(f"refused by risk control (decision {risk.decision.decision_id} on {ctx.order_ref})")
