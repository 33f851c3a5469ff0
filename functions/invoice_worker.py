"""SQS consumer: issue invoices at the provider, follow them up, and reverse them when money is refunded."""

from __future__ import annotations

from typing import Any

from functions.sqs_batch import sqs_handler


def _run(body: dict[str, Any]) -> str:
    # Imported on the first message, as the channel workers load their adapters: the provider client brings the
    # outbound HTTP transport, which the cold-start check (tests/unit/test_function_imports.py) keeps out of imports.
    from chalicelib.invoices import issuing, reversal

    command = body.get("command")
    if command == "invoice.issue":
        return issuing.issue(body["invoice_id"])
    if command == "invoice.check":
        return issuing.check(body["invoice_id"], int(body.get("n", 1)))
    if command == "invoice.red":
        return reversal.red(body["invoice_id"], body["bill_id"], int(body.get("n", 1)))
    if command == "invoice.refund":
        return reversal.on_refund(body["object_id"])
    raise ValueError(f"unknown invoice command {command!r}")


handler = sqs_handler(_run)
