"""SQS consumer: send a pending refund to its channel."""

from __future__ import annotations

from typing import Any

from chalicelib.service import refunds
from functions.sqs_batch import sqs_handler


def _submit(body: dict[str, Any]) -> str:
    if body.get("command") != "refund.submit":
        raise ValueError(f"unknown refund command {body.get('command')!r}")
    return refunds.submit_refund(body["object_id"])


handler = sqs_handler(_submit)
