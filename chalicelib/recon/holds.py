"""Settlement holds: money the hub recorded as received but the channel says it never had.

The payment keeps its status (the state machine has no "unpaid again"); what changes is what the merchant
can be paid: one transaction moves the amount from ``merchant_payable`` to ``settlement_hold`` in the
ledger, marks the payment ``settlement_hold``, and writes an audit record. The journal id is deterministic
per attempt, so a second hold of the same money is refused by its own condition.
"""

from __future__ import annotations

import logging

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ids import new_id
from chalicelib.domain.ledger import Journal, settlement_held
from chalicelib.domain.models import Attempt
from chalicelib.domain.money import Money
from chalicelib.observability import alert
from chalicelib.storage import records, state_repo
from chalicelib.storage.ledger_repo import add_journal
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)
PURPOSE = "settlement_held"


def held_money(attempt: Attempt) -> Money:
    """What the attempt's capture owes the merchant, which is what is held: in the settlement currency, at the
    locked rate, for a payment presented in another currency (docs/fx.md)."""
    payment = state_repo.get_payment(attempt.payment_id)
    if payment is not None and payment.converted and attempt.amount == payment.amount:
        return payment.settlement_money
    return attempt.money


def hold_journal(attempt: Attempt) -> Journal:
    return settlement_held(attempt.attempt_id, attempt.merchant_id, held_money(attempt))


def hold_settlement(attempt: Attempt, *, reason: str, run_id: str, channel_status: str) -> bool:
    """Hold the attempt's money back from the merchant. False when it was already held (nothing written)."""
    now = iso(utcnow())
    journal = hold_journal(attempt)
    held = next(e for e in journal.entries if e.amount > 0)  # the payable's line: what is held, in its currency
    tx = Transaction()
    tx.update("payment", state_repo.state_table(), records.payment_key(attempt.payment_id), {
        "settlement_hold": {"attempt_id": attempt.attempt_id, "amount": held.amount, "currency": held.currency,
                            "reason": reason, "run_id": run_id, "journal_id": journal.journal_id, "held_at": now},
        "updated_at": now,
    }, condition="attribute_exists(pk)", condition_values={})
    add_journal(tx, journal, now=now)
    tx.put_new("audit", state_repo.state_table(), {
        "pk": f"AUDIT#{attempt.attempt_id}", "sk": f"{now}#{new_id('aud')}", "source": "recon",
        "action": PURPOSE, "reason": reason, "run_id": run_id, "raw_status": channel_status,
        "journal_id": journal.journal_id,
    })
    try:
        tx.commit()
    except TransactionConflict as conflict:
        if f"journal:{journal.journal_id}" in conflict.failed_labels:
            return False
        raise
    log.warning("settlement of %s held (%s %s): %s", attempt.attempt_id, attempt.amount, attempt.currency, reason,
                extra=alert("settlement_held", attempt_id=attempt.attempt_id, run_id=run_id, reason=reason))
    return True
