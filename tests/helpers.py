"""Small helpers shared by functional and end-to-end tests."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class MerchantClient:
    """A merchant's system calling the API over HTTP."""

    api_url: str
    merchant_id: str
    api_key: str
    webhook_secret: str
    webhook_url: str = ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             idempotency_key: str | None = None, raw: bytes | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        return requests.request(method, f"{self.api_url}{path}", data=data, headers=headers, timeout=30)

    def create_payment(self, **overrides: Any) -> dict[str, Any]:
        body = {"merchant_order_no": f"o{uuid.uuid4().hex[:20]}", "amount": 1000, "currency": "CNY",
                "description": "test order", "method": "wechat.native", **overrides}
        response = self.call("POST", "/v1/payments", body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def get(self, path: str) -> dict[str, Any]:
        response = self.call("GET", path)
        assert response.status_code == 200, response.text
        return dict(response.json())


def wait_for(condition: Callable[[], Any], *, timeout_s: float = 10.0, every_s: float = 0.05) -> Any:
    """Poll until ``condition()`` is truthy; fail with a clear message instead of hanging."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        time.sleep(every_s)


def make_merchant(stack: Any, *, late_success_policy: str = "refund") -> Any:
    import uuid

    from chalicelib.service.merchants import create_merchant

    url = stack.receiver.endpoint(uuid.uuid4().hex[:12])
    created = create_merchant("Test Merchant", webhook_url=url, late_success_policy=late_success_policy)
    stack.receiver.trust(url, created.webhook_secret)
    return MerchantClient(stack.api_url, created.merchant.merchant_id, created.api_key, created.webhook_secret, url)


def morning_after(day: Any) -> Any:
    """A moment in the Beijing morning after ``day`` (10:30, when the channels' statements are out): the time
    a run reconciling ``day`` happens, for tests whose payments were made today."""
    from datetime import datetime, time, timedelta

    from chalicelib.domain.clock import BEIJING

    return datetime.combine(day + timedelta(days=1), time(10, 30), tzinfo=BEIJING)

