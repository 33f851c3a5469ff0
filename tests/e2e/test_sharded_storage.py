"""Sharded keys against DynamoDB (moto): running totals equal the entries, readers visit every shard, and items
written before sharding (shard "0", the bare ACCT#/value_key/event-list keys) are still found."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from chalicelib.domain import ledger
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.ids import new_id
from chalicelib.domain.money import Money
from chalicelib.recon.ledger_check import clearing_movement
from chalicelib.service import status_sync
from chalicelib.service.webhooks import list_events
from chalicelib.storage import ledger_repo, outbox, records, shards, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from chalicelib.storage.transaction import Transaction, TransactionConflict


def _post(journal: ledger.Journal, day: str) -> None:
    tx = Transaction()
    ledger_repo.add_journal(tx, journal, now=iso(utcnow()), value_day=day)
    tx.commit()


def test_a_balance_is_the_sum_of_its_shards_running_totals_and_equals_its_entries(stack: Any) -> None:
    account, merchant = f"acct-{new_id('t')[-8:]}", new_id("mch")
    clearing = ledger.clearing_account(account, "CNY")
    amounts = [100 + n for n in range(24)]
    for amount in amounts:
        _post(ledger.payment_captured(new_id("att"), account, merchant, Money(amount, "CNY")), "2024-11-11")
    _post(ledger.refund_paid(new_id("re"), account, merchant, Money(50, "CNY")), "2024-11-12")
    table = state_repo.ledger_table()
    used = set()
    entries = 0
    for shard in shards.all_shards(shards.counts().ledger):
        items = client("dynamodb").query(TableName=table, KeyConditionExpression="pk = :pk",
                                         ExpressionAttributeValues={":pk": {"S": f"ACCT#{clearing}#{shard}"}})["Items"]
        entries += sum(int(item["amount"]["N"]) for item in items)
        used |= {shard} if items else set()
    assert len(used) > 1  # 25 journals over the local stage's shards: more than one was written
    assert entries == sum(amounts) - 50
    assert ledger_repo.balance(clearing) == sum(amounts) - 50
    assert ledger_repo.balance(ledger.merchant_payable_account(merchant, "CNY")) == -(sum(amounts) - 50)
    assert clearing_movement(account, "CNY", date(2024, 11, 11)) == sum(amounts)
    assert clearing_movement(account, "CNY", date(2024, 11, 12)) == -50


def test_a_second_posting_of_a_journal_adds_nothing(stack: Any) -> None:
    account = f"acct-{new_id('t')[-8:]}"
    journal = ledger.payment_captured(new_id("att"), account, new_id("mch"), Money(700, "CNY"))
    _post(journal, "2024-11-11")
    with pytest.raises(TransactionConflict) as refused:  # the journal's put_new fails it all, ADDs included
        _post(journal, "2024-11-11")
    assert refused.value.failed_labels == [f"journal:{journal.journal_id}"]
    assert ledger_repo.balance(ledger.clearing_account(account, "CNY")) == 700


def _legacy_entry(account: str, amount: int, day: str) -> None:
    """An entry as the hub wrote it before sharding: under ACCT#<account>, value_key <account>#<day>."""
    journal_id = ledger.journal_id("payment_captured", new_id("att"))
    client("dynamodb").put_item(TableName=state_repo.ledger_table(), Item=to_item({
        "pk": f"ACCT#{account}", "sk": f"{iso(utcnow())}#{journal_id}#0", "journal_id": journal_id,
        "amount": amount, "currency": "CNY", "purpose": "payment_captured", "reference": "att_x",
        "value_key": f"{account}#{day}"}))


