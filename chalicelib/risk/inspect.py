"""What operators read: the decisions taken on a payment (or a denied request), newest first."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.storage import state_repo


def decisions(subject_id: str) -> list[dict[str, Any]]:
    """Every decision recorded under a payment id (create, confirm, refunds), newest first."""
    items, _ = state_repo.query("pk = :pk", {":pk": f"RISKDEC#{subject_id}"}, forward=False)
    return [{k: v for k, v in item.items() if k not in ("pk", "sk")} for item in items]


def decisions_for_request(message: str) -> dict[str, Any]:
    """The decision a refusal names (``decision rsk_...``): a denied create leaves no payment, only this."""
    match = re.search(r"decision (rsk_\w+) on (\w+)", message)
    if not match:
        raise KeyError("no decision named in the message")
    decision_id, subject_id = match.groups()
    for decision in decisions(subject_id):
        if decision.get("decision_id") == decision_id:
            return decision
    raise KeyError(f"no decision {decision_id}")
