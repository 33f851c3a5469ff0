"""Deleting a vaulted card's record, apart from the vault's cryptography.

An attempt that becomes final takes its card record with it, in the same transaction (``outcomes``). Every
function that settles attempts does that (callbacks, status sync, refunds, reconciliation), and none of them
may use the card vault's keys: this delete is only a conditional DynamoDB write, so it lives here, where
importing it loads no cipher and no key service.
"""

from __future__ import annotations

from chalicelib.storage import records, state_repo
from chalicelib.storage.transaction import Transaction


def discard(tx: Transaction, token: str, *, merchant_id: str) -> None:
    """Delete a card record within ``tx``: only this merchant's, and one already gone passes (a repeat is harmless)."""
    tx.delete("card", state_repo.state_table(), records.card_key(token),
              condition="attribute_not_exists(pk) OR merchant_id = :merchant", condition_values={":merchant": merchant_id})
