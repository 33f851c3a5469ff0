"""SQS consumer: deliver one merchant webhook event (and schedule its retry when the merchant fails)."""

from __future__ import annotations

from typing import Any

from chalicelib.service import webhooks
from functions.sqs_batch import sqs_handler


def _deliver(body: dict[str, Any]) -> str:
    return webhooks.deliver(body["event_id"], attempt=int(body.get("attempt", 1)), not_before=body.get("not_before"),
                            manual=bool(body.get("manual")))


handler = sqs_handler(_deliver)
