"""Scheduled sweeps: republish outbox stragglers, enqueue attempts and refunds due for a status query."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.domain.clock import iso, utcnow
from chalicelib.observability import configure_logging
from chalicelib.service import status_sync
from chalicelib.storage import outbox

configure_logging()
OUTBOX_GRACE_S = 30  # younger events are probably being published by the request that wrote them


def outbox_sweep(event: dict[str, Any], context: Any) -> dict[str, int]:
    stragglers = outbox.pending(older_than=iso(utcnow() - timedelta(seconds=OUTBOX_GRACE_S)))
    outbox.publish(stragglers)
    return {"published": len(stragglers)}


def status_sync_sweep(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"enqueued": status_sync.sweep()}

