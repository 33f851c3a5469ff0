"""What an operator sees for a support reference the payer reads out: the session, its payment, every attempt."""

from __future__ import annotations

from typing import Any

from chalicelib.checkout import sessions
from chalicelib.domain.errors import NotFound
from chalicelib.storage import state_repo


def lookup(ref: str) -> dict[str, Any]:
    session = sessions.by_support_ref(ref)
    if session is None:
        raise NotFound(f"no checkout session with support reference {ref!r}", param="support_ref")
    payment = sessions.payment_of(session)
    attempts = []
    for indexed in sessions.attempts(session):
        attempt = state_repo.get_attempt(str(indexed["attempt_id"]))
        attempts.append({"attempt_id": indexed["attempt_id"], "method": indexed["method"],
                         "created_at": indexed["created_at"],
                         "channel": attempt.channel if attempt else None,
                         "account_id": attempt.account_id if attempt else None,
                         "status": str(attempt.status) if attempt else None,
                         "raw_status": attempt.raw_status if attempt else None})
    body = session.public(payment)
    body.update(merchant_id=session.merchant_id, merchant_name=session.merchant_name, attempts=attempts,
                support_contact=session.support_contact)
    return body
