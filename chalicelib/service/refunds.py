"""Refunds: reserve the amount on the payment atomically, send it to the channel from a worker, settle it.

The reservation is one conditional update (``amount_refundable >= amount``) in the same transaction as the
refund record, so concurrent refunds can never together pass the captured amount. A failed refund gives
its reservation back; a successful one moves it to ``amount_refunded`` and posts the reversing journal.
An amount the channel cannot express (``ChecksAmounts``) is refused before anything is reserved; should one reach
the worker anyway, the adapter's ``InvalidRequest`` fails the refund like a channel refusal (nothing was sent).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chalicelib.channels.base import ChecksAmounts, RefundOutcome, RefundRequest, RefundStatus
from chalicelib.channels.registry import adapter
from chalicelib.config.settings import settings
from chalicelib.domain import ledger
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import (
    ChannelError,
    DuplicateMerchantRefundNo,
    InvalidRequest,
    InvalidState,
    NotFound,
    RefundExceedsCaptured,
)
from chalicelib.domain.ids import new_id
from chalicelib.domain.instalments import CHANNEL_FEE_PAYERS, seller_fee_returned
from chalicelib.domain.ledger import Journal
from chalicelib.domain.models import Merchant, Refund
from chalicelib.domain.money import Money
from chalicelib.domain.states import REFUND_TRANSITIONS, PaymentState, RefundState, refund_can
from chalicelib.observability import alert
from chalicelib.service import fx_payments
from chalicelib.service.channel_refs import refund_refs
from chalicelib.service.outcomes import Applied, Dedupe, amount_differs
from chalicelib.service.routing import account_or_error, callback_url
from chalicelib.storage import outbox, recon_index, records, state_repo
from chalicelib.storage.ledger_repo import add_journals
from chalicelib.storage.sync_index import PENDING_REFUND_RESUBMIT_S, SYNC_FIELDS, first_sync
from chalicelib.storage.transaction import Transaction, TransactionConflict

if TYPE_CHECKING:  # request models: the API validates them; callbacks and workers never load them
    from chalicelib.service.inputs import CreateRefundInput
    from chalicelib.storage.idempotency import RequestOrigin

log = logging.getLogger(__name__)
MAX_RACE_RETRIES = 8
_OUTCOME_TO_STATE = {
    RefundOutcome.PROCESSING: RefundState.PROCESSING,
    RefundOutcome.SUCCEEDED: RefundState.SUCCEEDED,
    RefundOutcome.FAILED: RefundState.FAILED,
}


def create_refund(merchant: Merchant, payment_id: str, body: CreateRefundInput,
                  origin: RequestOrigin | None = None) -> Refund:
    """``origin``: the request making it. A retry of the same request whose first answer was lost gets the refund it
    made, not a duplicate-number refusal (the refund number's claim remembers which request took it)."""
    # The payment services (and the routing they create with) are the refunds API's: a callback or a worker that
    # settles a refund through this module never loads them.
    from chalicelib.service.payments import get_payment

    payment = get_payment(merchant, payment_id)
    if payment.status is not PaymentState.SUCCEEDED:
        raise InvalidState(f"payment is {payment.status}; only succeeded payments can be refunded", param="payment_id")
    if body.amount > payment.amount_refundable:
        earlier = _made_by(origin, payment_id, body.merchant_refund_no)  # this refund itself may have used it up
        if earlier is not None:
            return earlier
        raise RefundExceedsCaptured(
            f"amount {body.amount} exceeds the refundable {payment.amount_refundable}", param="amount")
    attempt = state_repo.get_attempt(payment.succeeded_attempt_id or "")
    if attempt is None:
        raise InvalidState("payment has no captured attempt", param="payment_id")
    channel_adapter = adapter(attempt.channel)
    if isinstance(channel_adapter, ChecksAmounts):  # an amount the channel cannot take is refused before any reservation
        channel_adapter.check_amount(Money(body.amount, payment.currency))
    from chalicelib.stepup.hooks import assess_refund  # risk control: a deny reserves nothing

    decision = assess_refund(payment, body.amount)
    side = fx_payments.refund_side(payment, body.amount)  # a converted payment's settlement side, locked ratio
    now = iso(utcnow())
    refund = Refund(
        refund_id=new_id("re"), payment_id=payment_id, attempt_id=attempt.attempt_id, merchant_id=merchant.merchant_id,
        channel=attempt.channel, account_id=attempt.account_id, amount=body.amount, currency=payment.currency,
        status=RefundState.PENDING, version=0, created_at=now, updated_at=now,
        merchant_refund_no=body.merchant_refund_no, reason=body.reason, risk=decision.record(), **side.fields,
    )
    table = state_repo.state_table()
    tx = Transaction()
    decision.write(tx, count=True)  # its record and the payer's refunded amount, in the refund's own transaction
    tx.update("payment", table, records.payment_key(payment_id), {"updated_at": now},
              add_values={"amount_refundable": -body.amount, "amount_refund_pending": body.amount, "version": 1,
                          **side.add},
              condition="#status = :succeeded AND amount_refundable >= :amount" + side.condition,
              condition_values={":succeeded": "succeeded", ":amount": body.amount, **side.values})
    tx.put_new("refund_no", table, {**records.refund_no_key(payment_id, body.merchant_refund_no),
                                    "refund_id": refund.refund_id, **(origin.item() if origin else {})})
    # If the refund worker's message is lost (DLQ after a long channel outage), status sync resubmits it.
    tx.put_new("refund", table, {**records.refund_item(refund),
                                 **first_sync(utcnow(), refund.refund_id, after_s=PENDING_REFUND_RESUBMIT_S)})
    submit = outbox.add_command(tx, topic="refunds", object_id=refund.refund_id, command="refund.submit", now=now)
    try:
        tx.commit()
    except TransactionConflict as exc:
        if "refund_no" in exc.failed_labels:
            earlier = _made_by(origin, payment_id, body.merchant_refund_no)
            if earlier is not None:
                return earlier
            raise DuplicateMerchantRefundNo(
                f"merchant_refund_no {body.merchant_refund_no!r} is already used", param="merchant_refund_no") from exc
        raise RefundExceedsCaptured("amount exceeds what is left to refund", param="amount") from exc
    outbox.publish_after_commit([submit])
    return refund


def _made_by(origin: RequestOrigin | None, payment_id: str, merchant_refund_no: str) -> Refund | None:
    """The refund this very request made before, when the number's claim says so."""
    claim = state_repo.get_item(records.refund_no_key(payment_id, merchant_refund_no))
    if origin is None or claim is None or not origin.matches(claim):
        return None
    return state_repo.get_refund(str(claim["refund_id"]))


def get_refund(merchant: Merchant, refund_id: str) -> Refund:
    refund = state_repo.get_refund(refund_id)
    if refund is None or refund.merchant_id != merchant.merchant_id:
        raise NotFound(f"no refund {refund_id}", param="refund_id")
    return refund


def submit_refund(refund_id: str) -> str:
    """Worker step: send a pending refund to the channel (idempotent there by our refund id)."""
    refund = state_repo.get_refund(refund_id)
    if refund is None:
        raise NotFound(f"no refund {refund_id}")
    if refund.status is not RefundState.PENDING:
        return "already_submitted"
    attempt = state_repo.get_attempt(refund.attempt_id)
    assert attempt is not None
    account = account_or_error(refund.account_id)
    request = RefundRequest(
        refund_id=refund_id, attempt_id=attempt.attempt_id, channel_transaction_id=attempt.channel_transaction_id,
        amount=refund.money, attempt_amount=attempt.money, reason=refund.reason,
        notify_url=callback_url(settings().public_base_url, refund.channel, refund.account_id),
        created_at=refund_refs(refund, attempt)["created_at"], method=attempt.method,
        channel_order_ref=attempt.channel_order_ref,
    )
    try:
        status = adapter(refund.channel).refund(account, request)
    except InvalidRequest as exc:  # the adapter would not send it (an amount the channel cannot express): nothing moved
        log.warning("refund %s not sendable to %s: %s", refund_id, refund.channel, exc.message)
        status = RefundStatus(outcome=RefundOutcome.FAILED, raw_status=f"INVALID_{(exc.param or 'request').upper()}")
    except ChannelError as exc:
        if exc.retryable:
            raise  # SQS redelivers; the channel dedupes on our refund id
        if exc.refused:  # the channel said no: no money moved, the reservation can go back
            status = RefundStatus(outcome=RefundOutcome.FAILED, raw_status=exc.channel_code or "REFUSED")
        else:  # the channel may have taken it (e.g. an unverifiable answer): only a query may decide
            log.error("refund %s outcome unknown after %s; status sync will query", refund_id, exc.channel_code)
            status = RefundStatus(outcome=RefundOutcome.PROCESSING, raw_status=exc.channel_code or "UNKNOWN")
    return str(apply_refund_status(refund_id, status, source="refund_worker", known=refund))


def apply_refund_status(refund_id: str, status: RefundStatus, *, source: str, dedupe: Dedupe | None = None,
                        known: Refund | None = None, audit: str | None = None) -> Applied:
    """``known``: the refund as the caller just read it, used for the first decision (saves one read).
    ``audit``: why, written as an audit record in the transition's transaction (reconciliation repairs)."""
    target = _OUTCOME_TO_STATE.get(status.outcome)
    for _ in range(MAX_RACE_RETRIES):
        refund, known = known or state_repo.get_refund(refund_id), None
        if refund is None:
            raise NotFound(f"no refund {refund_id}")
        if amount_differs(status.amount, refund.money, object_id=refund_id, source=source):
            return Applied.MISMATCH
        if target is None or not refund_can(refund.status, target):
            if target is RefundState.SUCCEEDED and refund.status is RefundState.FAILED:
                log.error("ALERT refund %s succeeded at the channel after we recorded it failed (%s)", refund_id,
                          source, extra=alert("refund_success_after_failure", refund_id=refund_id, source=source))
            return Applied.NO_CHANGE
        try:
            _commit(refund, target, status, source=source, dedupe=dedupe, audit=audit)
        except TransactionConflict as conflict:
            if Dedupe.was_seen(conflict):
                return Applied.DUPLICATE
            continue
        return Applied.APPLIED
    raise RuntimeError(f"refund {refund_id} kept racing")


def _refund_journal(refund: Refund) -> Journal:
    if refund.channel == "banktransfer":  # the transfer back leaves the reserve itself (docs/transfers-in.md)
        from chalicelib.service import transfers_in

        return transfers_in.refund_journal(refund)
    return fx_payments.refund_paid(refund)


def _instalment_fee_returned(refund: Refund) -> tuple[int, int] | None:
    """For a refund of a payment whose seller paid the instalment fee (Alipay only): the fee returned with it and
    the amount refunded before it, read now (docs/instalments.md#refunds). None for every other refund."""
    if "seller" not in CHANNEL_FEE_PAYERS.get(refund.channel, frozenset()):
        return None
    payment = state_repo.get_payment(refund.payment_id)
    plan = payment.instalments if payment is not None else None
    if payment is None or not plan or not int(plan.get("seller_fee", 0)):
        return None
    if not plan.get("seller_fee_refundable", True):  # the merchant's contract keeps the fee with the channel
        return 0, payment.amount_refunded
    returned = seller_fee_returned(int(plan["seller_fee"]), int(plan["principal"]), payment.amount_refunded,
                                   refund.amount)
    return returned, payment.amount_refunded


def _commit(refund: Refund, target: RefundState, status: RefundStatus, *, source: str, dedupe: Dedupe | None,
            audit: str | None = None) -> None:
    now = utcnow()
    stamp = iso(now)
    table = state_repo.state_table()
    tx = Transaction()
    events = []
    changes: dict[str, object] = {"status": str(target), "updated_at": stamp}
    if status.channel_refund_id:
        changes["channel_refund_id"] = status.channel_refund_id
    if target is RefundState.FAILED:
        changes["failure_reason"] = status.raw_status
    if target is RefundState.PROCESSING:
        changes.update(first_sync(now, refund.refund_id, after_s=30))
    # Reconciliation finds the refund on the day it was made (when channels list it), whatever its status.
    changes.update(recon_index.index_fields(refund.account_id, "refund", refund.refund_id, parse_iso(refund.created_at)))
    state_repo.guard_version(tx, "refund", records.refund_key(refund.refund_id), status=str(refund.status),
                             version=refund.version, changes=changes,
                             remove=SYNC_FIELDS if target is not RefundState.PROCESSING else ())
    if target is RefundState.SUCCEEDED:
        fee_back = _instalment_fee_returned(refund)
        guard, guard_values = "amount_refund_pending >= :amount", {":amount": refund.amount}
        if fee_back is not None:  # the share returned depends on what was refunded before: it must not move meanwhile
            guard, guard_values = guard + " AND amount_refunded = :before", {**guard_values, ":before": fee_back[1]}
        tx.update("payment", table, records.payment_key(refund.payment_id), {"updated_at": stamp},
                  add_values={"amount_refund_pending": -refund.amount, "amount_refunded": refund.amount, "version": 1,
                              **fx_payments.refund_settled(refund, succeeded=True)},
                  condition=guard, condition_values=guard_values)
        journals: list[tuple[ledger.Journal, str | None]] = [
            (_refund_journal(refund), recon_index.beijing_day(parse_iso(refund.created_at)))]
        if fee_back is not None and fee_back[0]:  # undated, as the fee it gives back (docs/instalments.md#ledger)
            journals.append((ledger.instalment_fee_returned(refund.refund_id, refund.account_id, refund.merchant_id,
                                                            Money(fee_back[0], refund.currency)), None))
        add_journals(tx, journals, now=stamp)
        # Invoiced money refunded is reversed by a red invoice (chalicelib/invoices/reversal.py decides how much).
        events.append(outbox.add_command(tx, topic="invoices", object_id=refund.refund_id,
                                         command="invoice.refund", now=stamp))
    elif target is RefundState.FAILED:
        tx.update("payment", table, records.payment_key(refund.payment_id), {"updated_at": stamp},
                  add_values={"amount_refund_pending": -refund.amount, "amount_refundable": refund.amount, "version": 1,
                              **fx_payments.refund_settled(refund, succeeded=False)},
                  condition="amount_refund_pending >= :amount", condition_values={":amount": refund.amount})
    event_type = REFUND_TRANSITIONS[(refund.status, target)]
    if event_type:
        public = refund.evolve(status=target, updated_at=stamp, failure_reason=changes.get("failure_reason")).public()
        events.append(outbox.add_event(tx, merchant_id=refund.merchant_id, object_id=refund.refund_id,
                                       event_type=event_type, data=public, now=stamp))
    if dedupe is not None:
        dedupe.add_to(tx, object_id=refund.refund_id, applied=str(target), now=stamp)
    if audit:
        tx.put_new("audit", table, {"pk": f"AUDIT#{refund.refund_id}", "sk": f"{stamp}#{new_id('aud')}",
                                    "source": source, "refund_from": str(refund.status), "refund_to": str(target),
                                    "reason": audit, "raw_status": status.raw_status})
    tx.commit()
    log.info("refund %s %s -> %s via %s", refund.refund_id, refund.status, target, source)
    outbox.publish_after_commit(events)
