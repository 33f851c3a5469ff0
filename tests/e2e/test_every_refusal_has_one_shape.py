"""Inputs that used to reach a server error or be accepted though wrong, over HTTP: each is now a 4xx in the
hub's error shape, naming the field where there is one, and nothing is written."""

from __future__ import annotations

import uuid

import pytest
import requests


def order_body(**overrides):
    return {"merchant_order_no": f"o{uuid.uuid4().hex[:20]}", "amount": 500, "currency": "CNY",
            "description": "cup of tea", "method": "wechat.native", **overrides}


def assert_hub_error(response, status, param=None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) <= {"code", "message", "param", "request_id"} and error["code"] and error["request_id"]
    if param is not None:
        assert error.get("param") == param, response.text
    return error


def test_deeply_nested_json_is_a_400_not_a_recursion(merchant):
    deep = b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_hub_error(merchant.call("POST", "/v1/payments", raw=deep), 400)
    assert_hub_error(merchant.call("POST", "/v1/payments", raw=b'{"a":' * 40 + b"1" + b"}" * 40), 400)


@pytest.mark.parametrize(("field", "raw"), [
    ("description", b'"description": "tea \\ud800"'),
    ("metadata.k", b'"metadata": {"k": "\\udfff"}'),
    ("payer.city", b'"payer": {"city": "\\ud800x"}'),
])
def test_a_lone_surrogate_is_refused_naming_the_field_before_it_is_hashed(merchant, field, raw):
    body = (b'{"merchant_order_no": "o%s", "amount": 5, "currency": "CNY", "method": "wechat.native", '
            % uuid.uuid4().hex[:16].encode() + raw + b"}")
    if field != "description":
        body = body[:-1] + b', "description": "tea"}'
    assert_hub_error(merchant.call("POST", "/v1/payments", raw=body), 400, field)


def test_a_lone_surrogate_in_a_refund_reason_is_refused(merchant):
    payment = merchant.create_payment()
    body = b'{"amount": 1, "merchant_refund_no": "r1", "reason": "\\ud800"}'
    assert_hub_error(merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", raw=body), 400, "reason")


@pytest.mark.parametrize("overrides", [
    {"description": "tea\x00"}, {"description": "line\nbreak"}, {"metadata": {"k\x01": "v"}},
    {"metadata": {"k": "v\x7f"}}, {"payer": {"user_id": "u\x1b[31m"}},
])
def test_control_characters_are_refused_in_every_text_field(merchant, overrides):
    field = next(iter(overrides))
    error = assert_hub_error(merchant.call("POST", "/v1/payments", order_body(**overrides)), 400)
    assert error["param"].startswith(field)


@pytest.mark.parametrize("url", [
    "http://[::1/hook", "http://example.com:99999/hook", "http://exa mple.com/hook", "http://example.com:0/",
    "https://user:pw@example.com/", "ftp://example.com/", "http://[1:2:3:4:5:6:7:8:9]/", "http:///path",
])
@pytest.mark.parametrize("field", ["notify_url", "return_url"])
def test_malformed_urls_are_refused_naming_the_field(merchant, url, field):
    body = order_body(**{field: url})
    assert_hub_error(merchant.call("POST", "/v1/payments", body), 400, field)
    lookup = merchant.call("GET", f"/v1/payments?merchant_order_no={body['merchant_order_no']}")
    assert lookup.status_code == 404


def test_well_formed_urls_are_taken(merchant):
    payment = merchant.create_payment(notify_url="http://[::1]:8080/hook?x=1", return_url="https://shop.example/r#done")
    assert payment["notify_url"] == "http://[::1]:8080/hook?x=1"


def test_an_integral_number_is_an_integer_as_json_schema_says(merchant):
    payment = merchant.create_payment(amount=500.0)
    assert payment["amount"] == 500 and isinstance(payment["amount"], int)
    assert_hub_error(merchant.call("POST", "/v1/payments", order_body(amount=500.5)), 400, "amount")


def test_a_callback_for_an_unknown_channel_is_a_404_in_the_hub_shape(stack):
    response = requests.post(f"{stack.api_url}/callbacks/nochannel/x", data=b"{}",
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert_hub_error(response, 404, "channel")


def test_framework_answers_use_the_hub_shape(stack, merchant):
    auth = {"Authorization": f"Bearer {merchant.api_key}"}
    not_allowed = requests.delete(f"{stack.api_url}/v1/payments", headers=auth, timeout=10)
    assert_hub_error(not_allowed, 405)
    assert "POST" in not_allowed.headers["Allow"]
    assert_hub_error(requests.request("TRACE", f"{stack.api_url}/v1/payments", headers=auth, timeout=10), 405)
    unsupported = requests.post(f"{stack.api_url}/v1/payments", data=b"x", timeout=10,
                                headers={**auth, "Content-Type": "text/plain", "Idempotency-Key": "k"})
    assert_hub_error(unsupported, 415, "Content-Type")
    assert_hub_error(requests.get(f"{stack.api_url}/v1/nothing-here", headers=auth, timeout=10), 404)


def test_path_ids_no_object_can_have_are_404_before_any_lookup(merchant):
    assert_hub_error(merchant.call("GET", "/v1/payments/" + "p" * 2000), 404, "payment_id")
    assert_hub_error(merchant.call("GET", "/v1/refunds/%01x"), 404, "refund_id")


@pytest.mark.parametrize("limit", ["+5", " 5", "5.0", "٥", "0", "101", ""])
def test_limit_is_an_integer_written_in_ascii_digits(merchant, limit):
    assert_hub_error(merchant.call("GET", f"/v1/events?limit={requests.utils.quote(limit)}"), 400, "limit")
