"""What must not loop forever: a refund the channel cannot express (refused at the API with nothing reserved, and
failed, reservation released, should one reach the worker), and a callback about an object the hub never issued
or a chargeback (acknowledged and raised for a person, nothing applied), while money under an id of the hub's own
shape that has no record is an orphan, adopted and refunded."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
import requests

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.ids import new_id
from chalicelib.domain.money import Money
from chalicelib.storage import config_repo, ledger_repo, records, state_repo
from tests.fakes.card_channel import BOOK, WALLET_METHOD, FakeCardChannel
from tests.fakes.registration import register
from tests.helpers import wait_for


@pytest.fixture
def cardtest(stack, monkeypatch):
    yield from register(monkeypatch, stack.api_url)


def paid_wallet_payment(merchant, amount: int) -> dict[str, Any]:
    """A cardtest wallet payment the payer approved and the merchant's confirm captured."""
    payment = merchant.create_payment(method=WALLET_METHOD, amount=amount, currency="CNY")
    BOOK.set_status(payment["attempt_id"], "approved")
    confirmed = merchant.call("POST", f"/v1/payments/{payment['id']}/confirm", {})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "succeeded", confirmed.text
    return payment


def ask_refund(merchant, payment: dict[str, Any], amount: int, number: str) -> requests.Response:
    return merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": amount, "merchant_refund_no": number})


def assert_nothing_reserved(payment: dict[str, Any], refundable: int, number: str) -> None:
    stored = state_repo.get_payment(payment["id"])
    assert stored is not None
    assert (stored.amount_refundable, stored.amount_refund_pending, stored.amount_refunded) == (refundable, 0, 0)
    assert state_repo.get_item(records.refund_no_key(payment["id"], number)) is None  # the number is still free


def alerts(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "alert", None) == name]


# --- refunds the channel cannot express -------------------------------------------------------------------------


def test_paypal_refund_in_cents_of_twd_is_refused_with_nothing_reserved(stack, channel_account, merchant, drain):
    paypal = channel_account("paypal")
    payment = merchant.create_payment(method="paypal.wallet", amount=10000, currency="TWD", description="tea",
                                      return_url="https://shop.example/return")
    approved = requests.post(f"{paypal.sandbox_url}/_sandbox/pay", json={"out_trade_no": payment["attempt_id"],
                                                                           "result": "success"}, timeout=10)
    assert approved.status_code == 200, approved.text

    def succeeded() -> bool:
        drain()  # the status-sync worker captures what the payer approved
        return merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded"

    wait_for(succeeded, timeout_s=20, every_s=0.1)
    refused = ask_refund(merchant, payment, 1050, "r-cents")  # 10.50 TWD: PayPal takes whole TWD only
    assert refused.status_code == 400, refused.text
    assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == ("invalid_request", "amount")
    assert_nothing_reserved(payment, 10000, "r-cents")
    whole = ask_refund(merchant, payment, 1000, "r-cents")  # the same number, a whole amount: taken and paid
    assert whole.status_code == 201, whole.text
    drain()
    wait_for(lambda: merchant.get(f"/v1/refunds/{whole.json()['id']}")["status"] == "succeeded", timeout_s=15)


def test_stripe_refund_of_thousandths_is_refused_with_nothing_reserved(stack, channel_account, merchant):
    stripe = channel_account("stripe")
    assert stripe.account_id
    payment = merchant.create_payment(method="stripe.card", amount=1240, currency="KWD", payment_method="pm_card_visa",
                                      return_url="https://shop.example/return")
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    refused = ask_refund(merchant, payment, 1235, "r-kwd")  # 1.235 KWD: Stripe needs the last digit to be 0
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "amount", refused.text
    assert_nothing_reserved(payment, 1240, "r-kwd")


def test_an_amount_the_adapter_will_not_send_fails_the_refund_and_releases_it(stack, merchant, cardtest, drain,
                                                                               monkeypatch):
    payment = paid_wallet_payment(merchant, 900)
    sent: list[str] = []

    def unsendable(self: FakeCardChannel, account: Any, request: Any) -> Any:
        sent.append(request.refund_id)
        raise InvalidRequest("the channel cannot express this amount", param="amount")

    monkeypatch.setattr(FakeCardChannel, "refund", unsendable)
    created = ask_refund(merchant, payment, 300, f"r{uuid.uuid4().hex[:8]}")
    assert created.status_code == 201, created.text
    refund_id = created.json()["id"]
    assert state_repo.get_payment(payment["id"]).amount_refund_pending == 300  # type: ignore[union-attr]
    drain()  # the refund worker: the adapter's refusal is an answer, not an error to redeliver
    refund = state_repo.get_refund(refund_id)
    assert refund is not None and (refund.status, refund.failure_reason) == ("failed", "INVALID_AMOUNT")
    assert sent == [refund_id]
    stored = state_repo.get_payment(payment["id"])
    assert stored is not None and (stored.amount_refundable, stored.amount_refund_pending) == (900, 0)
    item = state_repo.get_item(records.refund_key(refund_id))
    assert item is not None and "sync_due_at" not in item  # status sync will not resubmit it
    assert ledger_repo.journals_for(refund_id) == []
    events = [e["type"] for e in merchant.get("/v1/events")["data"] if e["data"].get("id") == refund_id]
    assert events == ["refund.failed"]
    assert wait_for(lambda: stack.receiver.types_for(refund_id) == ["refund.failed"])


