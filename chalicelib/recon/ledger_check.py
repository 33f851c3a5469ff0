"""Does the ledger agree with the channel? Per account, currency and day, the clearing account's movement
(entries value-dated to that Beijing day) must equal what the statement's rows settle: succeeded payments
minus succeeded refunds, less the rows' fees (which the run books first, chalicelib/recon/fees.py; fee
differences are also checked row by row against the account's fee schedule). Where the channel states the
net it settles for the day, that figure must equal the ledger too, not only the rows' own sum: a channel
that withholds or adds money outside the rows shows up as a ``settlement_mismatch``.

Money waiting in the cross-day pool is on one side only, so the expected gap is computed from the pool:
a row pooled today is in the statement but not (yet) in today's ledger; a record pooled today the reverse;
an entry pooled earlier and paired today puts today's counterpart on one side only. Anything beyond that
gap is a ``ledger_mismatch``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from chalicelib.channels.base import StatementRow
from chalicelib.domain.ledger import clearing_account
from chalicelib.domain.money import Money
from chalicelib.domain.value_class import value_class
from chalicelib.recon.model import DayResult, HubRecord, Pooled
from chalicelib.recon.repo import pool_entry_key
from chalicelib.recon.tally import signed
from chalicelib.storage import ledger_repo

VALUE_DAY_INDEX = "value_day"


@value_class
class LedgerGap:
    currency: str
    ledger_minor: int  # clearing movement value-dated to the day
    statement_minor: int  # the statement's net: its rows' (payments - refunds - fees), or its stated settlement
    pool_minor: int  # the part of (ledger - statement) explained by entries waiting in the pool

    @property
    def unexplained_minor(self) -> int:
        return self.ledger_minor - self.statement_minor - self.pool_minor


def clearing_movement(account_id: str, currency: str, day: date) -> int:
    """Sum of the clearing account's entries value-dated to ``day``: its sharded day totals (running sums kept
    by every journal), not a read of the day's entries."""
    # read strongly: the run has just booked the day's fee difference, and a stale total would show it as a gap
    return ledger_repo.day_movement(clearing_account(account_id, currency), day.isoformat(), consistent=True)


def _moved(entry: Pooled) -> tuple[str, int] | None:
    """(currency, signed minor units) of a pooled row or record whose money moved; None otherwise."""
    subject = entry.row if entry.row is not None else entry.record
    if subject is None or subject.status != "succeeded":
        return None
    return subject.amount.currency, signed(subject.kind, subject.amount)


def pool_gap(day: date, pool: Iterable[Pooled], result: DayResult) -> dict[str, int]:
    """How far (ledger - statement) is expected to be off today because of the pool, per currency."""
    gap: dict[str, int] = defaultdict(int)
    carried = {pool_entry_key(entry) for entry in result.carried}
    expired = {key for d in result.discrepancies for key in _discrepancy_keys(d.row, d.record)}
    for entry in result.carried:
        moved = _moved(entry)
        if entry.since == day and moved:  # newly waiting: only today's statement (row) or ledger (record) has it
            gap[moved[0]] += -moved[1] if entry.row is not None else moved[1]
    for entry in pool:
        key = pool_entry_key(entry)
        moved = _moved(entry)
        if key in carried or key in expired or not moved:
            continue
        # Paired today: an earlier row met today's record (in today's ledger only), or the reverse.
        gap[moved[0]] += moved[1] if entry.row is not None else -moved[1]
    return dict(gap)


def _discrepancy_keys(row: StatementRow | None, record: HubRecord | None) -> list[str]:
    subjects: list[tuple[str, StatementRow | HubRecord | None]] = [("row", row), ("record", record)]
    return [f"{subject.kind}#{subject.object_id}#{side}" for side, subject in subjects if subject is not None]


def ledger_movements(account_id: str, day: date, currencies: Iterable[str]) -> dict[str, int]:
    return {currency: clearing_movement(account_id, currency, day) for currency in sorted(set(currencies))}


def statement_net(settled: dict[str, int], fees: dict[str, int]) -> dict[str, int]:
    """Per currency, what the rows settle once their fees are taken."""
    return {currency: settled.get(currency, 0) - fees.get(currency, 0) for currency in set(settled) | set(fees)}


def settlement_gap(ledger: dict[str, int], stated: Money | None, pool: dict[str, int]) -> LedgerGap | None:
    """The channel's stated net settlement against the ledger's clearing movement (with the pool's part)."""
    if stated is None:
        return None
    gap = LedgerGap(stated.currency, ledger.get(stated.currency, 0), stated.minor, pool.get(stated.currency, 0))
    return gap if gap.unexplained_minor != 0 else None


def gaps(ledger: dict[str, int], statement_settled: dict[str, int], pool: dict[str, int]) -> list[LedgerGap]:
    """The currencies whose ledger movement does not equal the statement's, once the pool is accounted for."""
    found = []
    for currency in sorted(set(ledger) | set(statement_settled) | set(pool)):
        gap = LedgerGap(currency, ledger.get(currency, 0), statement_settled.get(currency, 0), pool.get(currency, 0))
        if gap.unexplained_minor != 0:
            found.append(gap)
    return found
