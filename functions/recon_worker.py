"""Reconciliation workers: the SQS consumer that runs one account's day, and the daily schedule of a channel
that fans its accounts' days out to the ``recon`` queue."""

from __future__ import annotations

from datetime import date
from typing import Any

from chalicelib.domain.clock import utcnow
from chalicelib.observability import configure_logging
from chalicelib.recon import fanout
from chalicelib.recon.run import run_day
from functions.sqs_batch import sqs_handler


def _run(body: dict[str, Any]) -> str:
    # A statement not published yet (StatementNotReady) or a run of the same day in progress (RunInProgress)
    # raises: the message comes back after the visibility timeout and tries again, up to the DLQ.
    # A malformed statement is a completed message: the run records why it failed, an operator re-runs it.
    return run_day(str(body["account_id"]), date.fromisoformat(str(body["day"]))).status


handler = sqs_handler(_run)


def fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    configure_logging()
    channel = str(event["channel"])
    return {"channel": channel, "enqueued": fanout.fan_out(channel, utcnow())}
