"""Records past the hot window leave DynamoDB for the archive and are still found by id.

A real payment is made, paid at the WeChat Pay sandbox, notified and refunded by the hub; its records (payment,
attempt, refund, events and their deliveries) are copied into a table of their own (the sweep scans a whole table,
and the session's shared table belongs to every other test), then swept as if 401 days had passed.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from chalicelib.domain.clock import parse_iso, utcnow
from chalicelib.retention import archive, policy, sweep
from chalicelib.storage import state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item
from infra.resources import resources
from tests.helpers import wait_for

LATER = timedelta(days=401)


@pytest.fixture
def kept() -> policy.Policy:
    return policy.from_values({"lock_mode": "COMPLIANCE"})


def copy_table(items: list[dict[str, Any]]) -> str:
    """A table with the state table's key schema holding ``items``."""
    name = f"payhub-local-retention-{uuid.uuid4().hex[:8]}"
    client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}])
    for item in items:
        client("dynamodb").put_item(TableName=name, Item=item)
    return name


def records_of(*ids: str) -> list[dict[str, Any]]:
    """Every state-table item about these objects (by key or by reference), as stored."""
    found = []
    for page in client("dynamodb").get_paginator("scan").paginate(TableName=state_repo.state_table()):
        for item in page["Items"]:
            text = json.dumps(item)
            if any(i in text for i in ids):
                found.append(item)
    return found


@pytest.fixture
def settled_payment(stack, merchant, drain) -> dict[str, Any]:
    payment = merchant.create_payment(amount=2000)
    paid = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]}, timeout=10)
    assert paid.status_code == 200, paid.text
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded", timeout_s=15)
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds",
                           {"amount": 500, "merchant_refund_no": "R1"}).json()
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{refund['id']}")["status"] == "succeeded", timeout_s=15)
    drain()
    return {**payment, "refund_id": refund["id"]}


def test_settled_records_move_to_a_locked_archive_and_are_found_by_id(stack, settled_payment, kept, published_metrics):
    pid, aid, rid = settled_payment["id"], settled_payment["attempt_id"], settled_payment["refund_id"]
    originals = records_of(pid, aid, rid)
    kinds = {sweep.kind_of(i) for i in originals}
    assert {"payments", "refunds", "events"} <= kinds, kinds
    pending = {"pk": {"S": "PAY#pay_stillopen"}, "sk": {"S": "PAYMENT"}, "status": {"S": "pending"},
               "updated_at": {"S": "2020-01-01T00:00:00Z"}}
    table = copy_table(originals + [pending])

    assert sweep.run(table, kept).archived == {}  # today: everything is younger than the hot window
    result = sweep.run(table, kept, now=utcnow() + LATER)
    archivable = [i for i in originals if sweep.kind_of(i)]
    left_kinds = [i for i in client("dynamodb").scan(TableName=table)["Items"] if sweep.kind_of(i)]
    assert not [i for i in left_kinds if i["pk"]["S"] != "PAY#pay_stillopen"], left_kinds
    assert sum(result.archived.values()) == len(archivable) and result.finished_pass

    # the hot table keeps what was not archivable and the unsettled payment; every archived record is found by id
    left = {(i["pk"]["S"], i["sk"]["S"]) for i in client("dynamodb").scan(TableName=table)["Items"]}
    assert ("PAY#pay_stillopen", "PAYMENT") in left and ("PAY#" + pid, "PAYMENT") not in left
    for object_id in (pid, aid, rid):
        found = archive.find_by_id(table, object_id)
        assert found is not None and found.archived is not None, object_id
        original = next(i for i in originals if i["pk"]["S"].endswith(object_id) and "#" not in i["sk"]["S"])
        assert found.item == from_item(original)  # every attribute, every type
    assert archive.find_by_id(table, "pay_" + "z" * 24) is None

    # the object is locked until the kind's retention ends and refuses deletion
    pointer = archive.find_by_id(table, pid).archived  # type: ignore[union-attr]
    s3 = client("s3")
    head = s3.head_object(Bucket=archive.bucket(), Key=pointer["archive_key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].date() == (utcnow() + LATER + timedelta(
        days=kept.retention_days["payments"])).date()
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=archive.bucket(), Key=pointer["archive_key"], VersionId=head["VersionId"])
    assert pointer["expires_at_epoch"] == int(parse_iso(pointer["retain_until"]).timestamp())
    # the whole object reads as JSON lines too (what a person or Athena reads)
    assert any(r["pk"]["S"] == "PAY#" + pid for r in archive.read_object(pointer["archive_key"]))


