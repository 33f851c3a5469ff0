"""Apply a channel's news about an attempt: one conditional transaction per decision, retried on races.

Callbacks and status sync both land here, so a payment reaches the same state whichever arrives first,
and fifty copies of the same news make one transition, one journal and one merchant event.
"""

from __future__ import annotations

import enum
import logging

from chalicelib.channels.base import PaymentStatus
from chalicelib.config.fee_schedule import expected_fee, fee_rate_bps
from chalicelib.domain import ledger
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.decisions import Plan, decide
from chalicelib.domain.errors import NotFound
from chalicelib.domain.ids import new_id
from chalicelib.domain.models import Attempt, Payment, Refund
from chalicelib.domain.money import Money
from chalicelib.domain.states import ATTEMPT_FINAL, PAYMENT_TRANSITIONS, PaymentState, RefundState
from chalicelib.domain.value_class import value_class
from chalicelib.observability import alert
from chalicelib.service import fx_payments
from chalicelib.storage import config_repo, outbox, recon_index, records, state_repo
from chalicelib.storage.ledger_repo import add_journals
from chalicelib.storage.sync_index import PENDING_REFUND_RESUBMIT_S, SYNC_FIELDS, first_sync
from chalicelib.storage.transaction import Transaction, TransactionConflict
from chalicelib.vault import card_records

log = logging.getLogger(__name__)
MAX_RACE_RETRIES = 8
CONFIRM_COMMAND = "attempt.confirm"  # status sync completes the attempt at the channel (query, then confirm)