def test_entries_written_before_sharding_count_until_moved_and_exactly_once_after(stack: Any) -> None:
    account = f"acct-{new_id('t')[-8:]}"
    clearing = ledger.clearing_account(account, "CNY")
    _legacy_entry(clearing, 300, "2024-11-10")
    _legacy_entry(clearing, 200, "2024-11-10")
    _post(ledger.payment_captured(new_id("att"), account, new_id("mch"), Money(1000, "CNY")), "2024-11-10")
    assert ledger_repo.balance(clearing) == 1500
    day = date(2024, 11, 10)
    assert clearing_movement(account, "CNY", day) == 1500
    assert ledger_repo.move_legacy_entries([clearing]) == 2
    assert ledger_repo.move_legacy_entries([clearing]) == 0  # repeatable
    assert ledger_repo.balance(clearing) == 1500
    assert clearing_movement(account, "CNY", day) == 1500
    legacy = client("dynamodb").query(TableName=state_repo.ledger_table(), KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": f"ACCT#{clearing}"}})["Items"]
    assert legacy == []


def _open_attempt(shard: str) -> str:
    attempt_id = new_id("att")
    client("dynamodb").put_item(TableName=state_repo.state_table(), Item=to_item({
        **records.attempt_key(attempt_id), "sync_shard": shard, "sync_due_at": iso(utcnow() - timedelta(seconds=5)),
        "sync_count": 0}))
    return attempt_id


def test_the_status_sweep_visits_every_shard_and_the_pre_sharding_one(stack: Any, monkeypatch: Any) -> None:
    wanted = {_open_attempt(shard) for shard in shards.all_shards(shards.counts().sync)}
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(status_sync.outbox, "send_batch", lambda topic, bodies: sent.extend(bodies))
    status_sync.sweep(budget_s=30)
    assert wanted <= {body["id"] for body in sent}
    for attempt_id in wanted:  # leased: not handed out again by the next sweep
        item = state_repo.get_item(records.attempt_key(attempt_id))
        assert item is not None and item["sync_due_at"] > iso(utcnow())


def test_the_outbox_sweep_finds_stragglers_in_every_shard(stack: Any) -> None:
    old = iso(utcnow() - timedelta(minutes=5))
    wanted = set()
    for _ in range(4 * shards.counts().outbox):
        item = outbox.command_item(topic="refunds", object_id=new_id("re"), command="refund.submit", now=old)
        client("dynamodb").put_item(TableName=state_repo.state_table(), Item=to_item(item))
        wanted.add(item["event_id"])
    shards_used = {outbox.outbox_shard(evt_id) for evt_id in wanted}
    assert len(shards_used) > 1
    found = {event.event_id for event in outbox.pending(older_than=iso(utcnow() - timedelta(minutes=1)))}
    assert wanted <= found
    for evt_id in wanted:
        outbox.mark_published(evt_id)


def test_the_event_list_merges_every_shard_and_the_pre_sharding_key_newest_first(stack: Any, merchant: Any) -> None:
    base = utcnow() - timedelta(hours=1)
    written = []
    for n in range(9):
        item = outbox.event_item(merchant_id=merchant.merchant_id, object_id=new_id("pay"), event_type="payment.succeeded",
                                 data={"n": n}, now=iso(base + timedelta(seconds=n)))
        item.pop("outbox_shard")
        if n == 4:  # one written before sharding, under the bare key
            item["gsi1pk"] = outbox.legacy_event_list_key(merchant.merchant_id)
        client("dynamodb").put_item(TableName=state_repo.state_table(), Item=to_item(item))
        written.append(item["event_id"])
    newest_first = list(reversed(written))
    pages, cursor = [], None
    while True:
        events, cursor = list_events(merchant, 4, cursor)
        pages.append([event["id"] for event in events])
        if cursor is None:
            break
    assert [evt for page in pages for evt in page] == newest_first
    assert [len(page) for page in pages] == [4, 4, 1]


def test_the_status_sweep_sends_its_messages_in_batches(stack: Any, monkeypatch: Any) -> None:
    """Twelve due items: two SendMessageBatch requests, never one SendMessage each, and every message arrives."""
    from chalicelib.storage.aws import client as aws_client

    wanted = {_open_attempt(shards.all_shards(shards.counts().sync)[0]) for _ in range(12)}
    calls: list[str] = []
    sqs = aws_client("sqs")

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    sqs.meta.events.register("before-call.sqs.*", count)
    try:
        status_sync.sweep(budget_s=30)
    finally:
        sqs.meta.events.unregister("before-call.sqs.*", count)
    assert "SendMessage" not in calls and calls.count("SendMessageBatch") >= 2
    url = status_sync.outbox.queue_url("status-sync")
    seen: set[str] = set()
    for _ in range(20):
        # Other tests' messages stay visible (timeout 0); only this test's are taken off the queue.
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        mine = [m for m in messages if json.loads(m["Body"])["id"] in wanted]
        if not mine and wanted <= seen:
            break
        for message in mine:
            seen.add(json.loads(message["Body"])["id"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert wanted <= seen
