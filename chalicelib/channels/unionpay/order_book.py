"""Where ACP's original ``txnTime`` comes from when the caller does not pass it: the fallback order book.

UnionPay identifies a transaction by merId + orderId + txnTime (the *original* request's send time), so a
query, a close or a refund query must send the txnTime the order was created with. The hub's callers pass it
through the seam: ``channel_order_ref`` (what ``create`` returned: ``<txnTime>`` or ``<txnTime>:<tn>``) for a
payment, the refund's ``created_at`` for a refund (Beijing, to the second: fixed before the first submission,
so a resubmitted refund repeats the same orderId *and* txnTime and UnionPay sees a duplicate, never a second
refund). Only a caller that has neither makes the adapter read them back through this small port, from the
same records:

- a payment's txnTime is in the attempt's ``channel_order_ref``;
- a refund's txnTime is the refund record's creation time.

Tests inject their own ``OrderBook``; the default reads the state table.
"""

from __future__ import annotations

from typing import Protocol

from chalicelib.channels.unionpay.states import parse_txn_time, txn_time
from chalicelib.domain.value_class import value_class


@value_class
class OrderRef:
    txn_time: str  # yyyyMMddHHmmss, Beijing, exactly as sent in the original request
    method: str | None = None  # the payment's method (decides bizType of a refund)


class OrderBook(Protocol):
    def payment(self, attempt_id: str) -> OrderRef | None: ...

    def refund(self, refund_id: str) -> OrderRef | None: ...


def order_ref_text(txn: str, tn: str | None = None) -> str:
    return f"{txn}:{tn}" if tn else txn


def txn_time_of(channel_order_ref: str | None) -> str | None:
    """The txnTime inside a ``channel_order_ref`` this adapter made; None when it is not one."""
    if not channel_order_ref:
        return None
    candidate = channel_order_ref.split(":", 1)[0]
    try:
        parse_txn_time(candidate)
    except ValueError:
        return None
    return candidate


class HubRecordsOrderBook:
    """Reads attempts and refunds from the hub's state table (imported lazily: only queries need it)."""

    def payment(self, attempt_id: str) -> OrderRef | None:
        from chalicelib.storage import state_repo

        attempt = state_repo.get_attempt(attempt_id)
        if attempt is None:
            return None
        found = txn_time_of(attempt.channel_order_ref)
        if found is None and attempt.channel_order_ref is None:
            # Recorded before the create was sent, whose txnTime is the record's own creation time.
            from chalicelib.domain.clock import parse_iso

            found = txn_time(parse_iso(attempt.created_at))
        return OrderRef(found, attempt.method) if found else None

    def refund(self, refund_id: str) -> OrderRef | None:
        from chalicelib.domain.clock import parse_iso
        from chalicelib.storage import state_repo

        refund = state_repo.get_refund(refund_id)
        if refund is None:
            return None
        attempt = state_repo.get_attempt(refund.attempt_id)
        return OrderRef(txn_time(parse_iso(refund.created_at)), attempt.method if attempt else None)