class Applied(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # this exact notification was applied before
    NO_CHANGE = "no_change"  # news older than, or equal to, what we hold
    MISMATCH = "mismatch"  # the channel reports another amount than we stored: a person must look


@value_class
class Dedupe:
    """A channel notification id, recorded in the same transaction as the change it causes."""

    channel: str
    account_id: str
    event_id: str

    _LABEL = "callback"

    def add_to(self, tx: Transaction, *, object_id: str, applied: str, now: str) -> None:
        """Insert-only: a second copy of the notification fails this item and so the whole transaction."""
        tx.put_new(self._LABEL, state_repo.state_table(), {
            **records.callback_key(self.channel, self.account_id, self.event_id),
            "object_id": object_id, "received_at": now, "applied": applied,
        })

    @classmethod
    def was_seen(cls, conflict: TransactionConflict) -> bool:
        """The transaction failed because this notification was already applied."""
        return cls._LABEL in conflict.failed_labels


def amount_differs(reported: Money | None, stored: Money, *, object_id: str, source: str) -> bool:
    """The channel names another amount than we stored: never applied, raised as an alert for a person."""
    if reported is None or reported == stored:
        return False
    log.error("ALERT channel reports %s %s for %s, we hold %s %s; not applied", reported.minor, reported.currency,
              object_id, stored.minor, stored.currency,
              extra=alert("amount_mismatch", source=source, object_id=object_id, reported_minor=reported.minor,
                          reported_currency=reported.currency, held_minor=stored.minor, held_currency=stored.currency))
    return True


def apply_attempt_status(attempt_id: str, status: PaymentStatus, *, source: str, dedupe: Dedupe | None = None,
                         known: tuple[Attempt, Payment] | None = None) -> Applied:
    """``known``: the attempt and its payment as the caller just read them, used for the first decision (saves
    the read); after a race both are read again, in one request where the attempt id names its payment."""
    for _ in range(MAX_RACE_RETRIES):
        (attempt, payment), known = known or state_repo.get_attempt_and_payment(attempt_id), None
        if attempt is None or payment is None:
            raise NotFound(f"no attempt {attempt_id}")
        if amount_differs(status.amount, attempt.money, object_id=attempt_id, source=source):
            return Applied.MISMATCH
        merchant = config_repo.get_merchant(payment.merchant_id)
        policy = merchant.late_success_policy if merchant else "refund"
        plan = decide(payment, attempt, status.outcome, policy, settled_offline=status.settled_offline)
        if plan.is_noop:
            return Applied.NO_CHANGE
        try:
            _commit(payment, attempt, status, plan, source=source, dedupe=dedupe)
        except TransactionConflict as conflict:
            if Dedupe.was_seen(conflict):
                return Applied.DUPLICATE
            log.info("attempt %s raced (%s); deciding again", attempt_id, conflict.failed_labels)
            continue
        return Applied.APPLIED
    raise RuntimeError(f"attempt {attempt_id} kept racing after {MAX_RACE_RETRIES} tries")


def _scheduled_fee(attempt: Attempt) -> Money | None:
    """The fee the account's schedule (setting ``fee_rate_bps``) says the channel takes on this payment; None
    without a schedule or for a fee of zero (reconciliation then books the statement's fees for the day)."""
    config = config_repo.channel_account_config(attempt.account_id)  # its settings only: no channel key is read
    fee = expected_fee(attempt.money, fee_rate_bps(config)) if config is not None else None
    return fee if fee is not None and fee.minor else None


def _commit(payment: Payment, attempt: Attempt, status: PaymentStatus, plan: Plan, *, source: str,
            dedupe: Dedupe | None) -> None:
    now = iso(utcnow())
    tx = Transaction()
    events: list[outbox.OutboxEvent] = []
    assert plan.attempt_to is not None
    attempt_changes: dict[str, object] = {"status": str(plan.attempt_to), "updated_at": now, "raw_status": status.raw_status}
    if status.channel_transaction_id:
        attempt_changes["channel_transaction_id"] = status.channel_transaction_id
    moved_at = status.paid_at or utcnow()  # the money moved: reconciliation finds it on the statement's day
    if plan.capture:
        attempt_changes.update(recon_index.index_fields(attempt.account_id, "payment", attempt.attempt_id, moved_at))
    state_repo.guard_version(
        tx, "attempt", records.attempt_key(attempt.attempt_id), status=str(attempt.status), version=attempt.version,
        changes=attempt_changes, remove=SYNC_FIELDS if plan.attempt_to in ATTEMPT_FINAL else (),
    )
    if plan.attempt_to in ATTEMPT_FINAL and attempt.card_token:
        # Kept only while a confirmation could still send it; a final attempt is never confirmed again.
        card_records.discard(tx, attempt.card_token, merchant_id=attempt.merchant_id)
    payment_changes: dict[str, object] = {"updated_at": now}
    if plan.payment_to is not None:
        payment_changes["status"] = str(plan.payment_to)
        if plan.payment_to is PaymentState.SUCCEEDED:
            payment_changes["succeeded_attempt_id"] = attempt.attempt_id
        if plan.payment_to is PaymentState.FAILED:
            payment_changes["failure_reason"] = status.raw_status
    if plan.capture:
        payment_changes["amount_captured"] = payment.amount_captured + attempt.amount
        if plan.auto_refund:
            payment_changes["amount_refund_pending"] = payment.amount_refund_pending + attempt.amount
        else:
            payment_changes["amount_refundable"] = payment.amount_refundable + attempt.amount
        payment_changes.update(fx_payments.capture_changes(payment, auto_refund=plan.auto_refund))
        journals: list[tuple[ledger.Journal, str | None]] = [
            (fx_payments.captured(payment, attempt), recon_index.beijing_day(moved_at))]
        scheduled = _scheduled_fee(attempt)
        if scheduled is not None:  # the channel's fee for this payment, as its statement row will state it
            journals.append((ledger.channel_fee_accrued(attempt.attempt_id, attempt.account_id, scheduled),
                             recon_index.beijing_day(moved_at)))
        seller_fee = int((attempt.instalments or {}).get("seller_fee", 0))
        if seller_fee:  # the seller pays the instalment fee: the channel keeps it. No statement row states it, so
            # it is value-dated to no day's ledger check (docs/instalments.md#ledger)
            journals.append((ledger.instalment_fee_charged(attempt.attempt_id, attempt.account_id,
                                                           attempt.merchant_id, Money(seller_fee, attempt.currency)),
                             None))
        add_journals(tx, journals, now=now)
    updated = payment.evolve(**{k: v for k, v in payment_changes.items() if k != "status"},
                             status=plan.payment_to or payment.status, version=payment.version + 1)
    state_repo.guard_version(tx, "payment", records.payment_key(payment.payment_id), status=str(payment.status),
                             version=payment.version, changes=payment_changes)
    if plan.payment_to is not None:
        event_type = PAYMENT_TRANSITIONS[(payment.status, plan.payment_to)]
        if event_type:
            events.append(outbox.add_event(tx, merchant_id=payment.merchant_id, object_id=payment.payment_id,
                                           event_type=event_type, data=updated.public(), now=now))
    if plan.auto_refund:
        events.append(_add_auto_refund(tx, payment, attempt, plan.reason, now))
    if plan.confirm:
        # Same transaction as the move to processing: if we die right after commit, the sweep still sends it.
        events.append(outbox.add_command(tx, topic="status-sync", object_id=attempt.attempt_id,
                                         command=CONFIRM_COMMAND, now=now,
                                         body={"kind": "attempt", "id": attempt.attempt_id, "count": 0}))
    if dedupe is not None:
        dedupe.add_to(tx, object_id=attempt.attempt_id, applied=plan.reason, now=now)
    tx.put_new("audit", state_repo.state_table(), {
        "pk": f"AUDIT#{attempt.attempt_id}", "sk": f"{now}#{new_id('aud')}", "source": source,
        "attempt_from": str(attempt.status), "attempt_to": str(plan.attempt_to),
        "payment_from": str(payment.status), "payment_to": str(plan.payment_to or payment.status),
        "reason": plan.reason, "raw_status": status.raw_status, "note": plan.note or None,
        "settled_offline": status.settled_offline or None,
    })
    tx.commit()
    log.info("attempt %s %s -> %s, payment %s -> %s (%s, via %s)", attempt.attempt_id, attempt.status,
             plan.attempt_to, payment.status, plan.payment_to or payment.status, plan.reason, source)
    outbox.publish_after_commit(events)


def _add_auto_refund(tx: Transaction, payment: Payment, attempt: Attempt, reason: str, now: str) -> outbox.OutboxEvent:
    refund = Refund(
        refund_id=new_id("re"), payment_id=payment.payment_id, attempt_id=attempt.attempt_id,
        merchant_id=payment.merchant_id, channel=attempt.channel, account_id=attempt.account_id,
        amount=attempt.amount, currency=attempt.currency, status=RefundState.PENDING, version=0,
        # ":" is outside the merchant_refund_no alphabet, so a merchant's number can never take this one.
        created_at=now, updated_at=now, merchant_refund_no=f"auto:{attempt.attempt_id}", reason=reason, automatic=True,
        **fx_payments.auto_refund_fields(payment),
    )
    tx.put_new("auto_refund", state_repo.state_table(),
               {**records.refund_item(refund), **first_sync(utcnow(), refund.refund_id, after_s=PENDING_REFUND_RESUBMIT_S)})
    tx.put_new("auto_refund_no", state_repo.state_table(), {
        **records.refund_no_key(payment.payment_id, refund.merchant_refund_no), "refund_id": refund.refund_id,
    })
    return outbox.add_command(tx, topic="refunds", object_id=refund.refund_id, command="refund.submit", now=now)

