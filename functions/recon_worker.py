"""Reconciliation worker: the SQS consumer that runs one account's day (the daily fan-out that enqueues those
days is ``functions.recon_fanout``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from chalicelib.recon.run import run_day
from functions.sqs_batch import sqs_handler


def _run(body: dict[str, Any]) -> str:
    # A statement not published yet (StatementNotReady) or a run of the same day in progress (RunInProgress)
    # raises: the message comes back after the visibility timeout and tries again, up to the DLQ.
    # A malformed statement is a completed message: the run records why it failed, an operator re-runs it.
    return run_day(str(body["account_id"]), date.fromisoformat(str(body["day"]))).status


handler = sqs_handler(_run)

