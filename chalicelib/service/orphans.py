"""Orphans: money a channel took under an attempt id of the hub's own shape that the hub holds no record of.

Every create is recorded before the channel hears its id (``payments.create_payment``), so a retry, a crash or a
race can no longer make one. What is left comes from outside that path: an order made by an older release that
called the channel first, a record removed by hand, a test payment at the channel's console under a hub-shaped
id. Such money belongs to no merchant the hub can name, so it goes back to the payer, and nothing waits for a
person: whichever sees it first (a callback, a status query, reconciliation) adopts it.

Adopting writes a placeholder payment, already closed and owned by no merchant, with the orphan's attempt under
the channel's own id; the success is then applied through the state machine like any late success, where the
policy for a payment with no merchant is to refund. So the capture and the refund are journaled in the ledger,
each step has its audit record, the refund is sent and followed by the refund worker and status sync like any
other, and an ``orphan_money`` alert tells operators. Only an orphan whose amount the channel does not state
is left to a person (``orphan_amount_unknown``): the hub will not guess how much to give back.
"""

from __future__ import annotations

import logging

from chalicelib.channels.base import PaymentOutcome, PaymentStatus
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ids import is_hub_id, new_id
from chalicelib.domain.models import Attempt, Payment
from chalicelib.domain.states import AttemptState, PaymentState
from chalicelib.observability import alert
from chalicelib.service.outcomes import Applied, apply_attempt_status
from chalicelib.storage import records, state_repo
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)
# The owner of placeholder payments. No merchant has this id (merchant ids are ``mch_...``), so no webhook goes
# out for them and no merchant can read them; operators find them through the alert and the audit trail.
ORPHAN_OWNER = "hub_orphans"


def is_orphan_candidate(attempt_id: str) -> bool:
    """Only ids the hub could have issued are ours to give back; anything else on a shared channel account may be
    another system's payment, which the hub must never refund."""
    return is_hub_id(attempt_id, "att")


def adopt(account: ChannelAccount, attempt_id: str, status: PaymentStatus, *, source: str) -> Applied | None:
    """Adopt the money the channel reports for the unknown ``attempt_id`` and refund it. None when there is nothing
    to give back (no success) or it cannot be done safely (no amount stated: alerted for a person)."""
    if status.outcome is not PaymentOutcome.SUCCEEDED or not is_orphan_candidate(attempt_id):
        return None
    if status.amount is None:
        log.error("ALERT channel reports money for unknown attempt %s without an amount; left for a person",
                  attempt_id, extra=alert("orphan_amount_unknown", channel=account.config.channel,
                                           account=account.account_id, attempt_id=attempt_id, source=source))
        return None
    _write_placeholder(account, attempt_id, status)
    log.error("ALERT orphan money: %s %s taken by %s/%s under %s, which the hub has no record of; refunding it",
              status.amount.minor, status.amount.currency, account.config.channel, account.account_id, attempt_id,
              extra=alert("orphan_money", channel=account.config.channel, account=account.account_id,
                          attempt_id=attempt_id, source=source, amount_minor=status.amount.minor,
                          currency=status.amount.currency))
    return apply_attempt_status(attempt_id, status, source=f"orphan:{source}")


def _write_placeholder(account: ChannelAccount, attempt_id: str, status: PaymentStatus) -> None:
    """A closed payment and attempt under the orphan's id; a second adopter (a racing callback) finds it written."""
    assert status.amount is not None
    stamp = iso(utcnow())
    payment_id = new_id("pay")
    method = account.config.methods[0] if account.config.methods else account.config.channel
    payment = Payment(
        payment_id=payment_id, merchant_id=ORPHAN_OWNER, merchant_order_no=f"orphan:{attempt_id}",
        amount=status.amount.minor, currency=status.amount.currency, description="money with no hub record",
        method=method, status=PaymentState.CLOSED, version=0, created_at=stamp, updated_at=stamp, expires_at=stamp,
        current_attempt_id=attempt_id, failure_reason="orphan",
    )
    attempt = Attempt(
        attempt_id=attempt_id, payment_id=payment_id, merchant_id=ORPHAN_OWNER, channel=account.config.channel,
        account_id=account.account_id, method=method, amount=status.amount.minor, currency=status.amount.currency,
        status=AttemptState.CLOSED, version=0, created_at=stamp, updated_at=stamp, expires_at=stamp,
        raw_status="ORPHAN",
    )
    table = state_repo.state_table()
    tx = Transaction()
    tx.put_new("attempt", table, records.attempt_item(attempt))
    tx.put_new("payment", table, records.payment_item(payment))
    tx.put_new("audit", table, {"pk": f"AUDIT#{attempt_id}", "sk": f"{stamp}#{new_id('aud')}", "source": "orphan",
                                "attempt_from": "unknown", "attempt_to": "closed", "payment_id": payment_id,
                                "reason": "orphan_adopted", "raw_status": status.raw_status})
    try:
        tx.commit()
    except TransactionConflict as conflict:
        if "attempt" not in conflict.failed_labels:
            raise
        log.info("orphan %s already adopted", attempt_id)
