"""The reserve account's own bank statement against the ledger, per reserve and Beijing day.

The bank is the judge of what entered and left the reserve. A day's statement is read through the bank-direct
adapter and every line is accounted for:

  debit carrying our reference     a payout item or a settlement the ledger shows paid that day, same amount
  credit carrying our reference    a transfer of ours that came back (退票): the payout item or settlement it
                                   paid is marked returned and its money is the merchant's again, once
  credit from a channel's account  the channel settling into the reserve: booked (``channel_settled``, once per
                                   bank line), moving the channel's clearing into the reserve; a channel holding
                                   other currencies converted them: listed, to be booked from its payout report
  any other credit                 a payer business's transfer: handed to ``transfers_in.apply_credit``
                                   (idempotent: the intraday sweep may have applied it already)

then the other way: every payout or settlement the ledger shows paid that day must be on the statement. Last,
the day's movement on the statement (closing - opening balance) must equal the ledger's movement on the
reserve account for the day. Whatever does not agree is an item for a person; the run's record keeps them.

  RESERVE_RUN#<reserve_id> / <day>     status, totals, items (recon table); a re-run replaces it
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from chalicelib.banks.accounts import channel_paying_accounts
from chalicelib.banks.base import BankEntry, BankStatement
from chalicelib.domain import ledger
from chalicelib.domain.clock import iso, require_day_over, utcnow
from chalicelib.observability import alert
from chalicelib.recon.repo import table
from chalicelib.service import payouts, settlement, transfers_in
from chalicelib.storage import ledger_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)
# Journals that took money out of the reserve by a transfer of ours: their reference is (or names) the transfer's.
PAID_PURPOSES = ("payout_paid", "settlement_paid", "refund_paid", "bank_receipt_returned")
CreditHandler = Callable[[str, BankEntry], str]


def _run_key(reserve_id: str, day: date) -> dict[str, str]:
    return {"pk": f"RESERVE_RUN#{reserve_id}", "sk": day.isoformat()}


def get_run(reserve_id: str, day: date) -> dict[str, Any] | None:
    item = client("dynamodb").get_item(TableName=table(), Key=to_item(_run_key(reserve_id, day)),
                                       ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def _our_reference(entry: dict[str, Any]) -> str:
    """The bank reference a paid journal's transfer went under."""
    if entry["purpose"] == "settlement_paid":
        from chalicelib.service.settlement import transfer_reference

        return transfer_reference(str(entry["reference"]))
    if entry["purpose"] == "refund_paid":  # a bank-transfer payment refunded to the payer's account
        return transfers_in.refund_reference(str(entry["reference"]))
    return str(entry["reference"])  # payout items and returned credits: the journal's reference is the transfer's


def _return_known(reserve: str, line: BankEntry) -> bool:
    """A return already booked (by an earlier run of the day): its journal is in the day's reserve entries."""
    return any(entry["purpose"] == "transfer_returned" and entry["reference"] == line.transfer_reference
               for entry in ledger_repo.day_entries(reserve, line.value_day.isoformat()))


def _book_channel_settlement(reserve_id: str, account_id: str, entry: BankEntry) -> bool:
    journal = ledger.channel_settled(f"{reserve_id}:{entry.bank_reference}", account_id, reserve_id, entry.amount)
    tx = Transaction()
    ledger_repo.add_journal(tx, journal, now=iso(utcnow()), value_day=entry.value_day.isoformat())
    try:
        tx.commit()
    except TransactionConflict as conflict:
        if f"journal:{journal.journal_id}" in conflict.failed_labels:
            return False  # booked by an earlier run of the day
        raise
    return True


