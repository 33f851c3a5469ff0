"""The third-party risk service: Sift's Events API v205 with synchronous scores.

The hub sends a ``$transaction`` event (or ``$create_refund``) to ``POST {base}/v205/events?return_score=true
&abuse_types=payment_abuse`` and reads ``score_response.scores.payment_abuse.score`` (0..1, higher is riskier)
and its ``reasons``. Sift authenticates the Events API by the account's REST API key carried in the JSON body as
``$api_key``; amounts are in micros of the currency (1 yuan = 1,000,000). ``status`` 0 is success; any other
status, an HTTP error, an answer that does not parse, or no answer within the budget makes the provider
*unavailable* for this decision, and each rule that reads ``provider`` then fails open or closed as it says.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from chalicelib.channels.base import HttpRequest
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.value_class import value_class

log = logging.getLogger(__name__)
_transport: Any = None
MINOR_PER_MAJOR = {"JPY": 1, "KRW": 1, "KWD": 1000, "BHD": 1000}


def transport() -> Any:
    global _transport
    if _transport is None:
        from chalicelib.channels.transport import UrllibTransport

        _transport = UrllibTransport(connect_timeout_s=0.5)
    return _transport


@value_class
class ProviderScore:
    """The risk service's score for one event."""

    score: float  # 0..100 (Sift's 0..1 scaled), so rules compare it with the hub's own scores
    reasons: tuple[str, ...]
    elapsed_ms: int


@value_class
class ScoreRequest:
    """One event sent to the risk service for a score."""

    event_type: str  # "$transaction" | "$create_refund"
    user_id: str
    order_id: str
    amount: int
    currency: str
    ip: str | None = None
    device_id: str | None = None
    city: str | None = None
    merchant_id: str | None = None


def score(base_url: str, api_key: str, request: ScoreRequest, *, budget_ms: int) -> ProviderScore | None:
    """The provider's score, or None if it could not give one within ``budget_ms`` (logged, never raised)."""
    micros = request.amount * (1_000_000 // MINOR_PER_MAJOR.get(request.currency, 100))
    event: dict[str, Any] = {
        "$type": request.event_type, "$api_key": api_key, "$user_id": request.user_id,
        "$order_id": request.order_id, "$amount": micros, "$currency_code": request.currency,
        "$seller_user_id": request.merchant_id,
    }
    if request.event_type == "$transaction":
        event["$transaction_type"] = "$sale"
    if request.ip:
        event["$ip"] = request.ip
    if request.device_id:
        event["$session_id"] = request.device_id
    if request.city:
        event["$billing_address"] = {"$city": request.city}
    url = f"{base_url.rstrip('/')}/v205/events?return_score=true&abuse_types=payment_abuse"
    started = time.monotonic()
    try:
        answer = transport().send(HttpRequest("POST", url, {"Content-Type": "application/json"},
                                              json.dumps(event).encode()), timeout_s=budget_ms / 1000)
    except ChannelError as exc:
        log.warning("risk provider unavailable: %s", exc.message)
        return None
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if answer.status != 200:
        log.warning("risk provider answered HTTP %s in %d ms", answer.status, elapsed_ms)
        return None
    try:
        body = json.loads(answer.body)
        if body.get("status") != 0:
            log.warning("risk provider refused the event: status %s", body.get("status"))
            return None
        result = body["score_response"]["scores"]["payment_abuse"]
        value = float(result["score"])
        reasons = tuple(str(r.get("name")) for r in result.get("reasons", []) if isinstance(r, dict))
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("risk provider answer unreadable: %s", type(exc).__name__)
        return None
    if not 0.0 <= value <= 1.0:
        log.warning("risk provider score out of range")
        return None
    return ProviderScore(round(value * 100, 2), reasons, elapsed_ms)
