"""`payhub listing backfill`: payments and refunds written before the listing index (no list_pk/list_sk) are
given the keys the write path gives, then GET /v1/payments and /v1/refunds list them in order; a second run
changes nothing; a stopped run resumes from its cursor; a record that changed meanwhile is left alone."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest

from chalicelib.bills import listing_backfill
from chalicelib.domain.models import Payment, Refund
from chalicelib.storage import records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item
from payhub_cli.main import main as payhub
from tests import listing_data as data


def store_as_old_code_did(objects: list[Payment | Refund]) -> None:
    """The records as the hub wrote them before the listing index: the same item without its two keys."""
    for o in objects:
        item = records.payment_item(o) if isinstance(o, Payment) else records.refund_item(o)
        old = {k: v for k, v in item.items() if k not in ("list_pk", "list_sk")}
        assert len(old) == len(item) - 2
        client("dynamodb").put_item(TableName=state_repo.state_table(), Item=to_item(old))


def stored(key: dict[str, str]) -> dict[str, Any]:
    found = client("dynamodb").get_item(TableName=state_repo.state_table(), Key=to_item(key), ConsistentRead=True)
    return from_item(found["Item"])


def listed(merchant, path: str) -> list[str]:
    ids, cursor = [], None
    while True:
        response = merchant.call("GET", f"{path}?limit=9" + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [obj["id"] for obj in body["data"]]
        if not body["has_more"]:
            return ids
        cursor = body["next_cursor"]


def newest_first(objects: list[Any]) -> list[str]:
    return [o.payment_id if isinstance(o, Payment) else o.refund_id
            for o in sorted(objects, key=lambda o: o.created_at, reverse=True)]


def run_cli(capsys, *args: str) -> dict[str, Any]:
    code = payhub(["listing", "backfill", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_old_records_are_listed_after_the_backfill_and_a_second_run_changes_nothing(capsys, merchant,
                                                                                   monkeypatch, tmp_path):
    old = [data.payment(merchant.merchant_id, n) for n in range(0, 40, 2)]
    new = [data.payment(merchant.merchant_id, n) for n in range(1, 40, 2)]  # written by the current code
    old_refunds = [data.refund(merchant.merchant_id, old[n], 2 * n) for n in range(0, 20, 3)]
    store_as_old_code_did(old + old_refunds)
    data.store(new)
    assert listed(merchant, "/v1/payments") == newest_first(new)  # the old ones are invisible
    assert listed(merchant, "/v1/refunds") == []

    # A stopped run (one small page per segment) prints a cursor; the next resumes from the saved file.
    monkeypatch.setattr(listing_backfill, "PAGE_SIZE", 7)
    saved = tmp_path / "backfill.cursor"
    first = run_cli(capsys, "--segments", "3", "--max-pages", "1", "--cursor-file", str(saved))
    assert not first["complete"] and first["cursor"] and saved.read_text() == first["cursor"]
    rest = run_cli(capsys, "--cursor-file", str(saved))
    assert rest["complete"] and rest["cursor"] is None and not saved.exists()
    assert rest["segments"] == 3  # the cursor carries its segmentation
    assert first["payments_added"] + rest["payments_added"] >= len(old)  # other tests' old records too, if any
    assert first["refunds_added"] + rest["refunds_added"] >= len(old_refunds)

    assert listed(merchant, "/v1/payments") == newest_first(old + new)
    assert listed(merchant, "/v1/refunds") == newest_first(old_refunds)
    for o in old:  # exactly the keys the write path gives, and nothing else of the record changed
        item = stored(records.payment_key(o.payment_id))
        assert item == from_item(to_item(records.payment_item(o)))

    again = run_cli(capsys, "--segments", "2")
    assert again["complete"] and again["payments_added"] == 0 and again["refunds_added"] == 0
    assert again["changed_meanwhile"] == 0 and again["scanned"] > 0


def test_a_record_that_changed_after_it_was_read_is_left_alone(merchant):
    payment = data.payment(merchant.merchant_id, 7)
    store_as_old_code_did([payment])
    key = records.payment_key(payment.payment_id)
    as_read = stored(key)
    # Meanwhile the hub changes the payment (every change bumps the version) ...
    client("dynamodb").update_item(TableName=state_repo.state_table(), Key=to_item(key),
                                   UpdateExpression="SET #status = :s, #version = :v",
                                   ExpressionAttributeNames={"#status": "status", "#version": "version"},
                                   ExpressionAttributeValues=to_item({":s": "closed", ":v": 2}))
    report = listing_backfill.Report(1)
    listing_backfill._add_keys(state_repo.state_table(), as_read, "payment", report, threading.Lock())
    assert report.changed_meanwhile == 1 and report.payments_added == 0
    after = stored(key)
    assert "list_pk" not in after and after["status"] == "closed" and after["version"] == 2
    # ... and one that already has its keys is never overwritten, even if they differed
    client("dynamodb").update_item(TableName=state_repo.state_table(), Key=to_item(key),
                                   UpdateExpression="SET list_pk = :p, list_sk = :s",
                                   ExpressionAttributeValues=to_item({":p": "LIST#elsewhere", ":s": "x"}))
    listing_backfill._add_keys(state_repo.state_table(), stored(key), "payment", report, threading.Lock())
    assert report.changed_meanwhile == 2 and stored(key)["list_pk"] == "LIST#elsewhere"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("cursor", ["nonsense", _b64('{"n": 0}'), _b64('{"n": 2, "p": {"0": 5, "1": null}}'),
                                    _b64('{"n": 2, "p": {"0": null}}'), _b64('{"n": 99, "p": {}}')])
def test_a_bad_cursor_is_one_line_and_a_failure(capsys, stack, cursor):
    code = payhub(["listing", "backfill", "--cursor", cursor])
    _, err = capsys.readouterr()
    assert code == 1 and err.strip() == "payhub: cursor is not one a listing backfill printed"