def reconcile(reserve_id: str, day: date, *, statement: BankStatement | None = None,
              apply_credit: CreditHandler | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Reconcile the reserve's day (which must have ended). ``statement``: the bank's, when the caller has it
    (else read through the bank-direct adapter); ``apply_credit``: what takes a payer business's credit."""
    require_day_over(day, now=now)
    if statement is None:
        from chalicelib.banks.accounts import bank_for

        adapter, account = bank_for(reserve_id)
        statement = adapter.statement(account, day)
    handler: CreditHandler = apply_credit or transfers_in.apply_credit
    channels = channel_paying_accounts(reserve_id)
    currency = statement.opening_balance.currency
    reserve = ledger.reserve_account(reserve_id, currency)
    items: list[dict[str, Any]] = []
    counts = {"debits": 0, "credits": 0, "channel_settlements": 0, "transfers_in": 0, "returns": 0}

    paid = {}
    for entry in ledger_repo.day_entries(reserve, day.isoformat()):
        if entry["purpose"] in PAID_PURPOSES:
            paid[_our_reference(entry)] = -int(entry["amount"])  # a credit of the reserve: money out
    seen: set[str] = set()
    for line in statement.entries:
        if line.direction == "debit":
            counts["debits"] += 1
            reference = line.transfer_reference or ""
            if reference not in paid:
                items.append(_item("unrecorded_debit", line, "the bank paid this; the ledger has no payment under "
                                   "its reference that day"))
            elif paid[reference] != line.amount.minor:
                items.append(_item("amount_differs", line, f"the ledger paid {paid[reference]}"))
            seen.add(reference)
            continue
        counts["credits"] += 1
        if line.transfer_reference:
            counts["returns"] += 1
            reason = line.postscript or "returned by the payee's bank"
            booked = (payouts.returned_after_paid(line.transfer_reference, line.amount, line.value_day.isoformat(),
                                                  reason)
                      or settlement.returned_after_paid(line.transfer_reference, line.amount,
                                                        line.value_day.isoformat(), reason))
            if not booked and not _return_known(reserve, line):
                items.append(_item("returned_transfer", line, "a transfer of ours came back and nothing paid under "
                                   "its reference can take it: see the reference (a refund to a payer, a return)"))
        elif line.counterparty_account_no in channels:
            counts["channel_settlements"] += 1
            account_id, currencies = channels[line.counterparty_account_no]
            if currencies == (line.amount.currency,):
                _book_channel_settlement(reserve_id, account_id, line)
            else:  # the channel converted what it held in other currencies: how much of each, only it can say
                items.append(_item("channel_conversion", line, f"{account_id} holds {', '.join(currencies)}: book the "
                                   "conversion from the channel's payout report (payhub fx book-conversion)"))
        else:
            counts["transfers_in"] += 1
            handler(reserve_id, line)  # applied once: a credit the intraday sweep applied comes back "duplicate"
    for reference, amount in sorted(paid.items()):
        if reference not in seen:
            items.append({"kind": "missing_debit", "reference": reference, "amount_minor": amount,
                          "detail": "the ledger paid this that day; the bank's statement does not show it"})
    bank_movement = statement.closing_balance.minor - statement.opening_balance.minor
    ledger_movement = ledger_repo.day_movement(reserve, day.isoformat(), consistent=True)
    if bank_movement != ledger_movement:
        items.append({"kind": "reserve_mismatch", "amount_minor": bank_movement - ledger_movement,
                      "detail": f"the statement moved {bank_movement}, the ledger's reserve account {ledger_movement}"})
    run = {**_run_key(reserve_id, day), "reserve_id": reserve_id, "day": day.isoformat(), "currency": currency,
           "status": "completed", "finished_at": iso(utcnow()), "items": items, "unresolved": len(items),
           "totals": {**counts, "bank_movement": bank_movement, "ledger_movement": ledger_movement,
                      "opening_balance": statement.opening_balance.minor,
                      "closing_balance": statement.closing_balance.minor}}
    client("dynamodb").put_item(TableName=table(), Item=to_item(run))
    if items:
        log.warning("reserve %s %s: %d item(s) to review", reserve_id, day, len(items),
                    extra=alert("reserve_recon_unresolved", reserve_id=reserve_id, day=day.isoformat()))
    return {k: v for k, v in run.items() if k not in ("pk", "sk")}


def _item(kind: str, line: BankEntry, detail: str) -> dict[str, Any]:
    return {"kind": kind, "bank_reference": line.bank_reference, "reference": line.transfer_reference,
            "amount_minor": line.amount.minor, "direction": line.direction,
            "counterparty": f"{line.counterparty_name} {line.counterparty_account_no}".strip(), "detail": detail}

