"""SQS consumer of the payouts queue: money leaving the reserve through the bank.

  {"command": "dispatch", "batch_id"}                       a batch (or a retry round) committed: queue its lines
  {"command": "settle", "merchant_id", "currency", "day"}   settle a merchant's day, then send it
  {"command": "send_settlement", "settlement_id"}           send a settlement (or ask how it ended)
  {"batch_id", "first_line", "last_line"}                   send a payout batch's items, 100 lines a message
  {"command": "reconcile_reserve", "reserve_id", "day"}     the reserve's bank statement of a day vs the ledger

Whatever the bank has not finished is asked about again later: the message goes back with a delay.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from chalicelib.observability import alert
from functions.sqs_batch import sqs_handler

log = logging.getLogger(__name__)


def _settle(body: dict[str, Any]) -> str:
    from chalicelib.service import settlement

    record = settlement.settle_day(str(body["merchant_id"]), str(body["currency"]), date.fromisoformat(str(body["day"])))
    if record["status"] != "instructed":
        return str(record["outcome"])
    return _send_settlement({"command": "send_settlement", "settlement_id": record["settlement_id"]})


def _bank(reserve_id: str) -> Any:
    """The reserve's bank, or None (logged, alerting) when no bank account is configured for it: a message for it
    is consumed rather than retried, since retrying cannot configure one; the money stays where the ledger says."""
    from chalicelib.banks import accounts
    from chalicelib.domain.errors import NotFound

    try:
        return accounts.bank_for(reserve_id)
    except NotFound as missing:
        log.error("payouts: %s", missing.message, extra=alert("payout_no_bank", reserve_id=reserve_id))
        return None


def _send_settlement(body: dict[str, Any]) -> str:
    from chalicelib.service import payouts, settlement
    from chalicelib.storage import outbox

    record = settlement.get_settlement(str(body["settlement_id"]))
    bank = _bank(str(record["terms"]["reserve_id"]))
    if bank is None:
        return "no_bank"
    status = settlement.send(record["settlement_id"], bank)
    if status == "instructed":
        outbox.send(payouts.QUEUE, {"command": "send_settlement", "settlement_id": record["settlement_id"]},
                    delay_s=payouts.FOLLOW_UP_S)
    return status


def _send_batch_lines(body: dict[str, Any]) -> str:
    # Imported with the first message: the bank client brings the outbound HTTP transport.
    from chalicelib.service import payouts
    from chalicelib.storage import outbox

    batch_id, first, last = str(body["batch_id"]), int(body["first_line"]), int(body["last_line"])
    bank = _bank(payouts.reserve_of(batch_id))
    if bank is None:
        return "no_bank"
    counts = payouts.process(batch_id, first, last, bank)
    open_lines = counts.get("pending", 0) + counts.get("processing", 0)
    if open_lines:
        outbox.send(payouts.QUEUE, body, delay_s=payouts.FOLLOW_UP_S)  # the bank has not finished them yet
        return f"{open_lines} still open"
    return "done"


def _reconcile_reserve(body: dict[str, Any]) -> str:
    from chalicelib.recon import reserve

    run = reserve.reconcile(str(body["reserve_id"]), date.fromisoformat(str(body["day"])))
    return f"{run['unresolved']} to review"


def _dispatch(body: dict[str, Any]) -> str:
    from chalicelib.service import payouts

    return f"{payouts.dispatch(str(body['batch_id']))} messages"


def _run(body: dict[str, Any]) -> str:
    command = body.get("command")
    if command == "dispatch":
        return _dispatch(body)
    if command == "reconcile_reserve":
        return _reconcile_reserve(body)
    if command == "settle":
        return _settle(body)
    if command == "send_settlement":
        return _send_settlement(body)
    return _send_batch_lines(body)


handler = sqs_handler(_run)
