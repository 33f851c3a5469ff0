"""Daily schedule: settle every merchant with settlement terms for the Beijing day that just ended, one message
per merchant and currency on the payouts queue (its worker settles the day and sends the money), and reconcile
each reserve account's bank statement of that day (one message per reserve, on the same queue)."""

from __future__ import annotations

from typing import Any

from chalicelib.observability import configure_logging
from functions import imported

configure_logging()


def fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.banks import accounts
    from chalicelib.domain.clock import utcnow
    from chalicelib.recon.schedule import previous_beijing_day
    from chalicelib.service import payouts, settlement
    from chalicelib.storage import config_repo, outbox

    day = previous_beijing_day(utcnow()).isoformat()
    bodies = []
    for merchant in config_repo.list_merchants():
        terms = settlement.terms_of(merchant.merchant_id)
        if terms is None or terms.paused:
            continue
        bodies += [{"command": "settle", "merchant_id": merchant.merchant_id, "currency": currency, "day": day}
                   for currency in terms.currencies]
    bodies += [{"command": "reconcile_reserve", "reserve_id": reserve_id, "day": day}
               for reserve_id in accounts.reserve_ids()]
    outbox.send_batch(payouts.QUEUE, bodies)
    return {"day": day, "enqueued": len(bodies)}


imported()
