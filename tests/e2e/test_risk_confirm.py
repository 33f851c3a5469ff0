"""Risk on the confirm step and on card payments held at create: the card comes back from the vault after the
payer steps up (the fake ``cardtest`` card channel)."""

from __future__ import annotations

import uuid

from tests.e2e.test_cards_and_confirmation import CVV, cardtest, confirm, order  # noqa: F401 - fixture
from tests.e2e.test_risk import providers, rule, rules, user  # noqa: F401 - fixture
from tests.fakes.card_channel import BOOK


def _pass_sms(merchant, box, payment_id: str, **extra: str) -> dict:
    phone = f"+86135{uuid.uuid4().int % 10**8:08d}"
    started = merchant.call("POST", f"/v1/payments/{payment_id}/step_up", {"method": "sms", "phone": phone})
    assert started.status_code == 200, started.text
    passed = merchant.call("POST", f"/v1/payments/{payment_id}/step_up/verify", {"code": box.codes_for(phone)[-1], **extra})
    assert passed.status_code == 200, passed.text
    return dict(passed.json())


def test_confirm_challenged_waits_for_step_up_then_goes_through(stack, merchant, cardtest, providers):  # noqa: F811
    rules({"rules": [rule("confirm-big", "operation == 'confirm' && amount >= 3131", "challenge", step_up=["sms"],
                          operations=["confirm"])]}, providers)
    created = merchant.call("POST", "/v1/payments", order(amount=3131, payer=user()))
    assert created.status_code == 201 and created.json()["status"] == "pending"
    payment = created.json()
    code = BOOK.order(payment["attempt_id"]).sms_code
    refused = confirm(merchant, payment["id"], {"sms_code": code, "cvv": CVV})
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "step_up_required"
    assert BOOK.order(payment["attempt_id"]).confirmed_with == []  # the channel was not asked
    waiting = merchant.get(f"/v1/payments/{payment['id']}")
    assert waiting["status"] == "pending" and waiting["step_up"]["operation"] == "confirm"
    passed = _pass_sms(merchant, providers, payment["id"])
    assert passed["status"] == "pending" and passed["step_up"]["status"] == "passed"
    confirmed = confirm(merchant, payment["id"], {"sms_code": code, "cvv": CVV})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "processing"


def test_a_card_payment_held_at_create_reaches_the_channel_with_its_vaulted_card(stack, merchant, cardtest,  # noqa: F811
                                                                                 providers):  # noqa: F811
    rules({"rules": [rule("card-big", "amount >= 7070", "challenge", step_up=["sms"])]}, providers)
    created = merchant.call("POST", "/v1/payments", order(amount=7070, payer=user()))
    assert created.status_code == 201, created.text
    held = created.json()
    assert held["status"] == "requires_step_up" and held["card"]["last4"] == "1265"
    passed = _pass_sms(merchant, providers, held["id"], cvv=CVV)
    assert passed["status"] == "pending"
    assert passed["action"]["type"] == "sms_verification"  # the channel took the order with the card
    code = BOOK.order(held["attempt_id"]).sms_code
    assert confirm(merchant, held["id"], {"sms_code": code, "cvv": CVV}).json()["status"] == "processing"


def test_a_merchant_confirm_for_a_method_without_one_is_refused_before_risk_control(stack, merchant,
                                                                                    providers):  # noqa: F811
    """A WeChat QR payment has nothing to confirm: a confirm rule must not hold it for a step-up (the payer may be
    paying it in WeChat meanwhile), and no decision is recorded for a confirmation that cannot happen."""
    from chalicelib.risk import operations
    from tests.e2e.test_checkout_sessions import pay_at_wechat_sandbox
    from tests.helpers import wait_for

    rules({"rules": [rule("any-confirm", "amount >= 1", "challenge", step_up=["sms"], operations=["confirm"])]},
          providers)
    payment = merchant.create_payment(amount=4255, payer=user())
    assert payment["status"] == "pending"
    refused = confirm(merchant, payment["id"], {"sms_code": "123456"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "invalid_state"
    assert refused.json()["error"]["param"] == "payment_id"
    assert "wechat.native has no confirmation step" in refused.json()["error"]["message"]
    stored = merchant.get(f"/v1/payments/{payment['id']}")
    assert stored["status"] == "pending" and stored.get("step_up") is None
    assert [d for d in operations.payment_risk(payment["id"])["decisions"] if d["operation"] == "confirm"] == []
    pay_at_wechat_sandbox(stack, payment["attempt_id"])
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
