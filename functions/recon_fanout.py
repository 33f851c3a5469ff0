"""Scheduled: the daily reconciliation of a channel, fanned out as one ``recon`` queue message per account.

A module of its own, not a function of the reconciliation worker's: the fan-out reads the config table and
sends messages, so its cold start should not load the matching engine, the repairs and the report writer
that the worker's module imports.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.clock import utcnow
from chalicelib.observability import configure_logging
from chalicelib.recon import fanout
from functions import imported


def fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    configure_logging()
    channel = str(event["channel"])
    return {"channel": channel, "enqueued": fanout.fan_out(channel, utcnow())}


imported()
