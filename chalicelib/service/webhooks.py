"""Merchant webhooks per Standard Webhooks: signed, retried with backoff for over 24 h, every attempt recorded.

SQS delays top out at 15 minutes, so a retry due later travels as a message carrying ``not_before``; a
worker that receives it early sends it back with the remaining delay.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from datetime import datetime, timedelta
from typing import Any

import urllib3
from standardwebhooks.webhooks import Webhook

from chalicelib.channels import log_redaction
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import NotFound
from chalicelib.domain.models import Merchant
from chalicelib.domain.value_class import value_class
from chalicelib.observability import alert
from chalicelib.service.webhook_targets import Target, TargetRefused, TargetUnresolved, check_notify_url
from chalicelib.storage import config_repo, outbox, records, shards, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item

log = logging.getLogger(__name__)
# Seconds after the previous try: ~28 h in all (1m, 5m, 30m, 2h, 5h, 10h, 10h).
RETRY_DELAYS_S = (60, 300, 1800, 7200, 18000, 36000, 36000)
# A merchant's notify_url may carry a token in its query: urllib3's own log lines never show it.
log_redaction.install()
TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0, total=10.0)  # a hanging merchant costs at most 10 s
_MAX_ADDRESSES_TRIED = 3  # a name's checked addresses tried in turn when one refuses the connection at once


def payload(event: dict[str, Any]) -> bytes:
    return json.dumps({"type": event["type"], "timestamp": event["created_at"], "data": event["data"]},
                      separators=(",", ":"), ensure_ascii=False).encode()


def deliver(event_id: str, *, attempt: int = 1, not_before: str | None = None, manual: bool = False) -> str:
    """Make delivery ``attempt`` of an event (or a manual redelivery, outside the automatic schedule).

    Each automatic attempt is claimed with a condition on the event's attempt counter, so a duplicated
    message (SQS delivers at least once; the outbox sweep may republish) cannot start a second retry chain.
    A target the address policy refuses ends the chain: the attempt is recorded as refused, nothing is
    retried and nothing raises (an exception would only cycle the message into the dead-letter queue).
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
        if event.get("delivery_status") in ("delivered", "refused"):
            return f"already_{event['delivery_status']}"
        if int(event.get("delivery_attempts", 0)) != attempt - 1:
            return "superseded"  # another copy of this message already made this attempt
    merchant = config_repo.get_merchant(event["merchant_id"])
    if merchant is None:  # no merchant by that id (an orphan's placeholder payment): nobody to tell, ever
        return "no_recipient"
    target = _target(event, merchant)
    started = time.monotonic()
    sent = _post(target, event) if target else Sent(None, "no notify_url configured")
    ok = sent.status_code is not None and 200 <= sent.status_code < 300
    record = {"attempt": attempt, "url": target, "status_code": sent.status_code, "error": sent.error,
              "manual": manual, "refused": sent.refused, "address": sent.address,
              "duration_ms": int((time.monotonic() - started) * 1000)}
    if sent.refused:
        log.warning("webhook target refused for %s: %s", event_id, sent.error,
                    extra=alert("webhook_target_refused", merchant_id=event["merchant_id"], event_id=event_id))
    status = "delivered" if ok else "refused" if sent.refused else (
        "failed" if attempt > len(RETRY_DELAYS_S) else "retrying")
    if manual:
        _record_manual(event_id, record, ok)
        return "delivered" if ok else "refused" if sent.refused else "failed"
    if not _record(event_id, record, status):
        return "superseded"
    if status != "retrying":
        return status
    delay = RETRY_DELAYS_S[attempt - 1]
    due = iso(utcnow() + timedelta(seconds=delay))
    outbox.send("webhooks", {"event_id": event_id, "attempt": attempt + 1, "not_before": due}, delay_s=delay)
    return "retry_scheduled"


def _target(event: dict[str, Any], merchant: Merchant | None) -> str | None:
    payment_id = event["data"].get("payment_id") or event["data"].get("id")
    payment = state_repo.get_payment(payment_id) if payment_id and payment_id.startswith("pay_") else None
    return (payment.notify_url if payment else None) or (merchant.webhook_url if merchant else None)


@value_class
class Sent:
    status_code: int | None
    error: str | None
    refused: bool = False  # the address policy refused the target: final, never retried
    address: str | None = None  # the checked address the request went to


def signature_header(event_id: str, timestamp: datetime, body: bytes, secrets: list[str]) -> str:
    """``v1,<sig>`` per valid secret, space-separated (Standard Webhooks): during a rotation's overlap a
    receiver holding either the new or the old secret verifies the same delivery."""
    return " ".join(Webhook(secret).sign(event_id, timestamp, body.decode()) for secret in secrets)


