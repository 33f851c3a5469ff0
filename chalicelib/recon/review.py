"""An operator closing a difference a person has reviewed: the item moves from ``needs_review`` to ``resolved``
with who closed it and why, in one transaction with the audit record; the run's counts and report follow."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import Conflict, InvalidRequest, NotFound
from chalicelib.recon import repo
from chalicelib.recon.repairs import ItemStatus
from chalicelib.recon.views import public_item
from chalicelib.service import audit
from chalicelib.storage.transaction import Transaction, TransactionConflict


def close_item(actor: audit.Actor, run_id: str, item_id: str, note: str) -> dict[str, Any]:
    if not note.strip():
        raise InvalidRequest("note is required: what was found and done", param="note")
    account_id, day = repo.parse_run_id(run_id)
    if repo.get_run(account_id, day) is None:
        raise NotFound(f"no reconciliation run {run_id}", param="run_id")
    item = repo.items(run_id).get(item_id)
    if item is None:
        raise NotFound(f"no item {item_id} in run {run_id}", param="item_id")
    if item["status"] != ItemStatus.NEEDS_REVIEW:
        raise Conflict(f"item {item_id} is {item['status']}: only an item needing review is closed by a person")
    now = iso(utcnow())
    closed = {"status": str(ItemStatus.RESOLVED), "closed_by": actor.as_record(), "closed_at": now,
              "close_note": note, "updated_at": now}
    tx = Transaction()
    tx.update("item", repo.table(), {"pk": f"ITEMS#{run_id}", "sk": item_id}, closed,
              condition="#status = :expected", condition_values={":expected": str(ItemStatus.NEEDS_REVIEW)})
    audit.add(tx, actor, "recon.close_item", f"{run_id}/{item_id}", before={"status": item["status"]},
              after={"status": str(ItemStatus.RESOLVED), "note": note})
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise Conflict(f"item {item_id} was moved meanwhile; read it again") from exc
    from chalicelib.recon.run import refresh_run  # the run's figures and report files

    refresh_run(account_id, day)
    return public_item({**item, **closed})
