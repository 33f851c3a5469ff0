"""SQS consumers report partial batch failures, so one bad message never redelivers its whole batch.

Infra turns on ``ReportBatchItemFailures`` for every trigger; without it the failures we return here
would be ignored and failed messages silently deleted. Poison messages go to the DLQ after maxReceiveCount.

The loop is written out rather than taken from Powertools' batch utility: importing that utility costs
~55-65 ms at every cold start of every worker (it loads Powertools' logger, its data classes and asyncio),
while what a standard (non-FIFO) queue needs is only this: run each message, name the ones that failed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from chalicelib.observability import configure_logging
from functions import imported

log = logging.getLogger(__name__)

SqsHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def sqs_handler(handle_body: Callable[[dict[str, Any]], object]) -> SqsHandler:
    """A Lambda handler for an SQS trigger that runs ``handle_body`` on each message's JSON body.

    A message whose body is not JSON, or whose handling raises, is reported in ``batchItemFailures`` and
    comes back after its visibility timeout; the others are deleted by the event source mapping. A wholly
    failed batch is reported the same way instead of raising: the outcome is the same (all retried) and the
    function's error metric then counts real crashes only.
    """
    configure_logging()
    imported()  # a worker module's last line builds its handler: its import is over

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures: list[dict[str, str]] = []
        for record in event.get("Records") or []:
            message_id = str(record.get("messageId", ""))
            try:
                handle_body(json.loads(record["body"]))
            except Exception:
                # A warning, not an error: a retry is the designed answer (a statement not published yet, a run
                # in progress). The body is not logged: it stays in the queue, and ends in the DLQ if it never passes.
                log.warning("SQS message failed; it will be retried", exc_info=True, extra={"message_id": message_id})
                failures.append({"itemIdentifier": message_id})
        return {"batchItemFailures": failures}

    return handler
