"""Scheduled sweeps: republish outbox stragglers, enqueue attempts and refunds due for a status query."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from chalicelib.domain.clock import iso, utcnow
from chalicelib.observability import configure_logging
from chalicelib.storage import outbox
from functions import imported

configure_logging()
OUTBOX_GRACE_S = 30  # younger events are probably being published by the request that wrote them


SWEEP_BUDGET_S = 40.0  # under the sweep Lambdas' 60 s timeout; what is left waits for the next minute


def outbox_sweep(event: dict[str, Any], context: Any) -> dict[str, int]:
    deadline = time.monotonic() + SWEEP_BUDGET_S
    published = 0
    for straggler in outbox.pending(older_than=iso(utcnow() - timedelta(seconds=OUTBOX_GRACE_S))):
        outbox.publish([straggler])
        published += 1
        if time.monotonic() > deadline:
            break
    return {"published": published}


def status_sync_sweep(event: dict[str, Any], context: Any) -> dict[str, int]:
    # Imported here: it pulls in the channel seam and the payment services, which the outbox sweep sharing this
    # module would otherwise pay for at every cold start.
    from chalicelib.service import status_sync

    return {"enqueued": status_sync.sweep(SWEEP_BUDGET_S)}


def transfers_sweep(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Payer businesses' transfers: each reserve's statement of today, every credit matched once (docs/transfers-in.md)."""
    from chalicelib.service import transfers_in

    return transfers_in.sweep()


imported()