def _post(url: str, event: dict[str, Any]) -> Sent:
    try:
        target = check_notify_url(url)
    except TargetRefused as exc:  # a refused target is recorded as the attempt's error
        return Sent(None, f"refused target: {exc.message}", refused=True)
    except TargetUnresolved as exc:  # DNS may come back: an ordinary failed attempt, retried on schedule
        return Sent(None, exc.message)
    body = payload(event)
    timestamp = utcnow()
    secrets = [secret.reveal() for secret in config_repo.webhook_secrets(event["merchant_id"])]
    headers = {"content-type": "application/json", "webhook-id": event["event_id"],
               "webhook-timestamp": str(int(timestamp.timestamp())),
               "webhook-signature": signature_header(event["event_id"], timestamp, body, secrets),
               "user-agent": "payhub-webhooks/1", "host": target.host_header}
    error = "no address"
    for address in target.addresses[:_MAX_ADDRESSES_TRIED]:
        try:
            response = _post_pinned(target, address, body, headers)
        except urllib3.exceptions.NewConnectionError as exc:  # refused at once: the next checked address
            error = type(exc).__name__
            continue
        except urllib3.exceptions.HTTPError as exc:
            return Sent(None, type(exc).__name__, address=address)
        # Redirects are never followed: a 3xx could point anywhere, including where the check forbids.
        return Sent(response.status, None if response.status < 300 else f"HTTP {response.status}", address=address)
    return Sent(None, error)


def _post_pinned(target: Target, address: str, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
    """Connect to an address that passed the SSRF check, never to the name (a second lookup could answer
    differently); over https the URL's name is still the one used for SNI and the certificate."""
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port=target.port, server_hostname=target.host,
                                           assert_hostname=target.host, timeout=TIMEOUT, retries=False,
                                           ssl_minimum_version=ssl.TLSVersion.TLSv1_2)
    else:
        pool = urllib3.HTTPConnectionPool(address, port=target.port, timeout=TIMEOUT, retries=False)
    try:
        return pool.urlopen("POST", target.path, body=body, headers=headers, redirect=False, assert_same_host=False)
    finally:
        pool.close()


def _put_attempt(event_id: str, record: dict[str, Any], now: str) -> None:
    client("dynamodb").put_item(TableName=state_repo.state_table(), Item=to_item({
        "pk": f"EVT#{event_id}", "sk": f"DLV#{now}#{record['attempt']:03d}", "at": now, **record}))


def _record(event_id: str, record: dict[str, Any], status: str) -> bool:
    """Record an automatic attempt; False when another copy of the message claimed this attempt first."""
    now = iso(utcnow())
    _put_attempt(event_id, record, now)
    attempt = record["attempt"]
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
    """Newest first. The list is sharded (chalicelib/storage/outbox.py), so each page reads the newest ``limit``
    keys below the cursor from every shard, and from the pre-sharding key, in parallel, merges them, and reads
    the page's events (the index holds keys only) in one batch."""
    below = None
    if starting_after:
        anchor = state_repo.get_item(records.event_key(starting_after))
        if anchor is None or anchor.get("merchant_id") != merchant.merchant_id:
            raise NotFound(f"no event {starting_after}", param="starting_after")
        below = anchor["gsi1sk"]
    legacy = outbox.legacy_event_list_key(merchant.merchant_id)
    condition = "gsi1pk = :pk" + (" AND gsi1sk < :below" if below else "")

    def newest(key: str) -> tuple[list[dict[str, Any]], bool]:
        values = {":pk": key, **({":below": below} if below else {})}
        items, last = state_repo.query(condition, values, index="gsi1", limit=limit, forward=False)
        return items, last is not None

    count = shards.counts().events
    found = [newest(legacy), *shards.over_shards(count, lambda shard: newest(f"{legacy}#{shard}"))]
    merged = sorted((item for items, _ in found for item in items), key=lambda item: item["gsi1sk"], reverse=True)
    more = len(merged) > limit or any(truncated for _, truncated in found)
    page = [str(item["pk"]).removeprefix("EVT#") for item in merged[:limit]]
    events = {item["event_id"]: item for item in state_repo.batch_get([records.event_key(evt_id) for evt_id in page])}
    return [public_event(events[evt_id]) for evt_id in page if evt_id in events], (page[-1] if more and page else None)


def get_event(merchant: Merchant, event_id: str) -> dict[str, Any]:
    event = state_repo.get_item(records.event_key(event_id))
    if event is None or event.get("merchant_id") != merchant.merchant_id:
        raise NotFound(f"no event {event_id}", param="event_id")
    deliveries, _ = state_repo.query("pk = :pk AND begins_with(sk, :dlv)", {":pk": f"EVT#{event_id}", ":dlv": "DLV#"})
    return {**public_event(event), "deliveries": [
        {k: d.get(k) for k in ("attempt", "at", "url", "status_code", "error", "duration_ms", "manual", "refused")}
        for d in deliveries]}


def public_event(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["event_id"], "object": "event", "type": item["type"], "created_at": item["created_at"],
            "data": item["data"], "delivery_status": item.get("delivery_status"),
            "delivery_attempts": item.get("delivery_attempts", 0)}


def redeliver(merchant: Merchant, event_id: str) -> dict[str, Any]:
    get_event(merchant, event_id)  # ownership check
    outbox.send("webhooks", {"event_id": event_id, "manual": True})
    return {"id": event_id, "redelivery": "queued"}

