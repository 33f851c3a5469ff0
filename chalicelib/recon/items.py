"""A run's discrepancy items: created once under a deterministic key, moved only from the status they were
read in, so a re-run finds what an earlier run recorded and never repairs the same thing twice.

An item is written as ``repairing`` before its repair runs; if the run dies in between, the next run finds
it and completes it (the repair itself is idempotent through the state machine).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from chalicelib.domain.clock import iso, utcnow
from chalicelib.recon import repo
from chalicelib.recon.codec import record_to_dict, row_to_dict, subject
from chalicelib.recon.ledger_check import LedgerGap
from chalicelib.recon.model import Discrepancy, DiscrepancyKind, Pooled
from chalicelib.recon.repairs import FINAL, ItemStatus, Outcome

REPAIRING = "repairing"
LEDGER_MISMATCH = "ledger_mismatch"
SETTLEMENT_MISMATCH = "settlement_mismatch"
_GAP_TEXT = {
    LEDGER_MISMATCH: ("clearing_movement", "the ledger's clearing movement for the day differs from what the statement's "
                                       "rows settle, net of their fees; see this run's other differences"),
    SETTLEMENT_MISMATCH: ("net_settlement", "the net settlement the channel states for the day differs from the "
                                               "ledger's clearing movement: money withheld or added outside the rows"),
}


def discrepancy_key(d: Discrepancy) -> str:
    return repo.item_key(str(d.object_kind), d.object_id, str(d.kind))


def pooled_key(entry: Pooled) -> str:
    kind = DiscrepancyKind.CHANNEL_ONLY if entry.row is not None else DiscrepancyKind.HUB_ONLY
    subject_ = entry.row if entry.row is not None else entry.record
    assert subject_ is not None
    return repo.item_key(str(subject_.kind), subject_.object_id, str(kind))


class ItemBook:
    def __init__(self, run_id: str, account_id: str, channel: str, day: date) -> None:
        self.run_id, self.account_id, self.channel, self.day = run_id, account_id, channel, day
        self.existing = repo.items(run_id)
        self.seen: set[str] = set()

    def _base(self, kind: str, object_kind: str, object_id: str) -> dict[str, Any]:
        return {"run_id": self.run_id, "account_id": self.account_id, "channel": self.channel,
                "day": self.day.isoformat(), "kind": kind, "object_kind": object_kind, "object_id": object_id,
                "created_at": iso(utcnow())}

    def _describe(self, d: Discrepancy) -> dict[str, Any]:
        amount, occurred_at = subject(d)
        return {**self._base(str(d.kind), str(d.object_kind), d.object_id),
                "reasons": [{"field": r.field, "hub": r.hub, "channel": r.channel} for r in d.reasons],
                "row": row_to_dict(d.row) if d.row else None, "record": record_to_dict(d.record) if d.record else None,
                "amount_minor": amount.minor if amount else None, "currency": amount.currency if amount else None,
                "occurred_at": occurred_at}

    def _settle(self, key: str, expected: str, outcome: Outcome) -> None:
        repo.move_item(self.run_id, key, expected_status=expected, values={
            "status": str(outcome.status), "action": outcome.action, "details": outcome.details or None,
            "updated_at": iso(utcnow())})

    def handle(self, d: Discrepancy, repair: Callable[[Discrepancy], Outcome]) -> None:
        """Record one difference and repair it, unless an earlier run already settled it."""
        key = discrepancy_key(d)
        self.seen.add(key)
        prior = self.existing.get(key)
        if prior is not None and prior["status"] in FINAL:
            return
        expected = prior["status"] if prior is not None else REPAIRING
        if prior is None and not repo.put_new_item(self.run_id, key, {**self._describe(d), "status": REPAIRING}):
            return  # another run of the day created it a moment ago and repairs it
        outcome = repair(d)
        if expected == REPAIRING and prior is not None and outcome.status is ItemStatus.RESOLVED:
            outcome = Outcome(ItemStatus.REPAIRED, f"completed by an interrupted earlier run ({outcome.action})",
                              outcome.details)
        self._settle(key, expected, outcome)

    def waiting(self, entry: Pooled) -> None:
        """A row or record near midnight, carried to the next days' runs."""
        key = pooled_key(entry)
        self.seen.add(key)
        if key in self.existing:
            return
        side = entry.row if entry.row is not None else entry.record
        assert side is not None
        kind = DiscrepancyKind.CHANNEL_ONLY if entry.row is not None else DiscrepancyKind.HUB_ONLY
        values = {**self._base(str(kind), str(side.kind), side.object_id), "status": str(ItemStatus.WAITING),
                  "row": row_to_dict(entry.row) if entry.row else None,
                  "record": record_to_dict(entry.record) if entry.record else None,
                  "amount_minor": side.amount.minor, "currency": side.amount.currency, "occurred_at": iso(side.occurred_at),
                  "action": "near midnight: waits up to 3 days for its counterpart on a neighbouring day"}
        repo.put_new_item(self.run_id, key, values)

    def ledger_gap(self, gap: LedgerGap, kind: str = LEDGER_MISMATCH) -> None:
        """A ``ledger_mismatch`` (ledger against the rows) or ``settlement_mismatch`` (against the stated net)."""
        key = repo.item_key("ledger", gap.currency, kind)
        self.seen.add(key)
        field, action = _GAP_TEXT[kind]
        values = {**self._base(kind, "ledger", f"{self.account_id}:{gap.currency}"),
                  "status": str(ItemStatus.NEEDS_REVIEW), "amount_minor": gap.unexplained_minor, "currency": gap.currency,
                  "reasons": [{"field": field, "hub": str(gap.ledger_minor), "channel": str(gap.statement_minor)},
                              {"field": "explained_by_pool", "hub": str(gap.pool_minor), "channel": None}],
                  "action": action}
        prior = self.existing.get(key)
        if prior is None:
            repo.put_new_item(self.run_id, key, values)
        elif prior["status"] == ItemStatus.NEEDS_REVIEW and prior.get("amount_minor") != gap.unexplained_minor:
            repo.move_item(self.run_id, key, expected_status=str(ItemStatus.NEEDS_REVIEW),
                           values={k: v for k, v in values.items() if k != "created_at"})

    def close_unseen(self) -> None:
        """Items of earlier executions of this run that no longer show up: they do not differ any more."""
        for key, item in self.existing.items():
            if key in self.seen or item["status"] in (ItemStatus.REPAIRED, ItemStatus.RESOLVED):
                continue
            status = ItemStatus.REPAIRED if item["status"] == REPAIRING else ItemStatus.RESOLVED
            action = ("completed by an interrupted earlier run" if status is ItemStatus.REPAIRED
                      else "no longer differs when the day was reconciled again")
            repo.move_item(self.run_id, key, expected_status=item["status"], values={
                "status": str(status), "action": action, "updated_at": iso(utcnow())})


