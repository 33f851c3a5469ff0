"""A merchant's payments or refunds by time, newest first, filtered, in pages joined by a signed cursor.

Read from the ``listing`` index (chalicelib/storage/listing_index.py), never a Scan. The merchant's objects are
spread over ``shards.counts().listing`` partition keys, each sorted by ``<created_at>#<id>``; a page is a merge
of all of them: every shard is asked for its newest few items below the cursor (in parallel), the merge takes
the greatest head again and again, and a shard whose buffer runs dry is asked for more (twice as many) before
the merge goes on, so no item is ever skipped. Filters on attributes that never change (method, channel,
payment) are applied by DynamoDB in the query; the status changes over an object's life and is not in the index
(so a status change writes nothing to it), so a status filter is applied to the items themselves, read in
batches of up to 100. Each request evaluates at most ``MAX_EVALUATED`` index items: a rare status over a long
range may answer fewer than ``limit`` items with ``has_more``, and the cursor goes on from where it stopped.

The cursor is the position of the last item evaluated, signed with the merchant, the kind and the filters it
was made for (chalicelib/bills/signing.py): it cannot be altered, nor used by another merchant or with other
filters. Because the position is fixed in the order, objects created while a client pages never shift a page
(they are newer than the cursor) and nothing present when the listing began is returned twice or missed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.bills import signing
from chalicelib.channels.registry import ADAPTERS, METHOD_PREFIXES, METHODS
from chalicelib.domain.clock import iso
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.models import Merchant
from chalicelib.domain.states import PaymentState, RefundState
from chalicelib.domain.value_class import value_class
from chalicelib.observability import security_event
from chalicelib.service import query_params
from chalicelib.storage import listing_index, records, shards, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item

log = logging.getLogger(__name__)
INDEX = "listing"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_EVALUATED = 1000  # index items one request may look at (bounds the work of a selective status filter)
FIRST_FETCH = 4  # items asked of each shard at first; doubled each time that shard runs dry, up to MAX_FETCH
MAX_FETCH = 200
PARALLEL = 16
_LOWEST, _HIGHEST = "0", "~"  # below and above every "<created_at>#<id>"

_COMMON = ("limit", "cursor", "created_from", "created_to", "status", "channel", "merchant_order_no")
PARAMS = {"payment": frozenset(_COMMON + ("method",)), "refund": frozenset(_COMMON + ("payment_id",))}
_STATUSES = {"payment": {str(s) for s in PaymentState}, "refund": {str(s) for s in RefundState}}
_PREFIX_OF_CHANNEL = {channel: prefix for prefix, channel in METHOD_PREFIXES.items()}


@value_class
class Filters:
    kind: str
    created_from: str | None = None  # inclusive, hub ISO text
    created_to: str | None = None  # exclusive
    status: str | None = None
    method: str | None = None
    channel: str | None = None
    payment_id: str | None = None  # refunds of one payment (also what merchant_order_no resolves to)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(vars(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Page:
    data: list[dict[str, Any]]
    next_cursor: str | None

    def public(self) -> dict[str, Any]:
        return {"object": "list", "data": self.data, "has_more": self.next_cursor is not None,
                "next_cursor": self.next_cursor}


def _timestamp(text: str, name: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in text:
        raise InvalidRequest(f"{name} must be an ISO 8601 time with a zone, e.g. 2026-03-01T00:00:00+08:00",
                             param=name)
    return iso(moment)


def parse_filters(kind: str, params: Mapping[str, str]) -> Filters:
    """Every parameter checked; a bad one is a 400 naming it."""
    for name in sorted(params):
        if name not in PARAMS[kind]:
            raise InvalidRequest(f"unknown query parameter {name}", param=name)
    created_from = _timestamp(params["created_from"], "created_from") if "created_from" in params else None
    created_to = _timestamp(params["created_to"], "created_to") if "created_to" in params else None
    if created_from and created_to and created_from >= created_to:
        raise InvalidRequest("created_to must be later than created_from", param="created_to")
    status = params.get("status")
    if status is not None and status not in _STATUSES[kind]:
        raise InvalidRequest(f"status must be one of {', '.join(sorted(_STATUSES[kind]))}", param="status")
    method = params.get("method")
    if method is not None and method not in METHODS:
        raise InvalidRequest("method must be one of the payment methods", param="method")
    channel = params.get("channel")
    if channel is not None and channel not in ADAPTERS:
        raise InvalidRequest(f"channel must be one of {', '.join(sorted(ADAPTERS))}", param="channel")
    payment_id = params.get("payment_id")
    if payment_id is not None and (not payment_id.startswith("pay_") or len(payment_id) > 64):
        raise InvalidRequest("payment_id must be a payment id (pay_...)", param="payment_id")
    return Filters(kind, created_from, created_to, status, method, channel, payment_id)


def list_page(merchant: Merchant, kind: str, params: Mapping[str, str]) -> Page:
    filters = parse_filters(kind, params)
    limit = query_params.limit(params.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
    order_no = params.get("merchant_order_no")
    if order_no is not None:
        payment_id = state_repo.payment_id_for_order_no(merchant.merchant_id, order_no)
        if kind == "payment":  # one payment at most: read it directly, no index
            found = state_repo.get_payment(payment_id) if payment_id else None
            matches = found is not None and _keeps(filters, found.public(), found.created_at)
            return Page([found.public()] if found and matches else [], None)
        if payment_id is None or (filters.payment_id and filters.payment_id != payment_id):
            return Page([], None)
        filters = Filters(**{**vars(filters), "payment_id": payment_id})
    after = _cursor_position(merchant, filters, params.get("cursor"))
    return _merge(merchant.merchant_id, filters, limit, after)


def _keeps(filters: Filters, public: dict[str, Any], created_at: str) -> bool:
    if filters.created_from and created_at < filters.created_from:
        return False
    if filters.created_to and created_at >= filters.created_to:
        return False
    if filters.status and public.get("status") != filters.status:
        return False
    if filters.method and public.get("method") != filters.method:
        return False
    return not (filters.channel and not str(public.get("method", "")).startswith(_PREFIX_OF_CHANNEL[filters.channel] + "."))


def _cursor_position(merchant: Merchant, filters: Filters, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        payload = signing.verify("cursor", cursor)
    except signing.BadToken as exc:
        log.warning("list cursor refused for %s: %s", merchant.merchant_id, exc,
                    extra=security_event("bill_link_forged", merchant_id=merchant.merchant_id))
        raise InvalidRequest("cursor is not one this API returned (altered or truncated)", param="cursor") from exc
    if payload.get("m") != merchant.merchant_id or payload.get("k") != filters.kind:
        raise InvalidRequest("cursor belongs to another list", param="cursor")
    if payload.get("f") != filters.digest():
        raise InvalidRequest("cursor was made for other filters: send the same filters with it", param="cursor")
    position = payload.get("p")
    if not isinstance(position, str):
        raise InvalidRequest("cursor is not one this API returned", param="cursor")
    return position


def _make_cursor(merchant_id: str, filters: Filters, position: str) -> str:
    return signing.sign("cursor", {"m": merchant_id, "k": filters.kind, "f": filters.digest(), "p": position})


@dataclass
class _Shard:
    partition: str
    buffer: deque[dict[str, Any]] = field(default_factory=deque)
    start_key: dict[str, Any] | None = None
    exhausted: bool = False
    fetch: int = FIRST_FETCH


def _query_params(filters: Filters, after: str | None) -> dict[str, Any]:
    high = min(x for x in (after, filters.created_to, _HIGHEST) if x)
    values: dict[str, Any] = {":lo": filters.created_from or _LOWEST, ":hi": high}
    conditions, names = [], {}
    if filters.method:
        conditions.append("#method = :method")
        names["#method"] = "method"
        values[":method"] = filters.method
    if filters.channel:
        if filters.kind == "payment":  # a payment's channel is its method's family (wechat.* -> wechatpay)
            conditions.append("begins_with(#method, :prefix)")
            names["#method"] = "method"
            values[":prefix"] = _PREFIX_OF_CHANNEL[filters.channel] + "."
        else:
            conditions.append("#channel = :channel")
            names["#channel"] = "channel"
            values[":channel"] = filters.channel
    if filters.payment_id:
        conditions.append("payment_id = :payment_id")
        values[":payment_id"] = filters.payment_id
    params: dict[str, Any] = {"filter": " AND ".join(conditions), "names": names, "values": values}
    return params


def _fetch(table: str, shard: _Shard, query: dict[str, Any], after: str | None) -> None:
    request: dict[str, Any] = {
        "TableName": table, "IndexName": INDEX, "ScanIndexForward": False, "Limit": shard.fetch,
        "KeyConditionExpression": "list_pk = :pk AND list_sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": to_item({**query["values"], ":pk": shard.partition}),
    }
    if query["filter"]:
        request["FilterExpression"] = query["filter"]
    if query["names"]:
        request["ExpressionAttributeNames"] = query["names"]
    if shard.start_key:
        request["ExclusiveStartKey"] = shard.start_key
    response = client("dynamodb").query(**request)
    for raw in response.get("Items", []):
        item = from_item(raw)
        if item["list_sk"] != after:  # BETWEEN is inclusive: the cursor's own item was on the last page
            shard.buffer.append(item)
    shard.start_key = response.get("LastEvaluatedKey")
    shard.exhausted = shard.start_key is None
    shard.fetch = min(shard.fetch * 2, MAX_FETCH)


def _merge(merchant_id: str, filters: Filters, limit: int, after: str | None) -> Page:
    table = state_repo.state_table()
    query = _query_params(filters, after)
    shard_list = [_Shard(listing_index.partition(merchant_id, filters.kind, s))
                  for s in shards.all_shards(shards.counts().listing)]
    results: list[tuple[str, dict[str, Any]]] = []
    left_over = False  # candidates read but not needed once the page was full
    evaluated = 0
    last_evaluated: str | None = None
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(shard_list))) as pool:
        while len(results) < limit and evaluated < MAX_EVALUATED:
            dry = [s for s in shard_list if not s.buffer and not s.exhausted]
            if dry:
                list(pool.map(lambda s: _fetch(table, s, query, after), dry))
                continue
            live = [s for s in shard_list if s.buffer]
            if not live:
                break
            # Take candidates in order while every shard that may still hold greater items has its head here.
            want = limit - len(results) if not filters.status else min(100, 2 * (limit - len(results)))
            want = min(want, MAX_EVALUATED - evaluated)
            candidates: list[dict[str, Any]] = []
            while len(candidates) < want:
                live = [s for s in shard_list if s.buffer]
                if not live or any(not s.buffer and not s.exhausted for s in shard_list):
                    break
                best = max(live, key=lambda s: s.buffer[0]["list_sk"])
                candidates.append(best.buffer.popleft())
            found = {item["pk"]: item for item in state_repo.batch_get([{"pk": c["pk"], "sk": c["sk"]} for c in candidates])}
            for n, candidate in enumerate(candidates):
                evaluated += 1
                last_evaluated = candidate["list_sk"]
                item = found.get(candidate["pk"])
                if item is None:  # archived or removed since it was indexed
                    continue
                public = (records.payment_from(item) if filters.kind == "payment" else records.refund_from(item)).public()
                if not filters.status or public["status"] == filters.status:
                    results.append((candidate["list_sk"], public))
                    if len(results) == limit:
                        left_over = n + 1 < len(candidates)
                        break
    more = left_over or any(s.buffer or not s.exhausted for s in shard_list)
    if len(results) == limit and results:
        position = results[-1][0]
    else:
        position = last_evaluated or ""
    next_cursor = _make_cursor(merchant_id, filters, position) if more and position else None
    return Page([public for _, public in results], next_cursor)
