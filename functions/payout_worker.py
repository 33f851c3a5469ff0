"""SQS consumer: send a payout batch's items to the bank, 100 lines a message, and ask again about those the
bank is still processing."""

from __future__ import annotations

from typing import Any

from functions.sqs_batch import sqs_handler


def _run(body: dict[str, Any]) -> str:
    # Imported with the first message: the bank client brings the outbound HTTP transport.
    from chalicelib.banks import accounts
    from chalicelib.service import payouts
    from chalicelib.storage import outbox

    batch_id, first, last = str(body["batch_id"]), int(body["first_line"]), int(body["last_line"])
    batch = payouts.get_batch(batch_id)
    counts = payouts.process(batch_id, first, last, accounts.bank_for(str(payouts.reserve_of(batch_id))))
    open_lines = counts.get("pending", 0) + counts.get("processing", 0)
    if open_lines and batch["state"] != "rejected":
        outbox.send(payouts.QUEUE, body, delay_s=payouts.FOLLOW_UP_S)  # the bank has not finished them yet
        return f"{open_lines} still open"
    return "done"


handler = sqs_handler(_run)
