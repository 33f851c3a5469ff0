"""SQS consumers report partial batch failures, so one bad message never redelivers its whole batch.

Infra turns on ``ReportBatchItemFailures`` for every trigger; without it the failures we return here
would be ignored and failed messages silently deleted. Poison messages go to the DLQ after maxReceiveCount.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.observability import configure_logging


def sqs_handler(handle_body: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    configure_logging()
    # Report a wholly failed batch as failures too, instead of raising: the outcome is the same (all retried)
    # and the Lambda's error metric then counts real crashes only.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def record_handler(record: SQSRecord) -> object:
        return handle_body(json.loads(record.body))

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)

    return handler
