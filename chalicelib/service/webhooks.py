"""Merchant webhooks per Standard Webhooks: signed, retried with backoff for over 24 h, every attempt recorded.

SQS delays top out at 15 minutes, so a retry due later travels as a message carrying ``not_before``; a
worker that receives it early sends it back with the remaining delay.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

import urllib3
from standardwebhooks.webhooks import Webhook

from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import NotFound
from chalicelib.domain.models import Merchant
from chalicelib.service.webhook_targets import check_notify_url
from chalicelib.storage import config_repo, outbox, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item

log = logging.getLogger(__name__)
# Seconds after the previous try: ~28 h in all (1m, 5m, 30m, 2h, 5h, 10h, 10h).
RETRY_DELAYS_S = (60, 300, 1800, 7200, 18000, 36000, 36000)
TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)
_http = urllib3.PoolManager(retries=False)


def payload(event: dict[str, Any]) -> bytes:
    return json.dumps({"type": event["type"], "timestamp": event["created_at"], "data": event["data"]},
                      separators=(",", ":"), ensure_ascii=False).encode()


def deliver(event_id: str, *, not_before: str | None = None, manual: bool = False) -> str:
    if not_before and parse_iso(not_before) > utcnow():
        remaining = int((parse_iso(not_before) - utcnow()).total_seconds()) + 1
        outbox.send("webhooks", {"event_id": event_id, "not_before": not_before}, delay_s=remaining)
        return "deferred"
    event = state_repo.get_item(records.event_key(event_id))
    if event is None or "merchant_id" not in event:
        raise NotFound(f"no event {event_id}")
    if event.get("delivery_status") == "delivered" and not manual:
        return "already_delivered"
    merchant = config_repo.get_merchant(event["merchant_id"])
    target = _target(event, merchant)
    attempt_no = int(event.get("delivery_attempts", 0)) + 1
    started = time.monotonic()
    status_code, error = _post(target, event, merchant) if target else (None, "no notify_url configured")
    ok = status_code is not None and 200 <= status_code < 300
    _record(event_id, attempt_no, target, status_code, error, int((time.monotonic() - started) * 1000), ok, manual)
    if ok:
        return "delivered"
    if manual or attempt_no > len(RETRY_DELAYS_S):
        return "failed"
    delay = RETRY_DELAYS_S[attempt_no - 1]
    due = iso(datetime.fromtimestamp(time.time() + delay, tz=utcnow().tzinfo))
    outbox.send("webhooks", {"event_id": event_id, "not_before": due}, delay_s=delay)
    return "retry_scheduled"


def _target(event: dict[str, Any], merchant: Merchant | None) -> str | None:
    payment_id = event["data"].get("payment_id") or event["data"].get("id")
    payment = state_repo.get_payment(payment_id) if payment_id and payment_id.startswith("pay_") else None
    return (payment.notify_url if payment else None) or (merchant.webhook_url if merchant else None)


def _post(url: str, event: dict[str, Any], merchant: Merchant | None) -> tuple[int | None, str | None]:
    try:
        check_notify_url(url)
    except Exception as exc:  # noqa: BLE001 - a refused target is recorded as the attempt's error
        return None, f"refused target: {exc}"
    body = payload(event)
    timestamp = utcnow()
    secret = config_repo.webhook_secret(event["merchant_id"]).reveal()
    signature = Webhook(secret).sign(event["event_id"], timestamp, body.decode())
    headers = {"content-type": "application/json", "webhook-id": event["event_id"],
               "webhook-timestamp": str(int(timestamp.timestamp())), "webhook-signature": signature,
               "user-agent": "payhub-webhooks/1"}
    try:
        response = _http.request("POST", url, body=body, headers=headers, timeout=TIMEOUT)
    except urllib3.exceptions.HTTPError as exc:
        return None, type(exc).__name__
    return response.status, None if response.status < 300 else f"HTTP {response.status}"


def _record(event_id: str, attempt_no: int, url: str | None, status_code: int | None, error: str | None,
            duration_ms: int, ok: bool, manual: bool) -> None:
    now = iso(utcnow())
    dynamodb = client("dynamodb")
    dynamodb.put_item(TableName=state_repo.state_table(), Item=to_item({
        "pk": f"EVT#{event_id}", "sk": f"DLV#{now}#{attempt_no:03d}", "attempt": attempt_no, "at": now,
        "url": url, "status_code": status_code, "error": error, "duration_ms": duration_ms, "manual": manual,
    }))
    status = "delivered" if ok else ("failed" if attempt_no > len(RETRY_DELAYS_S) else "retrying")
    dynamodb.update_item(
        TableName=state_repo.state_table(), Key=to_item(records.event_key(event_id)),
        UpdateExpression="SET delivery_status = :status, last_attempt_at = :now ADD delivery_attempts :one",
        ExpressionAttributeValues=to_item({":status": status, ":now": now, ":one": 1}),
    )


def list_events(merchant: Merchant, limit: int, starting_after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    start = None
    if starting_after:
        anchor = state_repo.get_item(records.event_key(starting_after))
        if anchor is None or anchor.get("merchant_id") != merchant.merchant_id:
            raise NotFound(f"no event {starting_after}", param="starting_after")
        start = {k: anchor[k] for k in ("pk", "sk", "gsi1pk", "gsi1sk")}
    items, last = state_repo.query("gsi1pk = :pk", {":pk": f"MERCHANT#{merchant.merchant_id}#EVENTS"},
                                   index="gsi1", limit=limit, forward=False,
                                   start_key=to_item(start) if start else None)
    return [public_event(item) for item in items], (items[-1]["event_id"] if last and items else None)


def get_event(merchant: Merchant, event_id: str) -> dict[str, Any]:
    event = state_repo.get_item(records.event_key(event_id))
    if event is None or event.get("merchant_id") != merchant.merchant_id:
        raise NotFound(f"no event {event_id}", param="event_id")
    deliveries, _ = state_repo.query("pk = :pk AND begins_with(sk, :dlv)", {":pk": f"EVT#{event_id}", ":dlv": "DLV#"})
    return {**public_event(event), "deliveries": [
        {k: d.get(k) for k in ("attempt", "at", "url", "status_code", "error", "duration_ms", "manual")}
        for d in deliveries]}


def public_event(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["event_id"], "object": "event", "type": item["type"], "created_at": item["created_at"],
            "data": item["data"], "delivery_status": item.get("delivery_status"),
            "delivery_attempts": item.get("delivery_attempts", 0)}


def redeliver(merchant: Merchant, event_id: str) -> dict[str, Any]:
    get_event(merchant, event_id)  # ownership check
    outbox.send("webhooks", {"event_id": event_id, "manual": True})
    return {"id": event_id, "redelivery": "queued"}

