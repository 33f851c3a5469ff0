"""Stripe on the hosted checkout, in headless Chromium: the page offers ``stripe.checkout`` and hands the payer to
Stripe's own hosted payment page (the sandbox's), with no Stripe script on the hub's page; the payer pays there and
is back at the hub, which shows the payment as paid; a payer who cancels at Stripe comes back to the same choice."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import shot
from tests.browser.test_checkout_page import attempt_of, expect_paid, methods_on, new_session

pytestmark = pytest.mark.timeout(180)


def scripts_on(page: Any) -> list[str]:
    return [s.get_attribute("src") or "(inline)" for s in page.locator("script").all()]


def test_stripe_through_its_hosted_page_to_success(stack, channel_account, merchant, phone):
    stripe = channel_account("stripe", account_id="stripe-page", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["stripe.checkout"], currency="USD", amount=1850,
                          cancel_url=None)
    page = phone.new_page()
    hub_requests: list[str] = []
    page.on("request", lambda r: hub_requests.append(r.url))
    page.goto(session["url"])
    assert methods_on(page) == ["stripe.checkout"]
    assert all(src.startswith("/checkout-assets/") for src in scripts_on(page))  # no js.stripe.com
    shot(page, "stripe-choose")
    page.get_by_role("button", name="Card (Stripe)").click()
    link = page.get_by_role("link", name="Continue to Card (Stripe)")
    assert re.fullmatch(rf"{re.escape(stripe.sandbox_url)}/c/pay/cs_test_\w+", link.get_attribute("href") or "")
    shot(page, "stripe-continue")
    link.click()
    page.get_by_role("heading", name=re.compile("^Pay ")).wait_for()  # Stripe's page, at the sandbox
    assert "18.50 USD" in page.content()
    page.get_by_role("button", name="Pay").click()
    expect_paid(page)  # back at the hub, which looked at the session on the payer's return
    shot(page, "stripe-paid")
    payment = attempt_of(merchant, session)
    assert (payment["status"], payment["amount_captured"]) == ("succeeded", 1850)
    session_id = str(payment["action"]["url"]).rsplit("/", 1)[-1]
    at_stripe = stripe.sandbox.checkout.for_payer(session_id)
    assert (at_stripe.status, at_stripe.payment_status) == ("complete", "paid")
    assert not [u for u in hub_requests if "stripe.com" in u]


def test_cancelling_at_stripe_comes_back_to_the_choice(stack, channel_account, merchant, phone):
    stripe = channel_account("stripe", account_id="stripe-page", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["stripe.checkout", "wechat.native"], currency="CNY",
                          amount=3300)
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="Card (Stripe)").click()
    page.get_by_role("link", name="Continue to Card (Stripe)").click()
    page.get_by_role("button", name="Cancel").click()  # the payer changes their mind on Stripe's page
    page.get_by_role("link", name="Use another method").click()
    page.get_by_role("button", name="WeChat Pay").click()
    page.get_by_role("heading", name="Scan the QR code with WeChat to pay").wait_for()
    attempts = merchant.get(f"/v1/checkout_sessions/{session['id']}")["attempts"]
    assert [a["method"] for a in attempts] == ["stripe.checkout", "wechat.native"]
    first = attempts[0]["attempt_id"]
    from chalicelib.storage import state_repo

    old = state_repo.get_attempt(first)
    assert old is not None and str(old.status) == "closed"
    session_id = str(old.channel_order_ref)
    assert stripe.sandbox.checkout.for_payer(session_id).status == "expired"  # closed at Stripe by the switch
