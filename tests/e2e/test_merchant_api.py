"""The merchant API contract: auth, validation, idempotency, lookups, close, events, isolation, OpenAPI."""

from __future__ import annotations

import json
import threading
import uuid

import requests

from tests.helpers import make_merchant, wait_for


def order_body(**overrides):
    return {"merchant_order_no": f"o{uuid.uuid4().hex[:20]}", "amount": 500, "currency": "CNY",
            "description": "cup of tea", "method": "wechat.native", **overrides}


def test_missing_or_unknown_key_is_401(stack):
    assert requests.get(f"{stack.api_url}/v1/payments/pay_x", timeout=10).status_code == 401
    response = requests.get(f"{stack.api_url}/v1/payments/pay_x", headers={"Authorization": "Bearer sk_local_nope"},
                            timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert response.json()["error"]["request_id"]


def test_a_key_from_another_stage_is_refused(stack, merchant):
    other_stage_key = merchant.api_key.replace("sk_local_", "sk_prod_", 1)
    response = requests.get(f"{stack.api_url}/v1/events", headers={"Authorization": f"Bearer {other_stage_key}"},
                            timeout=10)
    assert response.status_code == 401


def test_bad_input_names_the_field_and_writes_nothing(merchant):
    cases = [
        ({"amount": -1}, "amount"), ({"amount": "10"}, "amount"), ({"currency": "XXX"}, "currency"),
        ({"method": "wechat.nope"}, "method"), ({"method": "carrierpigeon.fast"}, "method"),
        ({"merchant_order_no": "has space"}, "merchant_order_no"), ({"unexpected": 1}, "unexpected"),
        ({"payer": {"openid": 7}}, "payer.openid"), ({"method": "wechat.jsapi"}, "payer.openid"),
        ({"method": "wechat.h5"}, "payer.ip"), ({"currency": "USD"}, "method"),
    ]
    for overrides, field in cases:
        body = order_body(**overrides)
        response = merchant.call("POST", "/v1/payments", body)
        assert response.status_code in (400, 422), (overrides, response.text)
        assert response.json()["error"]["param"] == field, (overrides, response.text)
        lookup = merchant.call("GET", f"/v1/payments?merchant_order_no={body['merchant_order_no']}")
        assert lookup.status_code in (400, 404)
    broken = merchant.call("POST", "/v1/payments", raw=b"{not json")
    assert broken.status_code == 400


def test_post_without_idempotency_key_is_refused(stack, merchant):
    response = requests.post(f"{stack.api_url}/v1/payments", data=json.dumps(order_body()),
                             headers={"Authorization": f"Bearer {merchant.api_key}",
                                      "Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"


def test_same_key_same_body_replays_and_different_body_is_422(merchant):
    body = order_body()
    first = merchant.call("POST", "/v1/payments", body, idempotency_key="k-1")
    again = merchant.call("POST", "/v1/payments", body, idempotency_key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    reused = merchant.call("POST", "/v1/payments", {**body, "amount": 501}, idempotency_key="k-1")
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


def test_concurrent_requests_with_one_key_create_one_payment(merchant):
    body = order_body()
    barrier = threading.Barrier(8)
    results = []

    def send():
        barrier.wait()
        results.append(merchant.call("POST", "/v1/payments", body, idempotency_key="same-key"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    created = {r.json()["id"] for r in results if r.status_code == 201}
    assert len(created) == 1
    assert all(r.status_code in (201, 409) for r in results)
    assert all(r.json()["error"]["code"] == "idempotency_in_flight" for r in results if r.status_code == 409)


def test_merchant_order_no_is_unique_per_merchant(stack, merchant):
    body = order_body()
    assert merchant.call("POST", "/v1/payments", body).status_code == 201
    duplicate = merchant.call("POST", "/v1/payments", body)  # new idempotency key, same order number
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == {**duplicate.json()["error"], "code": "duplicate_merchant_order_no",
                                         "param": "merchant_order_no"}
    other = make_merchant(stack)
    assert other.call("POST", "/v1/payments", body).status_code == 201  # another merchant may reuse it


def test_lookup_by_merchant_order_no(merchant):
    payment = merchant.create_payment()
    found = merchant.get(f"/v1/payments?merchant_order_no={payment['merchant_order_no']}")
    assert found["id"] == payment["id"]
    assert merchant.call("GET", "/v1/payments?merchant_order_no=nope").status_code == 404


def test_each_wechat_method_returns_its_client_action(merchant):
    expectations = {
        "wechat.native": ("qr_code", "code_url"), "wechat.h5": ("redirect_url", "url"),
        "wechat.jsapi": ("jsapi_params", "paySign"), "wechat.miniprogram": ("jsapi_params", "paySign"),
        "wechat.app": ("app_params", "sign"),
    }
    for method, (action_type, field) in expectations.items():
        payment = merchant.create_payment(method=method, payer={"openid": "o-user-1", "ip": "203.0.113.9"})
        assert payment["action"]["type"] == action_type, method
        assert payment["action"][field], method


def test_close_then_webhook_and_close_is_idempotent(stack, merchant, drain):
    payment = merchant.create_payment()
    closed = merchant.call("POST", f"/v1/payments/{payment['id']}/close")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    again = merchant.call("POST", f"/v1/payments/{payment['id']}/close")
    assert again.status_code == 200 and again.json()["status"] == "closed"
    order = requests.get(f"{stack.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()
    assert json.dumps(order).count("CLOSED") >= 1
    drain()
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.closed"])


def test_refund_of_unpaid_payment_is_409(merchant):
    payment = merchant.create_payment()
    response = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 1, "merchant_refund_no": "a"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"


def test_merchants_cannot_see_each_others_objects(stack, merchant, drain):
    payment = merchant.create_payment()
    requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]}, timeout=10)
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    refund = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 1, "merchant_refund_no": "a"})
    drain()
    event_id = merchant.get("/v1/events")["data"][0]["id"]
    intruder = make_merchant(stack)
    for method, path in [("GET", f"/v1/payments/{payment['id']}"), ("POST", f"/v1/payments/{payment['id']}/close"),
                         ("POST", f"/v1/payments/{payment['id']}/refunds"), ("GET", f"/v1/refunds/{refund.json()['id']}"),
                         ("GET", f"/v1/events/{event_id}"), ("POST", f"/v1/events/{event_id}/redeliver"),
                         ("GET", f"/v1/payments?merchant_order_no={payment['merchant_order_no']}")]:
        body = {"amount": 1, "merchant_refund_no": "b"} if path.endswith("/refunds") else None
        response = intruder.call(method, path, body)
        assert response.status_code == 404, (method, path, response.text)
    assert intruder.get("/v1/events")["data"] == []


def test_events_record_every_delivery_attempt_and_can_be_redelivered(stack, merchant, drain, monkeypatch):
    from chalicelib.service import webhooks

    monkeypatch.setattr(webhooks, "RETRY_DELAYS_S", (0, 0, 0, 0, 0, 0, 0))
    stack.receiver.fail_next(merchant.webhook_url, 2)
    payment = merchant.create_payment()
    merchant.call("POST", f"/v1/payments/{payment['id']}/close")
    for _ in range(5):
        drain()
    events = merchant.get("/v1/events")["data"]
    event = merchant.get(f"/v1/events/{events[0]['id']}")
    assert event["type"] == "payment.closed" and event["delivery_status"] == "delivered"
    assert [d["status_code"] for d in sorted(event["deliveries"], key=lambda d: d["attempt"])] == [503, 503, 204]
    assert merchant.call("POST", f"/v1/events/{event['id']}/redeliver").status_code == 202
    drain()
    assert len(merchant.get(f"/v1/events/{event['id']}")["deliveries"]) == 4
    assert stack.receiver.types_for(payment["id"]) == ["payment.closed", "payment.closed"]


def test_webhook_retries_span_more_than_a_day():
    from chalicelib.service.webhooks import RETRY_DELAYS_S

    assert sum(RETRY_DELAYS_S) >= 24 * 3600


def test_openapi_document_matches_the_routes(stack):
    import app as chalice_app

    document = requests.get(f"{stack.api_url}/v1/openapi.json", timeout=10).json()
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    served = {(path, method) for path, methods in chalice_app.app.routes.items() for method in methods
              if path.startswith("/v1/") and path != "/v1/openapi.json"}
    assert documented == served
    create = document["components"]["schemas"]["CreatePayment"]
    assert set(create["required"]) >= {"merchant_order_no", "amount", "currency", "description", "method"}


def test_one_key_on_two_payments_is_two_requests_not_a_replay(stack, merchant, drain):
    first, second = merchant.create_payment(amount=300), merchant.create_payment(amount=300)
    for payment in (first, second):
        requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"]}, timeout=10)
        wait_for(lambda p=payment: merchant.get(f"/v1/payments/{p['id']}")["status"] == "succeeded")
    body = {"amount": 300, "merchant_refund_no": "R1"}
    a = merchant.call("POST", f"/v1/payments/{first['id']}/refunds", body, idempotency_key="refund-R1")
    b = merchant.call("POST", f"/v1/payments/{second['id']}/refunds", body, idempotency_key="refund-R1")
    assert a.status_code == 201 and a.json()["payment_id"] == first["id"]
    assert b.status_code == 422 and b.json()["error"]["code"] == "idempotency_key_reused"
    drain()


def test_a_request_rejected_as_invalid_does_not_consume_its_key(merchant):
    body = order_body()
    bad = merchant.call("POST", "/v1/payments", {**body, "amount": "ten"}, idempotency_key="fix-and-retry")
    assert bad.status_code == 400
    fixed = merchant.call("POST", "/v1/payments", body, idempotency_key="fix-and-retry")
    assert fixed.status_code == 201
    again = merchant.call("POST", "/v1/payments", body, idempotency_key="fix-and-retry")
    assert again.json() == fixed.json()


def test_a_refusal_after_work_started_is_replayed(merchant):
    body = order_body()
    assert merchant.call("POST", "/v1/payments", body).status_code == 201
    first = merchant.call("POST", "/v1/payments", body, idempotency_key="dup-order")
    again = merchant.call("POST", "/v1/payments", body, idempotency_key="dup-order")
    assert first.status_code == again.status_code == 409
    assert first.json()["error"]["code"] == again.json()["error"]["code"] == "duplicate_merchant_order_no"