def follow_up_pool(account_id: str, day: date, pool: list[Pooled], carried: list[Pooled],
                   discrepancies: list[Discrepancy]) -> set[date]:
    """Earlier runs' waiting items whose entry left the pool today: paired with its counterpart (resolved
    there), or reported as a difference of today's run (recorded and repaired here). Returns the days whose
    runs changed."""
    still_waiting = {pooled_key(entry) for entry in carried}
    changed: set[date] = set()
    reported: dict[str, DiscrepancyKind] = {}
    for d in discrepancies:
        if d.since is None:
            continue
        for entry in (Pooled(d.since, row=d.row), Pooled(d.since, record=d.record)):
            if entry.row is not None or entry.record is not None:
                reported[pooled_key(entry)] = d.kind
    for entry in pool:
        key = pooled_key(entry)
        if key in still_waiting:
            continue
        kind = reported.get(key)
        if kind in (DiscrepancyKind.CHANNEL_ONLY, DiscrepancyKind.HUB_ONLY):
            action = f"no counterpart within {(day - entry.since).days} days: a difference of the run of {day}"
        elif kind is not None:
            action = f"paired on {day}, but differs ({kind}): see the run of {day}"
        else:
            action = f"matched its counterpart on {day}"
        if repo.move_item(repo.run_id(account_id, entry.since), key, expected_status=str(ItemStatus.WAITING),
                          values={"status": str(ItemStatus.RESOLVED), "action": action, "updated_at": iso(utcnow())}):
            changed.add(entry.since)
    return changed
