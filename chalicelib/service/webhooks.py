"""Merchant webhooks per Standard Webhooks: signed, retried with backoff for over 24 h, every attempt recorded.

SQS delays top out at 15 minutes, so a retry due later travels as a message carrying ``not_before``; a
worker that receives it early sends it back with the remaining delay.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import urllib3
from standardwebhooks.webhooks import Webhook

from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import InvalidRequest, NotFound
from chalicelib.domain.models import Merchant
from chalicelib.service.webhook_targets import check_notify_url
from chalicelib.storage import config_repo, outbox, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item

log = logging.getLogger(__name__)
# Seconds after the previous try: ~28 h in all (1m, 5m, 30m, 2h, 5h, 10h, 10h).
RETRY_DELAYS_S = (60, 300, 1800, 7200, 18000, 36000, 36000)
TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0, total=10.0)  # a hanging merchant costs at most 10 s
_http = urllib3.PoolManager(retries=False)


def payload(event: dict[str, Any]) -> bytes:
    return json.dumps({"type": event["type"], "timestamp": event["created_at"], "data": event["data"]},
                      separators=(",", ":"), ensure_ascii=False).encode()


def deliver(event_id: str, *, attempt: int = 1, not_before: str | None = None, manual: bool = False) -> str:
    """Make delivery ``attempt`` of an event (or a manual redelivery, outside the automatic schedule).

    Each automatic attempt is claimed with a condition on the event's attempt counter, so a duplicated
    message (SQS delivers at least once; the outbox sweep may republish) cannot start a second retry chain.
    """
    if not_before and parse_iso(not_before) > utcnow():
        remaining = int((parse_iso(not_before) - utcnow()).total_seconds()) + 1
        outbox.send("webhooks", {"event_id": event_id, "attempt": attempt, "not_before": not_before},
                    delay_s=remaining)
        return "deferred"
    event = state_repo.get_item(records.event_key(event_id))
    if event is None or "merchant_id" not in event:
        raise NotFound(f"no event {event_id}")
    if not manual:
        if event.get("delivery_status") == "delivered":
            return "already_delivered"
        if int(event.get("delivery_attempts", 0)) != attempt - 1:
            return "superseded"  # another copy of this message already made this attempt
    merchant = config_repo.get_merchant(event["merchant_id"])
    if merchant is None:  # no merchant by that id (an orphan's placeholder payment): nobody to tell, ever
        return "no_recipient"
    target = _target(event, merchant)
    started = time.monotonic()
    status_code, error = _post(target, event) if target else (None, "no notify_url configured")
    ok = status_code is not None and 200 <= status_code < 300
    record = {"attempt": attempt, "url": target, "status_code": status_code, "error": error, "manual": manual,
              "duration_ms": int((time.monotonic() - started) * 1000)}
    if manual:
        _record_manual(event_id, record, ok)
        return "delivered" if ok else "failed"
    if not _record(event_id, record, ok):
        return "superseded"
    if ok:
        return "delivered"
    if attempt > len(RETRY_DELAYS_S):
        return "failed"
    delay = RETRY_DELAYS_S[attempt - 1]
    due = iso(utcnow() + timedelta(seconds=delay))
    outbox.send("webhooks", {"event_id": event_id, "attempt": attempt + 1, "not_before": due}, delay_s=delay)
    return "retry_scheduled"


def _target(event: dict[str, Any], merchant: Merchant | None) -> str | None:
    payment_id = event["data"].get("payment_id") or event["data"].get("id")
    payment = state_repo.get_payment(payment_id) if payment_id and payment_id.startswith("pay_") else None
    return (payment.notify_url if payment else None) or (merchant.webhook_url if merchant else None)


def _post(url: str, event: dict[str, Any]) -> tuple[int | None, str | None]:
    try:
        pinned_address = check_notify_url(url)
    except InvalidRequest as exc:  # a refused target is recorded as the attempt's error
        return None, f"refused target: {exc.message}"
    body = payload(event)
    timestamp = utcnow()
    secret = config_repo.webhook_secret(event["merchant_id"]).reveal()
    signature = Webhook(secret).sign(event["event_id"], timestamp, body.decode())
    headers = {"content-type": "application/json", "webhook-id": event["event_id"],
               "webhook-timestamp": str(int(timestamp.timestamp())), "webhook-signature": signature,
               "user-agent": "payhub-webhooks/1"}
    try:
        if pinned_address:
            response = _post_pinned(url, pinned_address, body, headers)
        else:
            response = _http.request("POST", url, body=body, headers=headers, timeout=TIMEOUT)
    except urllib3.exceptions.HTTPError as exc:
        return None, type(exc).__name__
    return response.status, None if response.status < 300 else f"HTTP {response.status}"


def _post_pinned(url: str, address: str, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
    """HTTPS to the address that passed the SSRF check, with the URL's name for SNI, certificate and Host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    pool = urllib3.HTTPSConnectionPool(address, port=parts.port or 443, server_hostname=host, assert_hostname=host,
                                       timeout=TIMEOUT, retries=False, ssl_minimum_version=ssl.TLSVersion.TLSv1_2)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        return pool.urlopen("POST", path, body=body, headers={**headers, "host": host}, redirect=False)
    finally:
        pool.close()


def _put_attempt(event_id: str, record: dict[str, Any], now: str) -> None:
    client("dynamodb").put_item(TableName=state_repo.state_table(), Item=to_item({
        "pk": f"EVT#{event_id}", "sk": f"DLV#{now}#{record['attempt']:03d}", "at": now, **record}))


def _record(event_id: str, record: dict[str, Any], ok: bool) -> bool:
    """Record an automatic attempt; False when another copy of the message claimed this attempt first."""
    now = iso(utcnow())
    _put_attempt(event_id, record, now)
    attempt = record["attempt"]
    status = "delivered" if ok else ("failed" if attempt > len(RETRY_DELAYS_S) else "retrying")
    try:
        client("dynamodb").update_item(
            TableName=state_repo.state_table(), Key=to_item(records.event_key(event_id)),
            UpdateExpression="SET delivery_status = :status, last_attempt_at = :now, delivery_attempts = :n",
            ConditionExpression="delivery_attempts = :previous",
            ExpressionAttributeValues=to_item({":status": status, ":now": now, ":n": attempt,
                                               ":previous": attempt - 1}),
        )
    except client("dynamodb").exceptions.ConditionalCheckFailedException:
        return False
    return True


def _record_manual(event_id: str, record: dict[str, Any], ok: bool) -> None:
    """A manual redelivery is recorded but leaves the automatic schedule alone; a success marks it delivered."""
    now = iso(utcnow())
    _put_attempt(event_id, record, now)
    if ok:
        client("dynamodb").update_item(
            TableName=state_repo.state_table(), Key=to_item(records.event_key(event_id)),
            UpdateExpression="SET delivery_status = :delivered, last_attempt_at = :now",
            ExpressionAttributeValues=to_item({":delivered": "delivered", ":now": now}),
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

