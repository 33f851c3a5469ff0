"""docs/design.md#security: no card number, CVV or SMS code in any log line or error body, with the hub logging at DEBUG.

A card payment runs through the API (rejected card, create, wrong code, right code, replayed confirm, callback,
workers) with every record of the hub's loggers captured and rendered the way Lambda writes them (JSON, with
``extra`` fields and tracebacks). The AWS SDK loggers stay at the level the hub gives them in Lambda.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator

import pytest

from chalicelib.config.settings import settings
from chalicelib.domain.money import Money
from chalicelib.observability import JsonFormatter
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item
from tests.e2e.test_cards_and_confirmation import CVV, PAN, card, confirm, order
from tests.fakes.card_channel import BOOK
from tests.fakes.registration import register

BAD_PAN = PAN[:-1] + "6"  # fails its check digit
HUB_LOGGERS = ("", "chalicelib", "functions", "infra", "tests.fakes", "payhub", "payhub-payments", "payhub-callbacks")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    capture = Capture()
    saved = {name: logging.getLogger(name).level for name in HUB_LOGGERS}
    for name in HUB_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
        logging.getLogger(name).addHandler(capture)
    yield capture
    for name, level in saved.items():
        logging.getLogger(name).removeHandler(capture)
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def cardtest(stack, monkeypatch):
    yield from register(monkeypatch, stack.api_url)


def exposed(text: str, secret: str) -> bool:
    """The secret as a token of its own (digits inside longer ids or hex strings are not it)."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None


def test_no_card_number_cvv_or_sms_code_in_logs_or_error_bodies(stack, merchant, cardtest, drain, debug_logs):
    bodies: list[str] = []

    def call(response):
        bodies.append(response.text)
        return response

    rejected = call(merchant.call("POST", "/v1/payments", order(card=card(number=BAD_PAN))))
    assert rejected.status_code == 400 and rejected.json()["error"]["param"] == "card.number"
    assert call(merchant.call("POST", "/v1/payments", order(card=card(cvv="12")))).status_code == 400

    wrong_code_payment = call(merchant.call("POST", "/v1/payments", order())).json()
    wrong_code = "975310" if BOOK.order(wrong_code_payment["attempt_id"]).sms_code != "975310" else "864209"
    refused = call(confirm(merchant, wrong_code_payment["id"], {"sms_code": wrong_code, "cvv": CVV}))
    assert refused.json()["status"] == "failed"

    payment = call(merchant.call("POST", "/v1/payments", order(amount=3100))).json()
    code = BOOK.order(payment["attempt_id"]).sms_code
    assert code is not None
    first = call(confirm(merchant, payment["id"], {"sms_code": code, "cvv": CVV}, idempotency_key="c-1"))
    replay = call(confirm(merchant, payment["id"], {"sms_code": code, "cvv": CVV}, idempotency_key="c-1"))
    assert first.status_code == replay.status_code == 200 and first.json() == replay.json()
    other_body = call(confirm(merchant, payment["id"], {"sms_code": wrong_code}, idempotency_key="c-1"))
    assert other_body.status_code == 422
    BOOK.set_status(payment["attempt_id"], "paid")
    assert cardtest.callback(payment["attempt_id"], "succeeded", Money(3100, "CNY")).status_code == 200
    drain()
    call(merchant.call("GET", f"/v1/payments/{payment['id']}"))
    call(merchant.call("GET", "/v1/events"))

    logged = "\n".join(debug_logs.lines)
    assert "pending -> processing" in logged and "callback" in logged  # the hub did log at DEBUG/INFO
    idempotency_records = [str(from_item(item)) for page in client("dynamodb").get_paginator("scan").paginate(
        TableName=settings().names.idempotency_table) for item in page["Items"]
        if item["pk"]["S"].startswith(merchant.merchant_id)]
    assert idempotency_records
    for where, text in (("logs", logged), ("responses", "\n".join(bodies)),
                        ("idempotency records", "\n".join(idempotency_records))):
        for secret in (PAN, BAD_PAN, PAN[:12], PAN[4:], base64.b64encode(PAN.encode()).decode()):
            assert secret not in text, f"card number in {where}"
        for secret, name in ((CVV, "CVV"), (code, "SMS code"), (wrong_code, "SMS code"), ("13800138000", "phone"),
                             ("110101199003077777", "id number")):
            assert not exposed(text, secret), f"{name} in {where}"
