"""What operators do with risk control (operator API and CLI alike): put and read the rules, read decisions.
Every put is audited with who did it and the version numbers, in the transaction that writes the version."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import Conflict, InvalidRequest, NotFound
from chalicelib.risk import inspect, store
from chalicelib.risk.rules import RuleDocumentError
from chalicelib.service import audit
from chalicelib.storage import state_repo
from chalicelib.storage.transaction import Transaction


def put_rules(actor: audit.Actor, document: Any) -> dict[str, Any]:
    def record(tx: Transaction, old: int, new: int) -> None:
        audit.add(tx, actor, "risk.rules.put", "risk_rules", before={"version": old}, after={"version": new})

    try:
        version = store.put_document(document, put_by=f"{actor.via}:{actor.id}", audit=record)
    except RuleDocumentError as exc:
        raise InvalidRequest(str(exc), param=exc.field) from exc
    except store.RulesChanged as exc:
        raise Conflict(str(exc), param="version") from exc
    return {"object": "risk_rules", "version": version}


def current_rules() -> dict[str, Any]:
    current = store.current_raw()
    if current is None:
        return {"object": "risk_rules", "version": 0, "document": {"rules": []}}
    return {"object": "risk_rules", "version": current.version, "document": current.document,
            "put_by": current.put_by, "put_at": current.put_at}


def payment_risk(payment_id: str) -> dict[str, Any]:
    payment = state_repo.get_payment(payment_id)
    found = inspect.decisions(payment_id)
    if payment is None and not found:
        raise NotFound(f"no payment or decision for {payment_id}", param="payment_id")
    return {"object": "payment_risk", "payment_id": payment_id,
            "status": str(payment.status) if payment else None, "risk": payment.risk if payment else None,
            "step_up": payment.step_up if payment else None, "decisions": found}
