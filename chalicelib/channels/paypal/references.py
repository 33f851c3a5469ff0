"""Finding PayPal's ids for our ids when the caller did not pass them. PayPal names orders, captures and refunds
with ids it makes up, and Orders v2 has no lookup by our reference. The hub's callers pass the ids they recorded
(``channel_order_ref``, ``channel_refund_id``) through the seam and the adapter uses those; only a caller with
nothing but our id makes the adapter fall back to this port, which reads the same records:

- attempt id -> PayPal order id: the attempt's ``channel_order_ref``, stored when the order was created;
- refund id -> PayPal refund id: the refund's ``channel_refund_id``, stored from the refund answer; when that
  answer was lost, the order's ``payments.refunds[]`` are searched for the refund whose ``invoice_id`` is ours.

The adapter takes these through this small interface so tests (and reconciliation of rows for attempts the hub
never recorded) can supply their own; the default reads the hub's state table.
"""

from __future__ import annotations

from typing import Protocol

from chalicelib.domain.value_class import value_class


@value_class
class RefundReference:
    attempt_id: str
    channel_refund_id: str | None


class References(Protocol):
    def order_id(self, attempt_id: str) -> str | None: ...

    def capture_id(self, attempt_id: str) -> str | None: ...

    def refund(self, refund_id: str) -> RefundReference | None: ...


class HubReferences:
    """Reads the hub's attempt and refund records (imported lazily: the adapter module stays storage-free)."""

    def order_id(self, attempt_id: str) -> str | None:
        from chalicelib.storage import state_repo

        attempt = state_repo.get_attempt(attempt_id)
        return attempt.channel_order_ref if attempt is not None and attempt.channel == "paypal" else None

    def capture_id(self, attempt_id: str) -> str | None:
        from chalicelib.storage import state_repo

        attempt = state_repo.get_attempt(attempt_id)
        return attempt.channel_transaction_id if attempt is not None and attempt.channel == "paypal" else None

    def refund(self, refund_id: str) -> RefundReference | None:
        from chalicelib.storage import state_repo

        refund = state_repo.get_refund(refund_id)
        if refund is None or refund.channel != "paypal":
            return None
        return RefundReference(attempt_id=refund.attempt_id, channel_refund_id=refund.channel_refund_id)
