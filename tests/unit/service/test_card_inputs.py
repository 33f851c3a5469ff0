"""The card and confirmation inputs: each bad field is named (``card.number``), and no error repeats the input."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.clock import utcnow
from chalicelib.service.inputs import ConfirmPaymentInput, CreatePaymentInput
from tests.unit.service.test_inputs import locs, payment_body

PAN = "6212345678901265"


def card(**overrides: Any) -> dict[str, Any]:
    return {"number": PAN, "exp_month": 12, "exp_year": date.today().year + 3, "cvv": "123", "holder_name": "张三",
            "phone": "13800138000", "id_type": "01", "id_number": "110101199003077777", **overrides}


def test_a_full_card_and_a_payment_method_token_are_accepted() -> None:
    parsed = CreatePaymentInput.model_validate(payment_body(method="unionpay.card", card=card()))
    assert parsed.card is not None and parsed.card.number == PAN and parsed.card.cvv == "123"
    minimal = CreatePaymentInput.model_validate(payment_body(method="unionpay.card", card={
        "number": PAN, "exp_month": 1, "exp_year": 2099}))
    assert minimal.card is not None and minimal.card.cvv is None
    token = CreatePaymentInput.model_validate(payment_body(method="stripe.card", payment_method="pm_card_visa"))
    assert token.payment_method == "pm_card_visa" and token.card is None


def test_the_current_month_has_not_expired() -> None:
    today = utcnow().date()
    CreatePaymentInput.model_validate(payment_body(method="unionpay.card", card=card(exp_month=today.month, exp_year=today.year)))


@pytest.mark.parametrize(("overrides", "loc"), [
    ({"number": "6212345678901266"}, ("card", "number")),  # Luhn
    ({"number": "62123456789"}, ("card", "number")),  # 11 digits
    ({"number": "62123456789012650000"}, ("card", "number")),  # 20 digits
    ({"number": "6212 3456 7890 1265"}, ("card", "number")),
    ({"number": 6212345678901265}, ("card", "number")),
    ({"exp_month": 0}, ("card", "exp_month")),
    ({"exp_month": 13}, ("card", "exp_month")),
    ({"exp_month": "12"}, ("card", "exp_month")),
    ({"exp_year": 31}, ("card", "exp_year")),
    ({"exp_year": 20311}, ("card", "exp_year")),
    ({"exp_year": 2020}, ("card", "exp_year")),  # expired
    ({"exp_year": date.today().year - 1, "exp_month": 12}, ("card", "exp_year")),
    ({"cvv": "12"}, ("card", "cvv")),
    ({"cvv": "12345"}, ("card", "cvv")),
    ({"cvv": 123}, ("card", "cvv")),
    ({"phone": "+86 138"}, ("card", "phone")),
    ({"holder_name": ""}, ("card", "holder_name")),
    ({"id_type": "01-x"}, ("card", "id_type")),
    ({"id_number": "1101 0119"}, ("card", "id_number")),
    ({"pin": "000000"}, ("card", "pin")),
])
def test_each_bad_card_field_is_named(overrides: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert locs(CreatePaymentInput, payment_body(method="unionpay.card", card=card(**overrides))) == [loc]


def test_missing_card_fields_and_a_card_that_is_not_an_object() -> None:
    for missing in ("number", "exp_month", "exp_year"):
        body = card()
        del body[missing]
        assert locs(CreatePaymentInput, payment_body(method="unionpay.card", card=body)) == [("card", missing)]
    assert locs(CreatePaymentInput, payment_body(method="unionpay.card", card=PAN)) == [("card",)]


def test_bad_payment_method_token() -> None:
    assert locs(CreatePaymentInput, payment_body(payment_method="pm card")) == [("payment_method",)]
    assert locs(CreatePaymentInput, payment_body(payment_method="")) == [("payment_method",)]


def test_errors_and_reprs_never_show_the_card() -> None:
    with pytest.raises(ValidationError) as exc:
        CreatePaymentInput.model_validate(payment_body(method="unionpay.card", card=card(number="6212345678901266", cvv="12")))
    text = str(exc.value) + json.dumps([{k: e[k] for k in ("loc", "msg")} for e in exc.value.errors()])
    assert "6212345678901266" not in text and "'12'" not in text
    parsed = CreatePaymentInput.model_validate(payment_body(method="unionpay.card", card=card()))
    for shown in (repr(parsed), str(parsed), repr(parsed.card)):
        assert PAN not in shown and "123" not in shown and "13800138000" not in shown


def test_confirm_input() -> None:
    assert ConfirmPaymentInput.model_validate({"sms_code": "123456"}).sms_code == "123456"
    assert ConfirmPaymentInput.model_validate({}).sms_code is None
    assert ConfirmPaymentInput.model_validate({"cvv": "1234"}).cvv == "1234"
    assert "123456" not in repr(ConfirmPaymentInput.model_validate({"sms_code": "123456"}))


@pytest.mark.parametrize(("body", "loc"), [
    ({"sms_code": "123"}, ("sms_code",)), ({"sms_code": "123456789"}, ("sms_code",)),
    ({"sms_code": 123456}, ("sms_code",)), ({"sms_code": "12a456"}, ("sms_code",)),
    ({"cvv": "1"}, ("cvv",)), ({"password": "x"}, ("password",)),
])
def test_bad_confirm_fields_are_named(body: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert locs(ConfirmPaymentInput, body) == [loc]