def test_a_record_that_changed_after_it_was_read_stays_hot(stack, settled_payment, kept):
    original = records_of(settled_payment["id"])
    payment = next(i for i in original if i["sk"]["S"] == "PAYMENT")
    table = copy_table([payment])
    stale = {**payment, "updated_at": {"S": "2000-01-01T00:00:00Z"}}  # what the sweep read before a change
    assert archive.archive(table, "payments", [stale], kept) == []
    found = archive.find_by_id(table, settled_payment["id"])
    assert found is not None and found.archived is None and found.item == from_item(payment)


def test_a_tampered_archive_member_is_never_returned(stack, settled_payment, kept):
    payment = next(i for i in records_of(settled_payment["id"]) if i["sk"]["S"] == "PAYMENT")
    table = copy_table([payment])
    (moved,) = archive.archive(table, "payments", [payment], kept)
    key = {"pk": {"S": "ARC#" + moved.key["pk"]}, "sk": {"S": "PAYMENT"}}
    client("dynamodb").update_item(TableName=table, Key=key, UpdateExpression="SET archive_sha256 = :x",
                                   ExpressionAttributeValues={":x": {"S": "0" * 64}})
    with pytest.raises(archive.ArchiveCorrupt):
        archive.find_by_id(table, settled_payment["id"])


def test_an_audit_trail_is_read_whole_across_hot_and_archive(stack, kept):
    old, new = (utcnow() - LATER).isoformat(), utcnow().isoformat()
    entries = [{"pk": {"S": "AUDIT#att_trail"}, "sk": {"S": f"{at}#aud_{n}"}, "source": {"S": "recon"},
                "reason": {"S": f"r{n}"}} for n, at in enumerate((old, new))]
    table = copy_table(entries)
    assert sweep.run(table, kept).archived == {"audit": 1}
    trail = archive.audit_trail(table, "att_trail")
    assert [e["reason"] for e in trail] == ["r0", "r1"]


def test_the_sweep_resumes_from_its_cursor_and_the_cli_finds_a_record(stack, kept, monkeypatch, capsys):
    old = (utcnow() - LATER).isoformat()
    events = [{"pk": {"S": f"EVT#evt_{n:04d}"}, "sk": {"S": "EVENT"}, "topic": {"S": "webhooks"},
               "delivery_status": {"S": "delivered"},
               "created_at": {"S": old}} for n in range(30)]
    table = copy_table(events)
    monkeypatch.setattr(sweep, "PAGE_ITEMS", 10)
    first = sweep.run(table, kept, budget_s=0.0)  # one page, then out of time: the cursor remembers where
    assert (first.scanned, first.finished_pass) == (10, False)
    rest = sweep.run(table, kept)
    assert rest.finished_pass and first.archived["events"] + rest.archived["events"] == 30

    from payhub_cli.main import main

    monkeypatch.setattr(state_repo, "state_table", lambda: table)
    assert main(["archive", "get", "evt_0007"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["stored"] == "archive" and shown["record"]["pk"] == "EVT#evt_0007"
    assert main(["archive", "get", "evt_none"]) == 1
    assert "no record evt_none" in capsys.readouterr().err


def test_the_local_stack_has_the_archive_bucket_under_object_lock(stack):
    names = resources("local").names
    lock = client("s3").get_object_lock_configuration(Bucket=names.archive_bucket)
    assert lock["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
