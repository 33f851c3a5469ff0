"""Request bodies: every invalid field is named in the pydantic error's loc (the edge turns it into ``param``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from chalicelib.service.inputs import CreatePaymentInput, CreateRefundInput


def payment_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"merchant_order_no": "order_2024-0001", "amount": 8888, "currency": "CNY",
                            "description": "T-shirt", "method": "wechat.native"}
    body.update(overrides)
    return body


def locs(model: type[BaseModel], body: dict[str, Any]) -> list[tuple[Any, ...]]:
    # The edge does json.loads then model_validate; go through JSON so the types are the ones a request has.
    with pytest.raises(ValidationError) as exc:
        model.model_validate(json.loads(json.dumps(body)))
    return [tuple(err["loc"]) for err in exc.value.errors()]


def test_minimal_valid_payment_and_defaults() -> None:
    parsed = CreatePaymentInput.model_validate(payment_body())
    assert parsed.amount == 8888 and parsed.currency == "CNY"
    assert parsed.expires_in_seconds == 7200 and parsed.metadata == {} and parsed.payer.openid is None
    assert parsed.notify_url is None and parsed.return_url is None


def test_full_valid_payment() -> None:
    parsed = CreatePaymentInput.model_validate(payment_body(
        currency="JPY", method="wechat.jsapi", payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "ip": "::1"},
        notify_url="https://merchant.example.com/hook", return_url="http://merchant.example.com/back",
        expires_in_seconds=60, metadata={f"k{i}": "v" * 500 for i in range(20)}, merchant_order_no="a|b*c-d_e"))
    assert parsed.payer.openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" and len(parsed.metadata) == 20


@pytest.mark.parametrize(("field", "value", "loc"), [
    ("amount", "10", ("amount",)),  # strict: no string coercion
    ("amount", 10.5, ("amount",)),
    ("amount", True, ("amount",)),
    ("amount", 0, ("amount",)),
    ("amount", -1, ("amount",)),
    ("amount", 10**12 + 1, ("amount",)),
    ("amount", None, ("amount",)),
    ("currency", "cny", ("currency",)),
    ("currency", "XXX", ("currency",)),
    ("currency", "", ("currency",)),
    ("currency", 156, ("currency",)),
    ("method", "wechat", ("method",)),
    ("method", "WeChat.native", ("method",)),
    ("method", "wechat.native.extra", ("method",)),
    ("method", "wechat.native\n", ("method",)),
    ("merchant_order_no", "", ("merchant_order_no",)),
    ("merchant_order_no", "x" * 33, ("merchant_order_no",)),
    ("merchant_order_no", "has space", ("merchant_order_no",)),
    ("merchant_order_no", "订单1", ("merchant_order_no",)),
    ("merchant_order_no", "order1\n", ("merchant_order_no",)),
    ("merchant_order_no", 12345, ("merchant_order_no",)),
    ("description", "", ("description",)),
    ("description", "x" * 128, ("description",)),
    ("payer", {"openid": 12345}, ("payer", "openid")),
    ("payer", {"openid": "o" * 129}, ("payer", "openid")),
    ("payer", {"ip": "1" * 46}, ("payer", "ip")),
    ("payer", {"unknown": "x"}, ("payer", "unknown")),
    ("payer", "openid", ("payer",)),
    ("notify_url", "ftp://merchant.example.com", ("notify_url",)),
    ("notify_url", "merchant.example.com/hook", ("notify_url",)),
    ("notify_url", "https://x/" + "a" * 510, ("notify_url",)),
    ("return_url", "javascript:alert(1)", ("return_url",)),
    ("expires_in_seconds", 59, ("expires_in_seconds",)),
    ("expires_in_seconds", 7 * 24 * 3600 + 1, ("expires_in_seconds",)),
    ("expires_in_seconds", "120", ("expires_in_seconds",)),
    ("metadata", {f"k{i}": "v" for i in range(21)}, ("metadata",)),
    ("metadata", {"k": "v" * 501}, ("metadata", "k")),
    ("metadata", {"k": 1}, ("metadata", "k")),
    ("metadata", ["k", "v"], ("metadata",)),
    ("refund_url", "https://x", ("refund_url",)),  # extra field
])
def test_invalid_payment_field_named_in_loc(field: str, value: Any, loc: tuple[Any, ...]) -> None:
    assert locs(CreatePaymentInput, payment_body(**{field: value})) == [loc]


def test_metadata_key_too_long_names_the_key() -> None:
    key = "k" * 65
    assert locs(CreatePaymentInput, payment_body(metadata={key: "v"})) == [("metadata", key, "[key]")]


def test_metadata_empty_key_refused() -> None:
    assert locs(CreatePaymentInput, payment_body(metadata={"": "v"})) == [("metadata", "", "[key]")]


@pytest.mark.parametrize("missing", ["merchant_order_no", "amount", "currency", "description", "method"])
def test_required_payment_fields(missing: str) -> None:
    body = payment_body()
    del body[missing]
    assert locs(CreatePaymentInput, body) == [(missing,)]


def test_every_bad_field_is_reported() -> None:
    found = locs(CreatePaymentInput, payment_body(amount="1", currency="XYZ", method="x", extra=1))
    assert sorted(found) == [("amount",), ("currency",), ("extra",), ("method",)]


@given(amount=st.integers(min_value=1, max_value=10**12))
def test_any_amount_in_range_accepted(amount: int) -> None:
    assert CreatePaymentInput.model_validate(payment_body(amount=amount)).amount == amount


@given(text=st.from_regex(r"\A[A-Za-z0-9_\-|*]{1,32}\Z"))
def test_any_merchant_order_no_of_the_allowed_alphabet_accepted(text: str) -> None:
    assert CreatePaymentInput.model_validate(payment_body(merchant_order_no=text)).merchant_order_no == text


# An integral float in range (5.0) is the integer it spells, as in JSON Schema; any other float is refused.
NOT_AN_AMOUNT_FLOAT = st.floats(allow_nan=False).filter(lambda f: not (f.is_integer() and 0 < f <= 10**12))


@given(amount=st.one_of(st.text(max_size=5), NOT_AN_AMOUNT_FLOAT, st.booleans(), st.none(),
                        st.integers(max_value=0), st.integers(min_value=10**12 + 1)))
def test_any_non_positive_int_or_non_int_amount_refused(amount: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        CreatePaymentInput.model_validate(payment_body(amount=amount))
    assert [tuple(e["loc"]) for e in exc.value.errors()] == [("amount",)]


# --- Refunds ---------------------------------------------------------------------------------------------


def test_valid_refund() -> None:
    parsed = CreateRefundInput.model_validate({"amount": 100, "merchant_refund_no": "r@1", "reason": "size"})
    assert parsed.amount == 100 and parsed.reason == "size"
    assert CreateRefundInput.model_validate({"amount": 1, "merchant_refund_no": "r"}).reason is None


@pytest.mark.parametrize(("field", "value"), [
    ("amount", "100"), ("amount", 0), ("amount", 1.5), ("amount", False),
    ("merchant_refund_no", ""), ("merchant_refund_no", "r" * 65), ("merchant_refund_no", "r 1"),
    ("reason", "x" * 81), ("reason", 5), ("currency", "CNY"),
])
def test_invalid_refund_field_named_in_loc(field: str, value: Any) -> None:
    body = {"amount": 100, "merchant_refund_no": "r-1", field: value}
    assert locs(CreateRefundInput, body) == [(field,)]
