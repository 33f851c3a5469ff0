"""What a run does about each difference. Repairs go through the state machine and the ledger, never around:

- the channel has a success the hub lacks (channel only, or a status difference): confirm with a query, then
  ``apply_attempt_status(..., source="recon")`` / ``apply_refund_status`` (the same path as callbacks: its
  journal, its audit record, the merchant's webhook, or an automatic refund per the merchant's policy);
- the hub has a success the statement lacks: query; if the channel has no such payment, hold its settlement
  (ledger entry + audit); if it has, the statement is wrong and a person takes it up with the channel;
- amount, currency, fee and duplicate-row differences go to a person and are never changed automatically.

Item statuses: ``repaired``; ``needs_review`` (a person must act); ``waiting`` (in the cross-day pool);
``retry`` (the channel could not be asked; the next run of the day tries again); ``resolved`` (nothing to
change: the hub and the channel agree after all, e.g. recorded under another day).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import field, replace
from typing import Any

from chalicelib.channels.base import ChannelAdapter, PaymentOutcome, RefundOutcome, StatementKind, StatementRow
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.models import Attempt, Payment, Refund
from chalicelib.domain.value_class import value_class
from chalicelib.recon.holds import hold_settlement
from chalicelib.recon.model import Discrepancy, DiscrepancyKind, HubRecord
from chalicelib.service.channel_refs import payment_refs, refund_refs
from chalicelib.service.orphans import adopt, is_orphan_candidate
from chalicelib.service.outcomes import Applied, apply_attempt_status
from chalicelib.service.refunds import apply_refund_status
from chalicelib.storage import state_repo

SOURCE = "recon"


class ItemStatus(enum.StrEnum):
    REPAIRED = "repaired"
    NEEDS_REVIEW = "needs_review"
    WAITING = "waiting"
    RETRY = "retry"
    RESOLVED = "resolved"


# Channel answers that mean it does not hold the money of a payment the hub recorded as paid a day ago: these
# hold the settlement. PENDING is among them on purpose: a day after the hub saw the success, "not paid" (or a
# code nobody can read) must not let the merchant be paid out money the channel may not have; a person reviews
# it either way. PROCESSING and REQUIRES_CONFIRMATION are money in flight: asked again, nothing held.
_NO_SUCH_PAYMENT = frozenset({PaymentOutcome.NOT_FOUND, PaymentOutcome.CLOSED, PaymentOutcome.FAILED,
                              PaymentOutcome.PENDING})
UNRESOLVED = frozenset({ItemStatus.NEEDS_REVIEW, ItemStatus.WAITING, ItemStatus.RETRY})
FINAL = frozenset({ItemStatus.REPAIRED, ItemStatus.NEEDS_REVIEW, ItemStatus.RESOLVED})
_REVIEW_ONLY = {
    DiscrepancyKind.AMOUNT: "amounts differ; money amounts are never changed automatically",
    DiscrepancyKind.CURRENCY: "currencies differ; never changed automatically",
    DiscrepancyKind.FEE: "the channel's fee differs from the account's fee schedule",
    DiscrepancyKind.DUPLICATE_ROW: "the statement lists the same movement more than once; take it up with the channel",
}


@value_class
class HubOps:
    """The hub operations a repair uses; the defaults are the real ones (tests pass fakes)."""

    get_attempt: Callable[[str], Attempt | None] = state_repo.get_attempt
    get_payment: Callable[[str], Payment | None] = state_repo.get_payment
    get_refund: Callable[[str], Refund | None] = state_repo.get_refund
    apply_attempt_status: Callable[..., Applied] = apply_attempt_status
    apply_refund_status: Callable[..., Applied] = apply_refund_status
    hold_settlement: Callable[..., bool] = hold_settlement
    adopt_orphan: Callable[..., Applied | None] = adopt


@value_class
class Outcome:
    status: ItemStatus
    action: str
    details: dict[str, Any] = field(default_factory=dict)


class Repairer:
    def __init__(self, account: ChannelAccount, channel: ChannelAdapter, run_id: str, hub: HubOps | None = None) -> None:
        self._account = account
        self._channel = channel
        self._run_id = run_id
        self._hub = hub or HubOps()

    def repair(self, discrepancy: Discrepancy) -> Outcome:
        if discrepancy.kind in _REVIEW_ONLY:
            return Outcome(ItemStatus.NEEDS_REVIEW, _REVIEW_ONLY[discrepancy.kind])
        try:
            if discrepancy.object_kind is StatementKind.REFUND:
                return self._refund(discrepancy)
            return self._payment(discrepancy)
        except ChannelError as exc:
            return Outcome(ItemStatus.RETRY, f"the channel could not be asked ({exc.message}); the next run retries")

    # --- payments ------------------------------------------------------------------------------------------

    def _payment(self, d: Discrepancy) -> Outcome:
        channel_says_paid = d.row is not None and d.row.status == "succeeded"
        hub_says_paid = d.record is not None and d.record.status == "succeeded"
        if channel_says_paid and not hub_says_paid:
            return self._record_channel_success(d.object_id, d.row)
        if hub_says_paid and not channel_says_paid:
            assert d.record is not None
            return self._check_hub_success(d.record, listed_as=d.row.status if d.row else None)
        return Outcome(ItemStatus.RESOLVED, "no money moved on either side")

    def _attempt(self, attempt_id: str) -> Attempt | None:
        attempt = self._hub.get_attempt(attempt_id)
        return attempt if attempt is not None and attempt.account_id == self._account.account_id else None

    def _record_channel_success(self, attempt_id: str, row: StatementRow | None) -> Outcome:
        attempt = self._attempt(attempt_id)
        if attempt is None:
            return self._orphan(attempt_id, row)
        status = self._channel.query(self._account, attempt_id, attempt.money, **payment_refs(attempt))
        if status.outcome is not PaymentOutcome.SUCCEEDED:
            return Outcome(ItemStatus.NEEDS_REVIEW, f"the statement lists a success, but the channel's query says "
                                                    f"{status.raw_status or status.outcome}",
                           {"channel_status": status.raw_status})
        if status.paid_at is None and row is not None:
            # Book the money on the day the channel moved it (the statement's), not the day it was repaired.
            status = replace(status, paid_at=row.occurred_at)
        applied = self._hub.apply_attempt_status(attempt_id, status, source=SOURCE)
        if applied is Applied.MISMATCH:
            return Outcome(ItemStatus.NEEDS_REVIEW, "the channel reports another amount than the hub holds")
        if applied is not Applied.APPLIED:
            return Outcome(ItemStatus.RESOLVED, "the hub already records this success (on another day, or just now)")
        payment = self._hub.get_payment(attempt.payment_id)
        kept = payment is not None and payment.succeeded_attempt_id == attempt_id
        effect = "merchant notified (payment succeeded)" if kept else "refunded automatically (merchant policy)"
        return Outcome(ItemStatus.REPAIRED, f"confirmed by query and recorded: {effect}",
                       {"payment_id": attempt.payment_id, "payment_status": str(payment.status) if payment else None,
                        "channel_status": status.raw_status})

    def _orphan(self, attempt_id: str, row: StatementRow | None) -> Outcome:
        """Money under an id of the hub's shape with no record at all: confirmed by a query, adopted and refunded."""
        unknown = Outcome(ItemStatus.NEEDS_REVIEW, "the channel took money for an order the hub has no attempt "
                                                   "for on this account; it cannot be credited to a merchant")
        if row is None or not is_orphan_candidate(attempt_id) or self._hub.get_attempt(attempt_id) is not None:
            return unknown  # another system's order, or an attempt of another account: not ours to give back
        status = self._channel.query(self._account, attempt_id, row.amount)
        if status.paid_at is None:
            status = replace(status, paid_at=row.occurred_at)
        applied = self._hub.adopt_orphan(self._account, attempt_id, status, source=SOURCE)
        if applied is None:
            return Outcome(ItemStatus.NEEDS_REVIEW, f"money with no hub record; the channel's query says "
                                                    f"{status.raw_status or status.outcome}, nothing was refunded",
                           {"channel_status": status.raw_status})
        return Outcome(ItemStatus.REPAIRED, "orphan money (no hub record): adopted and refunded automatically",
                       {"channel_status": status.raw_status, "applied": str(applied)})

    def _check_hub_success(self, record: HubRecord, *, listed_as: str | None) -> Outcome:
        attempt = self._attempt(record.object_id)
        if attempt is None:
            return Outcome(ItemStatus.NEEDS_REVIEW, "indexed attempt not found")
        status = self._channel.query(self._account, attempt.attempt_id, attempt.money, **payment_refs(attempt))
        if status.outcome is PaymentOutcome.SUCCEEDED:
            where = "omits it" if listed_as is None else f"lists it as {listed_as}"
            return Outcome(ItemStatus.NEEDS_REVIEW, f"the channel's query confirms the payment but its statement "
                                                    f"{where}; take it up with the channel",
                           {"channel_status": status.raw_status})
        if status.outcome not in _NO_SUCH_PAYMENT:
            # In flight at the channel (a payer still paying, a capture not done yet): ask again, hold nothing.
            return Outcome(ItemStatus.RETRY, f"the channel's answer is not final ({status.raw_status or status.outcome}); "
                                             "asked again at the next run", {"channel_status": status.raw_status})
        reason = f"the channel has no such payment (query: {status.raw_status or status.outcome})"
        held = self._hub.hold_settlement(attempt, reason=reason, run_id=self._run_id, channel_status=status.raw_status)
        return Outcome(ItemStatus.NEEDS_REVIEW, f"{reason}; settlement held" + ("" if held else " (already)"),
                       {"payment_id": attempt.payment_id, "settlement_hold": True, "channel_status": status.raw_status})

    # --- refunds -------------------------------------------------------------------------------------------

    def _refund_record(self, refund_id: str) -> Refund | None:
        refund = self._hub.get_refund(refund_id)
        return refund if refund is not None and refund.account_id == self._account.account_id else None

    def _refund(self, d: Discrepancy) -> Outcome:
        refund = self._refund_record(d.object_id)
        if refund is None:
            return Outcome(ItemStatus.NEEDS_REVIEW, "the channel lists a refund the hub has no record of on this account")
        status = self._channel.query_refund(self._account, refund.refund_id, refund.money,
                                            **refund_refs(refund, self._hub.get_attempt(refund.attempt_id)))
        if status.outcome is RefundOutcome.NOT_FOUND:
            return Outcome(ItemStatus.NEEDS_REVIEW, f"the channel has no such refund; the hub holds it as {refund.status}",
                           {"channel_status": status.raw_status})
        applied = self._hub.apply_refund_status(refund.refund_id, status, source=SOURCE, known=refund,
                                      audit=f"reconciliation {self._run_id}: {d.kind}")
        if applied is Applied.MISMATCH:
            return Outcome(ItemStatus.NEEDS_REVIEW, "the channel reports another refund amount than the hub holds")
        now = self._refund_record(refund.refund_id) or refund
        details = {"refund_status": str(now.status), "channel_status": status.raw_status}
        if applied is Applied.APPLIED:
            return Outcome(ItemStatus.REPAIRED, f"confirmed by query and recorded: refund {now.status}", details)
        if str(now.status) == str(status.outcome):
            if d.kind is DiscrepancyKind.HUB_ONLY and now.status.value == "succeeded":
                return Outcome(ItemStatus.NEEDS_REVIEW, "the channel's query confirms the refund but its statement "
                                                        "omits it; take it up with the channel", details)
            return Outcome(ItemStatus.RESOLVED, f"the hub and the channel's query agree: {now.status} "
                                                f"(the statement shows the status as of its generation)", details)
        return Outcome(ItemStatus.NEEDS_REVIEW, f"the hub holds the refund as {now.status}, the channel says "
                                                f"{status.raw_status}", details)
