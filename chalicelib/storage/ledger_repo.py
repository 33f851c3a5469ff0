"""Ledger storage: journals, their entries and running totals, written inside the transition's transaction.

  JRN#<journal_id>               / JOURNAL                       the journal (deterministic id: posted once)
  ACCT#<account>#<s>             / <created_at>#<journal>#<n>    the entries, append-only
  BAL#<account>#<s>              / BALANCE    ``balance``: running sum of the account's entries in shard s
  DAY#<account>#<day>#<s>        / TOTAL      ``amount``: running sum of the entries value-dated to that day,
                                              ``credit``: of those below zero alone
  (GSI value_day)  value_key = <account>#<day>#<s>               entries by value day, for drill-down

``s`` is the journal's shard (a hash of its id, chalicelib/storage/shards.py), the same for all its entries.
One channel account takes every payment of its channel, so its entries, its balance and its day total are
each spread over ``shards.counts().ledger`` partition keys; a balance is the sum of that many small items
(read in batches of 100), never a read of every entry. The journal's ``put_new`` is in the same transaction as
the running totals' ``ADD``s, so a fact is added exactly once or the whole transition fails.

Before sharding, entries lived under ``ACCT#<account>`` with ``value_key`` = ``<account>#<day>`` and no running
totals. Nothing writes those keys any more; readers add them in (an empty query where there are none) until
``move_legacy_entries`` has moved an account's old entries into their shards with their totals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from chalicelib.domain.ledger import Journal
from chalicelib.storage import shards
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item
from chalicelib.storage.state_repo import ledger_table
from chalicelib.storage.transaction import Transaction

BATCH_GET_MAX = 100  # keys per BatchGetItem


def ledger_shard(journal_id: str, count: int | None = None) -> str:
    return shards.shard_of(journal_id, count or shards.counts().ledger)


def entry_key(account: str, shard: str, created_at: str, journal_id: str, n: int) -> dict[str, str]:
    return {"pk": f"ACCT#{account}#{shard}", "sk": f"{created_at}#{journal_id}#{n}"}


def balance_key(account: str, shard: str) -> dict[str, str]:
    return {"pk": f"BAL#{account}#{shard}", "sk": "BALANCE"}


def day_total_key(account: str, day: str, shard: str) -> dict[str, str]:
    return {"pk": f"DAY#{account}#{day}#{shard}", "sk": "TOTAL"}


def value_key(account: str, day: str, shard: str) -> str:
    return f"{account}#{day}#{shard}"


# A channel's settlement leaving its clearing account is value-dated to the day the money reached the reserve
# (the reserve's side counts in that day's bank check), but it is no movement of the channel's own statement
# day: the clearing side is kept out of the day totals and the value-day index, so the channel's daily ledger
# check (recon/ledger_check.py) sees only what its statement covers, however often a day is re-run.
SETTLING_PURPOSES = frozenset({"channel_settled", "fx_channel_settled"})


def _settles_clearing(purpose: str, account: str) -> bool:
    return purpose in SETTLING_PURPOSES and account.startswith("channel_clearing:")


def journal_writes(journal: Journal, *, now: str, value_day: str | None = None,
                   count: int | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """What posting ``journal`` writes, as (label, kind, item) with kind ``put`` (a new item) or ``add`` (the
    item's key and the numbers added to it). ``add_journal`` sends exactly these; the peak-hour simulation
    counts them."""
    shard = ledger_shard(journal.journal_id, count)
    writes: list[tuple[str, str, dict[str, Any]]] = [("journal:" + journal.journal_id, "put", {
        "pk": f"JRN#{journal.journal_id}", "sk": "JOURNAL", "journal_id": journal.journal_id,
        "purpose": journal.purpose, "reference": journal.reference, "created_at": now, "shard": shard,
        "entries": [{"account": e.account, "amount": e.amount, "currency": e.currency} for e in journal.entries],
    })]
    moved: dict[str, int] = defaultdict(int)  # one running-total update per account (an item once per transaction)
    for n, entry in enumerate(journal.entries):
        dated = value_day if value_day and not _settles_clearing(journal.purpose, entry.account) else None
        writes.append((f"entry:{journal.journal_id}:{n}", "put", {
            **entry_key(entry.account, shard, now, journal.journal_id, n),
            "journal_id": journal.journal_id, "amount": entry.amount, "currency": entry.currency,
            "purpose": journal.purpose, "reference": journal.reference,
            "value_key": value_key(entry.account, dated, shard) if dated else None,
        }))
        moved[entry.account] += entry.amount
    for account, amount in moved.items():
        writes.append((f"balance:{account}", "add", {**balance_key(account, shard), "balance": amount}))
        if value_day and not _settles_clearing(journal.purpose, account):
            # ``credit``: the day's credits alone (money arriving on the account), so a merchant's money not yet
            # matured can be told from refunds and holds, which take money away at once (service/settlement.py).
            total = {"amount": amount, **({"credit": amount} if amount < 0 else {})}
            writes.append((f"day_total:{account}", "add", {**day_total_key(account, value_day, shard), **total}))
    return writes


def add_journal(tx: Transaction, journal: Journal, *, now: str, value_day: str | None = None) -> None:
    """``value_day``: the Beijing day the money moved at the channel (YYYY-MM-DD). Entries then carry
    ``value_key`` for the sparse ``value_day`` index and add to the account's total of that day, which the
    reconciliation ledger check reads per account and day."""
    table = ledger_table()
    for label, kind, item in journal_writes(journal, now=now, value_day=value_day):
        if kind == "put":
            tx.put_new(label, table, item)
        else:
            key = {"pk": item["pk"], "sk": item["sk"]}
            tx.update(label, table, key, {}, add_values={k: v for k, v in item.items() if k not in key},
                      condition=None, condition_values={})


def add_journals(tx: Transaction, journals: Iterable[tuple[Journal, str | None]], *, now: str) -> None:
    """Several journals of one transition (a capture and the instalment fee the channel keeps out of it), each with
    its value day (or None), in one transaction: a running total two of them move in the same shard is one ``ADD``
    of their sum, since a transaction may touch an item only once."""
    posted = list(journals)
    if len(posted) == 1:  # the common case writes exactly what add_journal writes
        add_journal(tx, posted[0][0], now=now, value_day=posted[0][1])
        return
    table = ledger_table()
    adds: dict[tuple[str, str], tuple[str, dict[str, int]]] = {}
    for journal, value_day in posted:
        for label, kind, item in journal_writes(journal, now=now, value_day=value_day):
            if kind == "put":
                tx.put_new(label, table, item)
                continue
            key = (item["pk"], item["sk"])
            values = {k: v for k, v in item.items() if k not in ("pk", "sk")}
            if key in adds:
                merged = adds[key][1]
                for name, amount in values.items():
                    merged[name] = merged.get(name, 0) + amount
            else:
                adds[key] = (f"{label}:{journal.journal_id}", values)
    for (pk, sk), (label, values) in adds.items():
        tx.update(label, table, {"pk": pk, "sk": sk}, {}, add_values=values, condition=None, condition_values={})


def _sum_items(keys: list[dict[str, str]], attribute: str, *, consistent: bool) -> int:
    """Sum of ``attribute`` over the items that exist among ``keys``, in BatchGetItem calls of 100 keys."""
    dynamodb = client("dynamodb")
    table = ledger_table()
    total = 0
    for first in range(0, len(keys), BATCH_GET_MAX):
        request: dict[str, Any] = {table: {
            "Keys": [{"pk": {"S": k["pk"]}, "sk": {"S": k["sk"]}} for k in keys[first:first + BATCH_GET_MAX]],
            "ProjectionExpression": "#v", "ExpressionAttributeNames": {"#v": attribute}, "ConsistentRead": consistent,
        }}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            total += sum(int(item[attribute]["N"]) for item in response.get("Responses", {}).get(table, [])
                         if attribute in item)
            request = response.get("UnprocessedKeys") or {}
    return total


def _sum_query(params: dict[str, Any]) -> int:
    total = 0
    for page in client("dynamodb").get_paginator("query").paginate(TableName=ledger_table(), **params):
        total += sum(int(from_item(item)["amount"]) for item in page.get("Items", []))
    return total


def balance(account: str) -> int:
    """The account's running totals, one item per shard, plus any entries still under the pre-sharding key."""
    keys = [balance_key(account, shard) for shard in shards.all_shards(shards.counts().ledger)]
    return _sum_items(keys, "balance", consistent=True) + _sum_query({
        "KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": f"ACCT#{account}"}},
        "ProjectionExpression": "amount", "ConsistentRead": True,
    })


