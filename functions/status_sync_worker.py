"""SQS consumer: query the channel about one attempt or refund and apply what it says."""

from __future__ import annotations

from typing import Any

from chalicelib.service import status_sync
from functions.sqs_batch import sqs_handler


def _sync(body: dict[str, Any]) -> str:
    count = int(body.get("count", 0))
    if body["kind"] == "attempt":
        return status_sync.sync_attempt(body["id"], count)
    if body["kind"] == "refund":
        return status_sync.sync_refund(body["id"], count)
    raise ValueError(f"unknown sync kind {body['kind']!r}")


handler = sqs_handler(_sync)
