"""Step-up records in the state table.

  STEPUP#<payment_id>          / CHALLENGE     the payment's current challenge: method, status, the code's keyed
                                               hash (never the code), deadline, tries (kept across restarts)
  SMSRATE#<payer|phone>#<digest> / H<yyyymmddhh>  codes sent in that hour (rate limit), expires by TTL
  WAC#<merchant>#<user digest>  / <credential id>  a payer's registered WebAuthn credential: public key, sign count
  WAREG#<merchant>#<user digest> / CHALLENGE    a registration's challenge, until it is answered or expires
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.models import Payment
from chalicelib.storage import records, state_repo
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)


def challenge_key(payment_id: str) -> dict[str, str]:
    return {"pk": f"STEPUP#{payment_id}", "sk": "CHALLENGE"}


def get_challenge(payment_id: str) -> dict[str, Any] | None:
    return state_repo.get_item(challenge_key(payment_id))


def record_confirm_decision(payment: Payment, record: dict[str, Any], decision: Any, *, challenge: bool) -> None:
    """A confirm's decision goes on the payment (and its own record); a challenge marks the step-up required.
    Fields outside the state machine: no version bump, as the confirm step's own writes (confirmation.py)."""
    tx = Transaction()
    decision.write(tx, count=False)
    changes: dict[str, Any] = {"risk": {**(payment.risk or {}), "confirm": record}, "updated_at": iso(utcnow())}
    if challenge:
        # The step-up is this attempt's and this card's, not the payment's: a payer who passes it and then opens
        # another attempt (another card) has proven nothing for that one (hooks.assess_confirm checks both).
        changes["step_up"] = {"operation": "confirm", "methods": list(decision.outcome.step_up), "status": "required",
                              "required_at": iso(utcnow()), "tries": int((payment.step_up or {}).get("tries", 0)),
                              "attempt_id": payment.current_attempt_id,
                              "card_fingerprint": (payment.card or {}).get("fingerprint")}
    tx.update("payment", state_repo.state_table(), records.payment_key(payment.payment_id), changes,
              condition="#status IN (:pending, :processing)",
              condition_values={":pending": "pending", ":processing": "processing"})
    try:
        tx.commit()
    except TransactionConflict as conflict:  # finished meanwhile: the confirm is then refused as not open
        log.info("confirm decision on %s not recorded: %s", payment.payment_id, conflict.failed_labels)