def day_movement(account: str, day: str, *, consistent: bool = False) -> int:
    """Sum of the account's entries value-dated to ``day``: its day totals, plus entries indexed under the
    pre-sharding ``value_key``. Eventually consistent by default (read hours after the day, by reconciliation);
    ``consistent`` reads the day totals strongly (settlement reads the current day against the balance).
    The pre-sharding index part is a GSI, never strongly consistent, and holds only days before sharding."""
    keys = [day_total_key(account, day, shard) for shard in shards.all_shards(shards.counts().ledger)]
    return _sum_items(keys, "amount", consistent=consistent) + _sum_query({
        "IndexName": "value_day", "KeyConditionExpression": "value_key = :key",
        "ExpressionAttributeValues": {":key": {"S": f"{account}#{day}"}}, "ProjectionExpression": "amount",
    })


def day_credits(account: str, day: str, *, consistent: bool = False) -> int:
    """Sum of the account's credits (entries below zero) value-dated to ``day``, from its day totals. Days written
    before the totals kept it read as 0 (only a merchant's last T+N days are ever asked)."""
    keys = [day_total_key(account, day, shard) for shard in shards.all_shards(shards.counts().ledger)]
    return _sum_items(keys, "credit", consistent=consistent)


def day_entries(account: str, day: str) -> list[dict[str, Any]]:
    """Every entry of ``account`` value-dated to ``day`` (journal id, purpose, reference, amount), from the
    ``value_day`` index, shard by shard: for drill-down and for matching a bank statement's lines one by one."""
    found: list[dict[str, Any]] = []
    keys = [value_key(account, day, shard) for shard in shards.all_shards(shards.counts().ledger)]
    for key in [*keys, f"{account}#{day}"]:  # and the pre-sharding key
        for page in client("dynamodb").get_paginator("query").paginate(
            TableName=ledger_table(), IndexName="value_day", KeyConditionExpression="value_key = :key",
            ExpressionAttributeValues={":key": {"S": key}},
        ):
            found += [from_item(item) for item in page.get("Items", [])]
    return found


