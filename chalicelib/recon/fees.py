"""The channel's fees, booked from its statement: per account, Beijing day and fee currency, the sum of the
succeeded rows' fees (refund rows carry the fee returned, negative) moves from clearing to the channel fee
expense, value-dated to the statement's day.

One journal per day and currency, not per row: a run of a million rows would otherwise be a million ledger
transactions. The rows' own fees stay in the stored statement and each is checked against the account's fee
schedule (a ``fee`` difference names the row). A re-run that reads different fees (a corrected statement)
books only the change: the journal's reference carries the total already booked for that day and the run's
execution (its lease token), so one execution books a change once, and a later correction back to an earlier
figure is a new journal, never mistaken for one already booked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ledger import channel_fee_account, channel_fees_booked
from chalicelib.domain.money import Money
from chalicelib.storage import ledger_repo
from chalicelib.storage.transaction import Transaction, TransactionConflict


def booked(account_id: str, currency: str, day: date) -> int:
    return ledger_repo.day_movement(channel_fee_account(account_id, currency), day.isoformat(), consistent=True)


def book(account_id: str, day: date, fees_by_currency: dict[str, int], currencies: Iterable[str], *,
         execution: str) -> dict[str, int]:
    """Bring the day's booked fees to the statement's, in each of ``currencies`` (the account's and the
    statement's: a corrected statement without fees in a currency takes back what was booked in it); returns,
    per currency, what this call added."""
    added: dict[str, int] = {}
    for currency in sorted(set(currencies) | set(fees_by_currency)):
        before = booked(account_id, currency, day)
        change = fees_by_currency.get(currency, 0) - before
        if change == 0:
            continue
        journal = channel_fees_booked(f"{account_id}:{day.isoformat()}:{currency}:{before}:{execution}", account_id,
                                      Money(change, currency))
        tx = Transaction()
        ledger_repo.add_journal(tx, journal, now=iso(utcnow()), value_day=day.isoformat())
        try:
            tx.commit()
        except TransactionConflict as conflict:
            if f"journal:{journal.journal_id}" not in conflict.failed_labels:
                raise
            continue  # booked by this execution already (the message delivered twice)
        added[currency] = change
    return added
