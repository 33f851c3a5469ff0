"""SSRF end to end: a refused notify_url is a 400 naming the field at create; a name that passes at create and
rebinds to a refused address by delivery time is recorded as a refused attempt, never called, never retried,
and nothing lands in the dead-letter queue."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from chalicelib.service.merchants import create_merchant
from tests.helpers import MerchantClient


@pytest.mark.parametrize("notify_url", [
    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://[2002:a9fe:a9fe::]/",
    "http://[::a9fe:a9fe]/", "http://[64:ff9b:1::a9fe:a9fe]/", "http://10.0.0.1/hook", "http://[::127.0.0.1]/",
])
def test_create_refuses_a_forbidden_notify_url_naming_it(merchant, notify_url):
    response = merchant.call("POST", "/v1/payments", {
        "merchant_order_no": f"o{uuid.uuid4().hex[:20]}", "amount": 100, "currency": "CNY", "description": "x",
        "method": "wechat.native", "notify_url": notify_url})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "notify_url"


def test_a_target_that_rebinds_to_a_refused_address_is_recorded_refused_and_never_retried(stack, drain,
                                                                                        monkeypatch):
    real_getaddrinfo = socket.getaddrinfo
    answer = {"rebind.test": "127.0.0.1"}  # loopback: what the local stack's explicit setting admits

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answer:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer[host], 0))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    port = stack.receiver.base_url.rsplit(":", 1)[1]
    path = f"/webhooks/{uuid.uuid4().hex[:12]}"
    url = f"http://rebind.test:{port}{path}"
    created = create_merchant("Rebinding Merchant", webhook_url=url)
    stack.receiver.trust(stack.receiver.base_url + path, created.webhook_secret)
    merchant = MerchantClient(stack.api_url, created.merchant.merchant_id, created.api_key, created.webhook_secret,
                              url)
    answer["rebind.test"] = "169.254.169.254"  # the name now points at the instance metadata service
    payment = merchant.create_payment()
    assert merchant.call("POST", f"/v1/payments/{payment['id']}/close").status_code == 200
    drain()
    drain()
    [event] = merchant.get("/v1/events")["data"]
    detail = merchant.get(f"/v1/events/{event['id']}")
    assert detail["delivery_status"] == "refused" and detail["delivery_attempts"] == 1
    [attempt] = detail["deliveries"]
    assert attempt["refused"] is True and attempt["status_code"] is None
    assert "169.254.169.254" in attempt["error"]
    assert stack.receiver.types_for(payment["id"]) == []

    # A manual redelivery is refused the same way and recorded; the name pointing back at an allowed address
    # makes the next redelivery go through, to the checked address.
    assert merchant.call("POST", f"/v1/events/{event['id']}/redeliver").status_code == 202
    drain()
    assert [d["refused"] for d in merchant.get(f"/v1/events/{event['id']}")["deliveries"]] == [True, True]
    answer["rebind.test"] = "127.0.0.1"
    assert merchant.call("POST", f"/v1/events/{event['id']}/redeliver").status_code == 202
    drain()
    assert stack.receiver.types_for(payment["id"]) == ["payment.closed"]
    assert merchant.get(f"/v1/events/{event['id']}")["delivery_status"] == "delivered"
