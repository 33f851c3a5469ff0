"""Card payments and the confirmation step, over the local stack with the fake ``cardtest`` channel.

card → vault → sms_verification → confirm → processing → success; REQUIRES_CONFIRMATION completed by the
status-sync worker exactly once however the news arrives; a crash after the channel confirmed is repaired by
status sync; offline settlement is credited on a closed payment.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.ledger import merchant_payable_account
from chalicelib.domain.money import Money
from chalicelib.service import confirmation
from chalicelib.storage import ledger_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from tests.fakes.card_channel import BOOK, CARD_METHOD, WALLET_METHOD
from tests.fakes.registration import register
from tests.helpers import make_merchant, wait_for

PAN = "6212345678901265"
CVV = "9081"


@pytest.fixture
def cardtest(stack, monkeypatch):
    yield from register(monkeypatch, stack.api_url)


def card(**overrides: Any) -> dict[str, Any]:
    return {"number": PAN, "exp_month": 12, "exp_year": date.today().year + 2, "cvv": CVV, "holder_name": "Li Lei",
            "phone": "13800138000", "id_type": "01", "id_number": "110101199003077777", **overrides}


def order(amount: int = 1000, **overrides: Any) -> dict[str, Any]:
    return {"merchant_order_no": f"o{uuid.uuid4().hex[:20]}", "amount": amount, "currency": "CNY",
            "description": "card order", "method": CARD_METHOD, "card": card(), **overrides}


def create(merchant, **overrides: Any) -> dict[str, Any]:
    response = merchant.call("POST", "/v1/payments", order(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


def confirm(merchant, payment_id: str, body: dict[str, Any], **options: Any):
    return merchant.call("POST", f"/v1/payments/{payment_id}/confirm", body, **options)


def card_items() -> list[dict[str, Any]]:
    pages = client("dynamodb").get_paginator("scan").paginate(
        TableName=state_repo.state_table(), FilterExpression="begins_with(pk, :card)",
        ExpressionAttributeValues={":card": {"S": "CARD#"}})
    return [item for page in pages for item in page["Items"]]


def events_for(merchant, payment_id: str) -> list[str]:
    return [e["type"] for e in merchant.get("/v1/events")["data"] if e["data"].get("id") == payment_id]


def make_sync_due(attempt_id: str) -> None:
    client("dynamodb").update_item(
        TableName=state_repo.state_table(), Key=to_item(records.attempt_key(attempt_id)),
        UpdateExpression="SET sync_due_at = :past",
        ExpressionAttributeValues={":past": {"S": iso(utcnow() - timedelta(seconds=1))}})


# --- card → SMS → confirm → processing → success --------------------------------------------------------------


def test_card_payment_goes_through_sms_confirmation_to_success(stack, merchant, cardtest, drain):
    payment = create(merchant, amount=2500)
    assert payment["status"] == "pending"
    assert payment["action"] == {"type": "sms_verification", "phone_masked": "138****8000"}
    summary = payment["card"]
    assert (summary["brand"], summary["last4"], summary["exp_month"]) == ("unionpay", "1265", 12)
    assert summary["token"].startswith("card_") and summary["fingerprint"].startswith("fp_")

    # The vault record, written with the payment: the number only encrypted, the CVV nowhere.
    item = state_repo.get_item(records.card_key(summary["token"]))
    assert item is not None and item["merchant_id"] == merchant.merchant_id
    stored = json.dumps(item)
    assert PAN not in stored and CVV not in stored and "13800138000" not in stored
    attempt = state_repo.get_attempt(payment["attempt_id"])
    assert attempt is not None and attempt.card_token == summary["token"]

    code = BOOK.order(payment["attempt_id"]).sms_code
    confirmed = confirm(merchant, payment["id"], {"sms_code": code, "cvv": CVV})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "processing" and confirmed.json()["action"] is None
    # The channel got the card back from the vault, with the CVV the payer typed again.
    assert BOOK.order(payment["attempt_id"]).confirmed_with == [(PAN, CVV)]

    BOOK.set_status(payment["attempt_id"], "paid")
    assert cardtest.callback(payment["attempt_id"], "succeeded", Money(2500, "CNY")).status_code == 200
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"
    drain()
    assert events_for(merchant, payment["id"]) == ["payment.succeeded"]
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == -2500
    late = confirm(merchant, payment["id"], {"sms_code": code})
    assert late.status_code == 409 and late.json()["error"]["code"] == "invalid_state"


def test_the_same_card_gets_the_same_fingerprint_for_the_merchant(stack, merchant, cardtest):
    first, second = create(merchant), create(merchant, card=card(cvv="123", exp_year=date.today().year + 4))
    other = create(merchant, card=card(number="4111111111111111"))
    assert first["card"]["fingerprint"] == second["card"]["fingerprint"] != other["card"]["fingerprint"]
    assert first["card"]["token"] != second["card"]["token"]
    someone_else = create(make_merchant(stack))
    assert someone_else["card"]["fingerprint"] != first["card"]["fingerprint"]


def test_a_wrong_sms_code_fails_the_attempt_with_the_channels_reason(stack, merchant, cardtest, drain):
    payment = create(merchant)
    response = confirm(merchant, payment["id"], {"sms_code": "000000" if BOOK.order(payment["attempt_id"]).sms_code
                                                 != "000000" else "111111", "cvv": CVV})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["failure_reason"]) == ("failed", "SMS_CODE_INVALID")
    assert state_repo.get_attempt(payment["attempt_id"]).status == "failed"  # type: ignore[union-attr]
    drain()
    assert events_for(merchant, payment["id"]) == ["payment.failed"]


def test_a_retryable_channel_error_changes_nothing_and_the_key_can_be_retried(stack, merchant, cardtest):
    payment = create(merchant)
    before = state_repo.get_payment(payment["id"])
    BOOK.confirm_faults.append(ChannelError("timed out", channel_code="TIMEOUT", retryable=True))
    body = {"sms_code": BOOK.order(payment["attempt_id"]).sms_code, "cvv": CVV}
    failed = confirm(merchant, payment["id"], body, idempotency_key="confirm-once")
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "channel_unavailable"
    assert failed.headers["Retry-After"] == "2"
    assert state_repo.get_payment(payment["id"]) == before
    assert state_repo.get_attempt(payment["attempt_id"]).status == "pending"  # type: ignore[union-attr]
    retried = confirm(merchant, payment["id"], body, idempotency_key="confirm-once")
    assert retried.status_code == 200 and retried.json()["status"] == "processing"


def test_card_rules_per_method_and_nothing_half_written(stack, merchant, cardtest, monkeypatch):
    before = len(card_items())
    missing = merchant.call("POST", "/v1/payments", order(card=None))
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "card"
    unwanted = merchant.call("POST", "/v1/payments", order(method=WALLET_METHOD))
    assert unwanted.status_code == 400 and unwanted.json()["error"]["param"] == "card"
    luhn = merchant.call("POST", "/v1/payments", order(card=card(number="6212345678901266")))
    assert luhn.status_code == 400 and luhn.json()["error"]["param"] == "card.number"
    expired = merchant.call("POST", "/v1/payments", order(card=card(exp_year=2020)))
    assert expired.status_code == 400 and expired.json()["error"]["param"] == "card.exp_year"
    # Two creates race on one merchant_order_no: the loser writes nothing, its card included.
    body = order()
    assert merchant.call("POST", "/v1/payments", body).status_code == 201
    monkeypatch.setattr(state_repo, "payment_id_for_order_no", lambda *_: None)  # the loser passed the pre-check
    lost = merchant.call("POST", "/v1/payments", body)
    assert lost.status_code == 409 and lost.json()["error"]["code"] == "duplicate_merchant_order_no"
    assert len(card_items()) == before + 1


def test_confirm_is_only_for_the_open_payments_current_attempt(stack, merchant, cardtest):
    payment = create(merchant)
    assert merchant.call("POST", f"/v1/payments/{payment['id']}/close").json()["status"] == "closed"
    closed = confirm(merchant, payment["id"], {"sms_code": "123456"})
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "invalid_state"
    assert confirm(merchant, "pay_missing", {}).status_code == 404
    theirs = create(make_merchant(stack))
    assert confirm(merchant, theirs["id"], {"sms_code": "123456"}).status_code == 404
    bad = confirm(merchant, theirs["id"], {"sms_code": "12"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "sms_code"
    assert BOOK.order(theirs["attempt_id"]).confirm_calls == 0


# --- REQUIRES_CONFIRMATION: the hub completes what the payer approved --------------------------------------------


def test_approval_reported_by_callback_is_captured_by_status_sync(stack, merchant, cardtest, drain):
    payment = create(merchant, method=WALLET_METHOD, card=None, amount=700)
    assert payment["action"]["type"] == "redirect_url"
    BOOK.set_status(payment["attempt_id"], "approved")  # the payer approved at the channel
    assert cardtest.callback(payment["attempt_id"], "requires_confirmation", Money(700, "CNY")).status_code == 200
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "processing"
    command = state_repo.get_item(records.event_key(_command_id(payment["attempt_id"])))
    assert command is not None and command["topic"] == "status-sync"
    drain()
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"
    fake = BOOK.order(payment["attempt_id"])
    assert (fake.captures, fake.confirm_calls) == (1, 1)
    assert events_for(merchant, payment["id"]) == ["payment.succeeded"]


def test_duplicate_callbacks_and_concurrent_confirms_capture_and_credit_once(stack, merchant, cardtest, drain):
    payment = create(merchant, method=WALLET_METHOD, card=None, amount=1234)
    attempt_id = payment["attempt_id"]
    BOOK.set_status(attempt_id, "approved")
    barrier = threading.Barrier(12)
    answers: list[int] = []

    def callback(event_id: str) -> None:
        barrier.wait()
        answers.append(cardtest.callback(attempt_id, "requires_confirmation", Money(1234, "CNY"),
                                         event_id=event_id).status_code)

    def merchant_confirm() -> None:  # the payer came back from the redirect: the merchant confirms
        barrier.wait()
        answers.append(confirm(merchant, payment["id"], {}).status_code)

    def worker() -> None:
        barrier.wait()
        drain()

    threads = [threading.Thread(target=callback, args=(event_id,)) for event_id in ("ev_a", "ev_a", "ev_a", "ev_b")]
    threads += [threading.Thread(target=merchant_confirm) for _ in range(6)]
    threads += [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    drain()
    assert answers.count(200) + answers.count(409) == len(answers) == 10
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"
    assert BOOK.order(attempt_id).captures == 1
    assert len(ledger_repo.journals_for(attempt_id)) == 1
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == -1234
    assert events_for(merchant, payment["id"]) == ["payment.succeeded"]
    assert wait_for(lambda: stack.receiver.types_for(payment["id"]) == ["payment.succeeded"])


def test_a_crash_after_the_channel_confirmed_is_repaired_by_status_sync(stack, merchant, cardtest, drain, monkeypatch):
    payment = create(merchant, method=WALLET_METHOD, card=None, amount=880)
    BOOK.set_status(payment["attempt_id"], "approved")

    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("simulated: the Lambda died before recording the capture")

    monkeypatch.setattr(confirmation, "apply_attempt_status", crash)
    crashed = confirm(merchant, payment["id"], {})
    assert crashed.status_code == 500
    assert BOOK.order(payment["attempt_id"]).status == "paid"  # the channel took the money...
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "pending"  # ...we did not record it
    monkeypatch.undo()
    make_sync_due(payment["attempt_id"])
    drain()
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"
    assert BOOK.order(payment["attempt_id"]).captures == 1
    assert len(ledger_repo.journals_for(payment["attempt_id"])) == 1


# --- settled offline ------------------------------------------------------------------------------------------


def test_offline_settlement_is_credited_on_a_closed_payment_even_under_the_refund_policy(stack, cardtest, drain):
    merchant = make_merchant(stack, late_success_policy="refund")
    payment = create(merchant, method=WALLET_METHOD, card=None, amount=4200)
    assert merchant.call("POST", f"/v1/payments/{payment['id']}/close").json()["status"] == "closed"
    reply = cardtest.callback(payment["attempt_id"], "succeeded", Money(4200, "CNY"), settled_offline=True)
    assert reply.status_code == 200
    after = merchant.get(f"/v1/payments/{payment['id']}")
    assert (after["status"], after["amount_captured"], after["amount_refund_pending"]) == ("succeeded", 4200, 0)
    assert ledger_repo.balance(merchant_payable_account(merchant.merchant_id, "CNY")) == -4200
    audits, _ = state_repo.query("pk = :pk", {":pk": f"AUDIT#{payment['attempt_id']}"})
    credited = [a for a in audits if a["reason"] == "settled_offline_credited"]
    assert len(credited) == 1 and credited[0]["payment_from"] == "closed" and credited[0]["settled_offline"] is True
    assert "late_success_policy=refund" in credited[0]["note"]
    drain()
    assert events_for(merchant, payment["id"]) == ["payment.succeeded", "payment.closed"]


def _command_id(attempt_id: str) -> str:
    from chalicelib.domain.ids import event_id
    from chalicelib.service.outcomes import CONFIRM_COMMAND

    return event_id(attempt_id, CONFIRM_COMMAND)


# --- the vaulted card lives only while a confirmation can need it ------------------------------------------------


def card_held(payment: dict[str, Any]) -> bool:
    return state_repo.get_item(records.card_key(payment["card"]["token"])) is not None


def test_the_card_is_deleted_when_the_attempt_succeeds(stack, merchant, cardtest, drain):
    payment = create(merchant, amount=1800)
    code = BOOK.order(payment["attempt_id"]).sms_code
    assert confirm(merchant, payment["id"], {"sms_code": code, "cvv": CVV}).json()["status"] == "processing"
    assert card_held(payment)  # processing is not final: a confirmation could still need it
    BOOK.set_status(payment["attempt_id"], "paid")
    assert cardtest.callback(payment["attempt_id"], "succeeded", Money(1800, "CNY")).status_code == 200
    assert merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"
    assert not card_held(payment)
    late = confirm(merchant, payment["id"], {"sms_code": code, "cvv": CVV})
    assert late.status_code == 409 and late.json()["error"]["code"] == "invalid_state"


def test_the_card_is_deleted_when_the_attempt_fails(stack, merchant, cardtest):
    payment = create(merchant)
    wrong = "000000" if BOOK.order(payment["attempt_id"]).sms_code != "000000" else "111111"
    assert confirm(merchant, payment["id"], {"sms_code": wrong, "cvv": CVV}).json()["status"] == "failed"
    assert not card_held(payment)
    again = confirm(merchant, payment["id"], {"sms_code": BOOK.order(payment["attempt_id"]).sms_code, "cvv": CVV})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert BOOK.order(payment["attempt_id"]).confirm_calls == 1


def test_the_card_is_deleted_on_close_and_a_later_transition_still_applies(stack, cardtest, drain):
    merchant = make_merchant(stack, late_success_policy="refund")
    payment, other = create(merchant, amount=650), create(merchant)
    assert merchant.call("POST", f"/v1/payments/{payment['id']}/close").json()["status"] == "closed"
    assert not card_held(payment) and card_held(other)  # only the closed attempt's card goes
    closed = confirm(merchant, payment["id"], {"sms_code": "123456", "cvv": CVV})
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "invalid_state"
    # Paid at the channel after all: the late success is still recorded (its card delete finds nothing, harmlessly).
    assert cardtest.callback(payment["attempt_id"], "succeeded", Money(650, "CNY")).status_code == 200
    attempt = state_repo.get_attempt(payment["attempt_id"])
    assert attempt is not None and attempt.status == "succeeded"
    assert state_repo.get_payment(payment["id"]).amount_refund_pending == 650  # type: ignore[union-attr]
