"""The CMB sandbox's control API: what it refuses (naming the field) and what it lets a test make happen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from chalicelib.crypto.sm import sm2_generate_keypair
from sandbox.cmbbank.server import CMBBankSandbox


@pytest.fixture(scope="module")
def bank() -> Iterator[CMBBankSandbox]:
    sandbox = CMBBankSandbox()
    sandbox.start()
    yield sandbox
    sandbox.stop()


def call(bank: CMBBankSandbox, path: str, body: dict[str, Any], expect: int) -> dict[str, Any]:
    response = urllib3.request("POST", bank.base_url + path, json=body, timeout=10.0)
    assert response.status == expect, response.data
    return dict(response.json())


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/_sandbox/users", {"uid": "U 1", "public_key": "00", "accounts": []}, "uid"),
    ("/_sandbox/users", {"uid": "U1", "public_key": "00", "accounts": []}, "public_key"),
    ("/_sandbox/users", {"uid": "U1", "public_key": sm2_generate_keypair()[1], "accounts": []}, "accounts"),
    ("/_sandbox/users", {"uid": "U1", "public_key": sm2_generate_keypair()[1],
                         "accounts": [{"account_no": "1", "name": "x", "balance": 5}]}, "balance"),
    ("/_sandbox/credits", {"to": "1", "payer_account_no": "2", "payer_name": "p", "amount": "1.001"}, "amount"),
    ("/_sandbox/credits", {"payer_account_no": "2", "payer_name": "p", "amount": "1.00"}, "to"),
    ("/_sandbox/payee-faults", {"payee_account_no": "9", "outcome": "vanish", "reason": "r"}, "outcome"),
    ("/_sandbox/payee-faults", {"payee_account_no": "9", "outcome": "fail", "reason": "r", "count": 0}, "count"),
    ("/_sandbox/answer-faults", {"mode": "garble"}, "mode"),
])
def test_bad_control_input_is_a_400_naming_the_field(bank: CMBBankSandbox, path: str, body: dict[str, Any],
                                                     field: str) -> None:
    answer = call(bank, path, body, 400)
    assert answer["code"] == "PARAM_ERROR" and field in answer["message"]


def test_a_credit_to_an_unknown_account_and_a_return_of_an_unknown_payment_are_refused(bank: CMBBankSandbox) -> None:
    call(bank, "/_sandbox/users", {"uid": "U2", "public_key": sm2_generate_keypair()[1],
                                   "accounts": [{"account_no": "755900000000002", "name": "x", "balance": "1.00"}]}, 200)
    refused = call(bank, "/_sandbox/credits", {"to": "755900000000002" + "0000000009", "payer_account_no": "2",
                                               "payer_name": "p", "amount": "1.00"}, 409)
    assert refused["code"] == "ERR_ACCOUNT"
    booked = call(bank, "/_sandbox/credits", {"to": "755900000000002", "payer_account_no": "2", "payer_name": "p",
                                              "amount": "1.00", "postscript": "x"}, 200)
    assert (booked["seq"], booked["balance_after"], booked["dmanbr"]) == (1, "2.00", "")
    not_sent = call(bank, "/_sandbox/transfers/NOPE/return", {"account_no": "755900000000002", "reason": "r"}, 409)
    assert not_sent["code"] == "ERR_PARAM"