# --- callbacks about objects the hub does not hold ------------------------------------------------------------


def test_a_hub_shaped_id_with_no_record_is_an_orphan_adopted_for_refund(stack, cardtest, caplog, published_metrics):
    """Every create is recorded before the channel hears its id, so money under an unrecorded id of the hub's shape is
    nobody's: acknowledged (no retry loop), alerted, and adopted into a closed placeholder whose success is refunded."""
    orphan = new_id("att")
    with caplog.at_level(logging.WARNING):
        reply = cardtest.callback(orphan, "succeeded", Money(100, "CNY"))
    assert reply.status_code == 200
    assert not alerts(caplog, "callback_business_mismatch")
    assert [r.attempt_id for r in alerts(caplog, "orphan_money")] == [orphan]  # type: ignore[attr-defined]
    assert published_metrics.values("PayHub/Alerts", "orphan_money", Stage="local") == [1]  # what the alarm watches
    attempt = state_repo.get_attempt(orphan)
    assert attempt is not None and attempt.status == "succeeded" and attempt.merchant_id == "hub_orphans"
    payment = state_repo.get_payment(attempt.payment_id)
    assert payment is not None and payment.status == "closed" and payment.amount_refund_pending == 100
    assert len(ledger_repo.journals_for(orphan)) == 1  # the capture is journaled; the refund follows when it settles


@pytest.mark.parametrize("object_id", ["8MC585209K746392H", "att_short", "re_" + "a" * 24, "pi_3OabcDEF"])
def test_an_id_the_hub_never_issues_is_acknowledged_and_alerted(stack, cardtest, caplog, object_id):
    with caplog.at_level(logging.WARNING):
        reply = cardtest.callback(object_id, "succeeded", Money(100, "CNY"))
    assert reply.status_code == 200
    raised = alerts(caplog, "callback_business_mismatch")
    assert [r.object_id for r in raised] == [object_id]  # type: ignore[attr-defined]
    assert raised[0].levelno == logging.ERROR and raised[0].getMessage().startswith("ALERT")


def test_a_chargeback_is_acknowledged_alerted_and_changes_nothing(stack, merchant, cardtest, drain, caplog,
                                                                 published_metrics):
    payment = paid_wallet_payment(merchant, 1500)
    drain()
    before = state_repo.get_payment(payment["id"])
    with caplog.at_level(logging.WARNING):
        reply = cardtest.callback(payment["attempt_id"], "failed", Money(1500, "CNY"), alert="chargeback")
    assert reply.status_code == 200
    raised = alerts(caplog, "chargeback")
    assert len(raised) == 1 and raised[0].levelno == logging.ERROR and raised[0].getMessage().startswith("ALERT")
    assert published_metrics.values("PayHub/Alerts", "chargeback", Stage="local") == [1]
    assert state_repo.get_payment(payment["id"]) == before
    drain()
    assert [e["type"] for e in merchant.get("/v1/events")["data"] if e["data"].get("id") == payment["id"]] == [
        "payment.succeeded"]


def test_a_paypal_reversal_reaches_a_person_and_is_not_retried(stack, channel_account, merchant, drain, caplog):
    paypal = channel_account("paypal")
    account = config_repo.channel_account(paypal.account_id)
    assert account is not None
    with caplog.at_level(logging.WARNING):
        event_id = paypal.sandbox.webhooks.emit(
            account.secrets.get("client_id").reveal(), "PAYMENT.CAPTURE.REVERSED", "refund", "A capture was reversed",
            {"id": "4LW54262KS8431914", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "7.00"},
             "payer": {"merchant_id": account.config.settings["merchant_id"]}},
            order_id="5O190127TN364715T", attempt_id="reversal-probe")
        delivered = wait_for(lambda: [d for d in requests.get(
            f"{paypal.sandbox_url}/_sandbox/deliveries", params={"out_trade_no": "reversal-probe"}, timeout=10,
        ).json()["attempts"] if d["event_type"] == "PAYMENT.CAPTURE.REVERSED"], timeout_s=15)
    assert [d["delivered"] for d in delivered] == [True]  # acknowledged the first time: PayPal stops retrying
    raised = alerts(caplog, "chargeback")
    assert len(raised) == 1 and raised[0].object_id == "4LW54262KS8431914"  # type: ignore[attr-defined]
    assert event_id and raised[0].event_id == event_id  # type: ignore[attr-defined]
