"""A channel converting what it holds for us and paying the reserve in the settlement currency, booked with
the difference between its rate and the rates our payments locked (docs/fx.md).

The caller (a channel's settlement report, or the reserve bank's statement line that carries the credit) says
how much presentment money left clearing and how much settlement money arrived. What the payments locked for
that money is read from the pair's open position: the whole settlement side when the whole presentment side
is cleared, otherwise its share of it, truncated (the rounding rule of ``chalicelib/domain/fx.py``), so a
sequence of conversions closing a position closes it at exactly what was locked. The rest is the hub's gain
or loss in ``fx_difference:<CCY>``.

One run at a time per pair: the share is computed from balances read before the journal is written. The
journal's id is derived from ``reference``, so the same report booked twice books once.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain import fx, ledger
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.money import Money
from chalicelib.service import audit
from chalicelib.storage import ledger_repo
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)


def open_position(pair: str) -> tuple[int, int]:
    """The pair's presentment units captured and not yet converted by a channel (nor refunded), and the
    settlement units they locked."""
    base, quote = fx.parse_pair(pair)
    return (-ledger_repo.balance(ledger.fx_position_account(pair, base)),
            ledger_repo.balance(ledger.fx_position_account(pair, quote)))


def book_conversion(reference: str, channel_account_id: str, reserve_id: str, cleared: Money, received: Money, *,
                    value_day: str | None = None, actor: audit.Actor | None = None) -> dict[str, Any]:
    """Book ``cleared`` (presentment currency) leaving the channel's clearing and ``received`` (settlement
    currency) arriving in the reserve. Returns what was booked: the locked equivalent and the difference
    (positive: a loss, the channel paid less than the payments locked). ``actor``: an operator booking it by
    hand (from the bank's statement line), audited in the journal's own transaction."""
    pair = cleared.currency + received.currency
    try:
        fx.parse_pair(pair)
    except fx.FxError as exc:
        raise InvalidRequest(str(exc), param="currency") from exc
    if cleared.minor <= 0 or received.minor <= 0:
        raise InvalidRequest("a conversion moves money on both sides", param="amount")
    if ledger_repo.journal("fx_channel_settled", reference) is not None:  # a report read again: booked once
        return {"journal_id": ledger.journal_id("fx_channel_settled", reference), "pair": pair, "already_booked": True}
    presentment_open, settlement_open = open_position(pair)
    if not 0 < cleared.minor <= presentment_open or settlement_open <= 0:
        raise InvalidRequest(f"{cleared.minor} {cleared.currency} cleared but only {presentment_open} is open "
                             f"in {pair}", param="amount")
    locked = settlement_open if cleared.minor == presentment_open else (
        cleared.minor * settlement_open // presentment_open)
    if locked <= 0:
        raise InvalidRequest(f"{cleared.minor} {cleared.currency} is too little of the {pair} position to convert",
                             param="amount")
    journal = ledger.fx_channel_settled(reference, channel_account_id, reserve_id, cleared,
                                        Money(locked, received.currency), received)
    tx = Transaction()
    ledger_repo.add_journal(tx, journal, now=iso(utcnow()), value_day=value_day)
    booked = {"journal_id": journal.journal_id, "pair": pair, "cleared": cleared.minor, "locked": locked,
              "received": received.minor, "difference": locked - received.minor}
    if actor is not None:
        audit.add(tx, actor, "fx.book_conversion", reference, after={**booked, "channel_account": channel_account_id,
                                                                     "reserve": reserve_id})
    try:
        tx.commit()
    except TransactionConflict:
        if ledger_repo.journal("fx_channel_settled", reference) is None:
            raise
        log.info("conversion %s was booked before; nothing booked now", reference)
        return {"journal_id": journal.journal_id, "pair": pair, "already_booked": True}
    log.info("conversion %s: %s %s cleared, %s %s received, %s locked (difference %s)", reference, cleared.minor,
             cleared.currency, received.minor, received.currency, locked, locked - received.minor)
    return {**booked, "already_booked": False}
