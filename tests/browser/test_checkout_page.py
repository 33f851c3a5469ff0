"""The hosted checkout as a payer uses it, in headless Chromium: each channel's method to success through the page,
a failure then a switch, expiry, the remembered method, the card fields, the keyboard, and both languages.

What happens on the payer's phone or at the channel's own pages is played as the payer would: QR codes are "scanned"
by telling the channel's sandbox the payer paid (as ``payhub sandbox pay`` does); redirect methods are followed in
the browser through the sandbox's cashier, approval or bank-check pages, and back to the hub."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import requests

from tests.browser.conftest import shot

pytestmark = pytest.mark.timeout(180)


def new_session(merchant: Any, **overrides: Any) -> dict[str, Any]:
    body = {"merchant_order_no": f"b{uuid.uuid4().hex[:20]}", "amount": 2600, "currency": "CNY",
            "description": "Oolong tea, 2 cups", "allowed_methods": ["wechat.native"],
            "return_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart",
            "support_contact": {"phone": "+86 400 820 8820", "email": "help@shop.example"}, **overrides}
    response = merchant.call("POST", "/v1/checkout_sessions", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def attempt_of(merchant: Any, session: dict[str, Any]) -> dict[str, Any]:
    return merchant.get(f"/v1/payments/{session['payment_id']}")


def scan_and_pay(channel_url: str, payment: dict[str, Any], result: str = "success", **extra: Any) -> None:
    """The payer's phone: the channel's app pays (or fails) the code the page showed."""
    body = {"out_trade_no": payment["attempt_id"], "result": result, "action": payment["action"], **extra}
    answer = requests.post(f"{channel_url}/_sandbox/pay", json=body, timeout=10)
    assert answer.status_code == 200, answer.text


def methods_on(page: Any) -> list[str]:
    return [b.get_attribute("value") for b in page.locator("button[name=method]").all()]


def expect_paid(page: Any, timeout_ms: int = 15_000) -> None:
    page.get_by_role("heading", name="Payment successful").wait_for(timeout=timeout_ms)


def test_wechat_native_qr_to_success_with_live_status(stack, merchant, phone):
    session = new_session(merchant, allowed_methods=["wechat.native"])
    page = phone.new_page()
    page.goto(session["url"])
    assert page.title().startswith("Checkout")
    shot(page, "choose")
    page.get_by_role("button", name="WeChat Pay").click()
    page.get_by_role("heading", name="Scan the QR code with WeChat to pay").wait_for()
    assert page.locator("figure[role=img] svg").count() == 1
    shot(page, "qr")
    scan_and_pay(stack.sandbox_url, attempt_of(merchant, session), mchid=None)
    expect_paid(page)  # no reload by the test: the page's own status polling redraws it
    assert page.get_by_role("link", name="Back to the shop").get_attribute("href") == "https://shop.example/thanks"
    shot(page, "paid")


@pytest.mark.parametrize(("channel", "method", "app"), [
    ("alipay", "alipay.qr", "Alipay"),
    ("ecny", "ecny.wallet", "the e-CNY app"),
    ("unionpay", "unionpay.quickpass", "the UnionPay app"),
])
def test_other_qr_methods_to_success(stack, channel_account, merchant, phone, channel, method, app):
    account = channel_account(channel, account_id=f"{channel}-page", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=[method])
    page = phone.new_page()
    page.goto(session["url"])
    page.locator(f"button[value='{method}']").click()
    page.get_by_role("heading", name=f"Scan the QR code with {app} to pay").wait_for()
    scan_and_pay(account.sandbox_url, attempt_of(merchant, session))
    expect_paid(page)


def test_alipay_page_through_the_cashier_and_back(stack, channel_account, merchant, phone):
    channel_account("alipay", account_id="alipay-page", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["alipay.page"])
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="Alipay").click()
    page.locator("#continue").wait_for()
    shot(page, "redirect")
    page.locator("#continue").click()
    page.get_by_role("button", name="确认付款 Pay").click()  # the channel's own cashier page
    expect_paid(page)  # the channel sent the payer back to the hub, which looked the payment up
    assert page.url.startswith(session["url"])


def test_unionpay_gateway_form_to_the_bank_and_back(stack, channel_account, merchant, phone):
    channel_account("unionpay", account_id="unionpay-page", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["unionpay.gateway"])
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="UnionPay online banking").click()
    page.locator("#channel-form button").click()  # a signed form posted to the channel
    page.get_by_role("button", name="支付 / Pay").click()
    expect_paid(page)


def test_paypal_approval_then_capture_on_return(stack, channel_account, merchant, phone):
    channel_account("paypal", account_id="paypal-page", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["paypal.wallet"], currency="USD", amount=1999)
    page = phone.new_page()
    page.goto(session["url"])
    assert "US$19.99" in page.content()
    page.get_by_role("button", name="PayPal").click()
    page.get_by_role("link", name="Continue to PayPal").click()
    page.get_by_role("button", name="Approve").click()
    expect_paid(page)  # back at the hub: the approval is captured at once
    assert attempt_of(merchant, session)["amount_captured"] == 1999


def test_unionpay_card_through_the_hubs_card_fields(stack, channel_account, merchant, phone):
    account = channel_account("unionpay", account_id="unionpay-cards", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["unionpay.card", "wechat.native"])
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="UnionPay card").click()
    page.get_by_label("Card number").fill("6225 8800 0000 0035")  # a credit card that pays without a challenge
    page.get_by_label("Expiry month").fill("06")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("Phone number registered with the card").fill("13700137000")
    shot(page, "card")
    page.get_by_role("button", name="Send code and pay").click()
    page.get_by_role("heading", name="Enter the SMS code").wait_for()
    payment = attempt_of(merchant, session)
    assert payment["card"]["last4"] == "0035" and "6225880000000035" not in str(payment)
    code = requests.get(f"{account.sandbox_url}/_sandbox/sms/{payment['attempt_id']}", timeout=10).json()["code"]
    page.get_by_role("textbox", name="SMS code").fill(code)
    page.get_by_label("CVV (credit cards)").fill("456")
    page.get_by_role("button", name="Confirm payment").click()
    expect_paid(page)  # no reload: whenever the bank's callback lands, the answer page or its polling shows it
    assert attempt_of(merchant, session)["status"] == "succeeded"


def test_a_bad_card_number_is_named_on_the_card_form(stack, channel_account, merchant, phone):
    channel_account("unionpay", account_id="unionpay-cards", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["unionpay.card"])
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="UnionPay card").click()
    page.get_by_label("Card number").fill("6225880000000036")  # fails the Luhn check
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("Phone number registered with the card").fill("13700137000")
    page.get_by_role("button", name="Send code and pay").click()
    page.get_by_role("alert").wait_for()
    assert "card.number" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Card number").get_attribute("aria-invalid") == "true"


def test_a_failure_then_a_switch_to_another_method(stack, channel_account, merchant, phone):
    alipay = channel_account("alipay", account_id="alipay-switch", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["wechat.native", "alipay.qr"])
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="WeChat Pay").click()
    page.get_by_role("heading", name="Scan the QR code with WeChat to pay").wait_for()
    first = attempt_of(merchant, session)
    scan_and_pay(stack.sandbox_url, first, result="fail")
    from chalicelib.service import status_sync

    status_sync.sync_attempt(first["attempt_id"])  # WeChat calls back on success only: the hub's query finds it
    page.get_by_role("heading", name="Payment not completed").wait_for(timeout=10_000)
    shot(page, "failed")
    page.get_by_role("button", name="Alipay QR").click()
    page.get_by_role("heading", name="Scan the QR code with Alipay to pay").wait_for()
    second = attempt_of(merchant, session)
    assert second["id"] == first["id"] and second["attempt_id"] != first["attempt_id"]
    scan_and_pay(alipay.sandbox_url, second)
    expect_paid(page)
    attempts = merchant.get(f"/v1/checkout_sessions/{session['id']}")["attempts"]
    assert [a["method"] for a in attempts] == ["wechat.native", "alipay.qr"]


def test_switching_while_a_code_is_shown(stack, channel_account, merchant, phone):
    alipay = channel_account("alipay", account_id="alipay-switch", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["wechat.native", "alipay.qr"])
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="WeChat Pay").click()
    page.get_by_role("link", name="Use another method").click()
    page.get_by_role("button", name="Alipay QR").click()
    page.get_by_role("heading", name="Scan the QR code with Alipay to pay").wait_for()
    scan_and_pay(alipay.sandbox_url, attempt_of(merchant, session))
    expect_paid(page)


def test_the_remembered_method_comes_first_next_time(stack, channel_account, merchant, phone):
    alipay = channel_account("alipay", account_id="alipay-remember", merchant_ids=(merchant.merchant_id,))
    payer = {"user_id": f"member-{uuid.uuid4().hex[:6]}"}
    methods = ["wechat.native", "alipay.qr"]
    page = phone.new_page()
    page.goto(new_session(merchant, allowed_methods=methods, payer=payer)["url"])
    assert methods_on(page) == methods
    page.get_by_label("Remember my choice for next time").check()
    page.get_by_role("button", name="Alipay QR").click()
    page.get_by_role("heading", name="Scan the QR code with Alipay to pay").wait_for()
    later = new_session(merchant, allowed_methods=methods, payer=payer)
    page.goto(later["url"])
    assert methods_on(page) == ["alipay.qr", "wechat.native"]
    assert "Last used" in page.get_by_role("button", name=re.compile("Alipay QR")).inner_text()
    shot(page, "remembered")
    page.get_by_role("button", name="Forget my saved method").click()
    page.get_by_role("status").filter(has_text="forgotten").wait_for()
    assert methods_on(page) == methods
    del alipay


def test_expiry_and_unknown_pages_in_the_payers_language(stack, browser, merchant):
    from chalicelib.checkout import sessions
    from chalicelib.storage import state_repo
    from chalicelib.storage.aws import client

    session = new_session(merchant, expires_in_seconds=60)
    for key in (sessions.session_key(session["id"]), {"pk": f"PAY#{session['payment_id']}", "sk": "PAYMENT"}):
        client("dynamodb").update_item(TableName=state_repo.state_table(),
                                       Key={"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}},
                                       UpdateExpression="SET expires_at = :p",
                                       ExpressionAttributeValues={":p": {"S": "2020-01-01T00:00:00.000Z"}})
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", device_scale_factor=1)
    page = context.new_page()
    page.goto(session["url"])
    page.get_by_role("heading", name="订单已过期").wait_for()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    shot(page, "expired-zh")
    tampered = session["url"][:-2] + ("xx" if not session["url"].endswith("xx") else "yy")
    answer = page.goto(tampered)
    assert answer is not None and answer.status == 404
    page.get_by_role("heading", name="找不到该收银台").wait_for()
    page.get_by_role("link", name="English").count()  # message pages carry no language switch: nothing to keep
    context.close()
    assert attempt_of(merchant, session)["status"] == "closed"


def test_keyboard_only_and_labelled_for_screen_readers(stack, merchant, phone):
    session = new_session(merchant, allowed_methods=["wechat.native", "unionpay.card"],
                          payer={"user_id": f"kb-{uuid.uuid4().hex[:6]}"})
    page = phone.new_page()
    page.goto(session["url"])
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), button')]
        .filter(e => !(e.labels && e.labels.length) && !e.textContent.trim()).length""")
    assert unlabelled == 0
    for _ in range(12):  # Tab until the first payment method has the focus, then Enter
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "method":
            break
    assert page.evaluate("document.activeElement.value") == "wechat.native"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Scan the QR code with WeChat to pay").wait_for()
    assert page.get_by_role("status").count() == 1  # the live region a screen reader announces
    assert page.get_by_role("img", name="Payment QR code").count() == 1


def test_chinese_page_and_the_page_weight(stack, browser, merchant):
    session = new_session(merchant, locale="zh-CN", allowed_methods=["wechat.native"])
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US", device_scale_factor=1)
    page = context.new_page()
    sizes: dict[str, int] = {}
    page.on("response", lambda r: sizes.__setitem__(r.url, len(r.body())) if r.ok else None)
    page.goto(session["url"])
    page.get_by_role("heading", name="选择支付方式").wait_for()  # the merchant's locale wins over the browser's
    shot(page, "choose-zh")
    from chalicelib.checkout.page import ASSET_VERSION

    assets = {f"{stack.api_url}/checkout-assets/checkout.{e}?v={ASSET_VERSION}" for e in ("css", "js")}
    assert set(sizes) == {session["url"], *assets}  # nothing else: no font, no third-party script
    assert sum(sizes.values()) < 100_000
    context.close()
