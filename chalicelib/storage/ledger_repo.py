"""Ledger storage: journals and their entries, append-only, written inside the transition's transaction.

  JRN#<journal_id> / JOURNAL                  the journal (deterministic id: a fact is posted once)
  ACCT#<account>   / <created_at>#<journal>#<n>  one entry per account, so a balance is one query
  (GSI value_day)  value_key = <account>#<Beijing day the money moved>  entries by value day, per account
"""

from __future__ import annotations

from chalicelib.domain.ledger import Journal
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item
from chalicelib.storage.state_repo import ledger_table
from chalicelib.storage.transaction import Transaction


def add_journal(tx: Transaction, journal: Journal, *, now: str, value_day: str | None = None) -> None:
    """``value_day``: the Beijing day the money moved at the channel (YYYY-MM-DD). Entries then carry
    ``value_key`` = ``<account>#<day>`` for the sparse ``value_day`` index, which the reconciliation ledger check
    sums per account and day."""
    table = ledger_table()
    tx.put_new(f"journal:{journal.journal_id}", table, {
        "pk": f"JRN#{journal.journal_id}", "sk": "JOURNAL", "journal_id": journal.journal_id,
        "purpose": journal.purpose, "reference": journal.reference, "created_at": now,
        "entries": [{"account": e.account, "amount": e.amount, "currency": e.currency} for e in journal.entries],
    })
    for n, entry in enumerate(journal.entries):
        tx.put_new(f"entry:{journal.journal_id}:{n}", table, {
            "pk": f"ACCT#{entry.account}", "sk": f"{now}#{journal.journal_id}#{n}",
            "journal_id": journal.journal_id, "amount": entry.amount, "currency": entry.currency,
            "purpose": journal.purpose, "reference": journal.reference,
            "value_key": f"{entry.account}#{value_day}" if value_day else None,
        })


def balance(account: str) -> int:
    """Recomputed from entries every time: balances are derived, never stored."""
    total = 0
    paginator = client("dynamodb").get_paginator("query")
    for page in paginator.paginate(
        TableName=ledger_table(), KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ACCT#{account}"}}, ConsistentRead=True,
    ):
        total += sum(from_item(item)["amount"] for item in page.get("Items", []))
    return total


def journals_for(reference: str) -> list[dict[str, object]]:
    """All journals posted for an attempt or refund (scan-free: journals are keyed by purpose+reference)."""
    from chalicelib.domain.ledger import journal_id

    found = []
    for purpose in ("payment_captured", "refund_paid"):
        item = client("dynamodb").get_item(
            TableName=ledger_table(), Key={"pk": {"S": f"JRN#{journal_id(purpose, reference)}"}, "sk": {"S": "JOURNAL"}},
            ConsistentRead=True,
        ).get("Item")
        if item:
            found.append(from_item(item))
    return found
