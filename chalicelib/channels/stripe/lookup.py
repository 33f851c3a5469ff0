"""Finding Stripe objects by *our* ids: the fallback for a caller that does not pass Stripe's own ids.

The hub's callers pass the intent id (``channel_order_ref``) and the refund id (``channel_refund_id``) they
recorded, and the adapter reads those objects directly (``GET /v1/payment_intents/{id}``, ``GET /v1/refunds/{id}``:
strongly consistent). Only without them does it search here, where a miss proves nothing (search lags, lists are
bounded); the adapter therefore never reads "not found here" as "closed", and re-reads a found intent by id.

Every intent carries ``metadata[attempt_id]`` and every refund ``metadata[refund_id]``:
- intents: the Search API (``metadata['attempt_id']:'att_...'``) first. Search is eventually consistent (normally
  under a minute, up to an hour during incidents) and unavailable in some regions, so when it finds nothing the
  newest intents are listed (``GET /v1/payment_intents``, strongly consistent) for a few pages.
- refunds: Stripe has no refund search; refunds are listed newest first (``GET /v1/refunds``), a bounded number
  of pages. The refunds the hub asks about are recent ones (status sync follows a refund until it is final).
Matching is on the exact metadata value (search itself is case-insensitive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.channels.stripe.client import StripeClient
from chalicelib.channels.stripe.credentials import StripeCredentials
from chalicelib.domain.errors import ChannelError

PAGE_SIZE = 100
INTENT_LIST_PAGES_MAX = 3
REFUND_LIST_PAGES_MAX = 10
_STATUS_RANK = {"succeeded": 0, "processing": 1, "requires_capture": 2, "requires_confirmation": 3,
                "requires_action": 4, "requires_payment_method": 5, "canceled": 6}


def has_metadata(obj: Any, key: str, value: str) -> bool:
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    return isinstance(metadata, Mapping) and metadata.get(key) == value


def _best(intents: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """One attempt makes one intent (its create is idempotent); should there be more, the most advanced wins."""
    if not intents:
        return None
    def rank(intent: Mapping[str, Any]) -> int:
        return _STATUS_RANK.get(str(intent.get("status")), len(_STATUS_RANK))

    best: Mapping[str, Any] = min(intents, key=rank)
    return dict(best)


def _page(answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = answer.get("data")
    if not isinstance(data, list):
        raise ChannelError("Stripe list answer lacks data")
    return [item for item in data if isinstance(item, Mapping)]


def find_intent(client: StripeClient, credentials: StripeCredentials, attempt_id: str) -> dict[str, Any] | None:
    query = f"metadata['attempt_id']:'{attempt_id}'"
    try:
        answer = client.call_json(credentials, "GET", "/v1/payment_intents/search", {"query": query, "limit": 10})
        found = [i for i in _page(answer) if has_metadata(i, "attempt_id", attempt_id)]
    except ChannelError as exc:
        if exc.retryable:
            raise
        found = []  # search unavailable for this account: listing still works
    if found:
        return _best(found)
    return _best(_list_matching(client, credentials, "/v1/payment_intents", {}, "attempt_id", attempt_id,
                                INTENT_LIST_PAGES_MAX))


def find_refund(client: StripeClient, credentials: StripeCredentials, refund_id: str,
                payment_intent: str | None = None) -> dict[str, Any] | None:
    params = {"payment_intent": payment_intent} if payment_intent else {}
    found = _list_matching(client, credentials, "/v1/refunds", params, "refund_id", refund_id, REFUND_LIST_PAGES_MAX)
    return dict(found[0]) if found else None


def _list_matching(client: StripeClient, credentials: StripeCredentials, path: str, params: Mapping[str, Any],
                   key: str, value: str, pages_max: int) -> list[Mapping[str, Any]]:
    cursor: str | None = None
    for _ in range(pages_max):
        page_params = {**params, "limit": PAGE_SIZE, "starting_after": cursor}
        answer = client.call_json(credentials, "GET", path, page_params)
        items = _page(answer)
        found = [item for item in items if has_metadata(item, key, value)]
        if found:
            return found
        last_id = items[-1].get("id") if items else None
        if answer.get("has_more") is not True or not isinstance(last_id, str):
            return []
        cursor = last_id
    return []