def move_legacy_entries(accounts: Iterable[str]) -> int:
    """One-off migration: move each entry still under ``ACCT#<account>`` into its shard and add it to the running
    totals, one transaction per entry (delete the old item, put the new one, add), so a balance read at any moment
    counts every entry exactly once. Safe to repeat or to run while payments flow. Returns entries moved."""
    dynamodb = client("dynamodb")
    table = ledger_table()
    moved = 0
    for account in accounts:
        for page in dynamodb.get_paginator("query").paginate(
            TableName=table, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"ACCT#{account}"}}, ConsistentRead=True,
        ):
            for raw in page.get("Items", []):
                old = from_item(raw)
                created_at, journal_id, n = old["sk"].rsplit("#", 2)
                shard = ledger_shard(journal_id)
                day = old["value_key"].rpartition("#")[2] if old.get("value_key") else None
                tx = Transaction()
                tx.delete("legacy", table, {"pk": old["pk"], "sk": old["sk"]}, condition="attribute_exists(pk)",
                          condition_values={})
                tx.put_new("entry", table, {
                    **old, **entry_key(account, shard, created_at, journal_id, int(n)),
                    "value_key": value_key(account, day, shard) if day else None,
                })
                tx.update("balance", table, balance_key(account, shard), {}, add_values={"balance": int(old["amount"])},
                          condition=None, condition_values={})
                if day:
                    tx.update("day_total", table, day_total_key(account, day, shard), {},
                              add_values={"amount": int(old["amount"])}, condition=None, condition_values={})
                tx.commit()
                moved += 1
    return moved


def journal(purpose: str, reference: str) -> dict[str, object] | None:
    """The journal posted for ``purpose`` and ``reference``, if any (journals are keyed by both: no scan)."""
    from chalicelib.domain.ledger import journal_id

    item = client("dynamodb").get_item(
        TableName=ledger_table(), Key={"pk": {"S": f"JRN#{journal_id(purpose, reference)}"}, "sk": {"S": "JOURNAL"}},
        ConsistentRead=True,
    ).get("Item")
    return from_item(item) if item else None


def journals_for(reference: str) -> list[dict[str, object]]:
    """All journals posted for an attempt or refund."""
    return [found for purpose in ("payment_captured", "refund_paid") if (found := journal(purpose, reference))]
