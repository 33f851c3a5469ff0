"""Reconciliation worker: the SQS consumer that runs one account's day (the daily fan-out that enqueues those
days is ``functions.recon_fanout``)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from chalicelib.domain.errors import DayNotOver
from chalicelib.recon.run import run_day
from functions.sqs_batch import sqs_handler


def _run(body: dict[str, Any]) -> str:
    # A statement not published yet (StatementNotReady) or a run of the same day in progress (RunInProgress)
    # raises: the message comes back after the visibility timeout and tries again, up to the DLQ.
    # A malformed statement is a completed message: the run records why it failed, an operator re-runs it.
    # A day that has not ended in Beijing is refused and the message consumed: its statement would be partial,
    # and the daily schedule enqueues it once it has ended.
    try:
        return run_day(str(body["account_id"]), date.fromisoformat(str(body["day"]))).status
    except DayNotOver as refused:
        log.warning("reconciliation refused: %s", refused.message)
        return "day_not_over"


log = logging.getLogger(__name__)
handler = sqs_handler(_run)

