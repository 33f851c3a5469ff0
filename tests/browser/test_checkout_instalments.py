"""Instalments on the hosted checkout, in headless Chromium: the merchant's Huabei fee table makes the page offer
each term with what every instalment comes to and the fee; the payer picks 6 and Alipay, the Huabei parameters
reach Alipay's cashier, the payment carries the schedule, and the payer pays it."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from chalicelib.service import audit, instalments
from tests.browser.conftest import shot
from tests.browser.test_checkout_page import attempt_of, expect_paid, methods_on, new_session

pytestmark = pytest.mark.timeout(180)
HUABEI = {"channel": "alipay", "terms": [
    {"count": 3, "buyer_rate_bps": 230, "seller_rate_bps": 230, "minimum_minor": 10_000},
    {"count": 6, "buyer_rate_bps": 450, "seller_rate_bps": 450, "minimum_minor": 10_000},
    {"count": 12, "buyer_rate_bps": 750, "seller_rate_bps": 750, "minimum_minor": 100_000}]}


def test_the_payer_chooses_six_huabei_instalments_and_pays(stack, channel_account, merchant, phone):
    alipay = channel_account("alipay", account_id="alipay-inst", merchant_ids=(merchant.merchant_id,))
    instalments.put_table(audit.Actor("cli", "ops-test", "ops-test"), HUABEI, merchant_id=merchant.merchant_id)
    session = new_session(merchant, amount=60_000, description="Sofa, 3 seats",
                          allowed_methods=["wechat.native", "alipay.page"])
    page = phone.new_page()
    page.goto(session["url"])
    assert methods_on(page) == ["wechat.native", "alipay.page"]
    group = page.get_by_role("group", name="Huabei instalments (Alipay)")
    # 12 needs 1,000.00: not offered for 600.00. Each term: the instalments and the payer's fee in all.
    assert group.get_by_role("radio").count() == 3
    assert group.get_by_label("Pay in full").is_checked()
    six = group.get_by_label("6 instalments: 6 × ¥104.50 CNY, fee ¥27.00 CNY in all")
    three = group.get_by_label("3 instalments: 3 × ¥204.60 CNY, fee ¥13.80 CNY in all")
    assert three.is_visible() and six.is_visible()
    six.check()
    shot(page, "instalments")
    page.get_by_role("button", name="Alipay").click()
    page.locator("#continue").wait_for()
    assert "In 6 instalments: ¥627.00 CNY in all, fee ¥27.00 CNY included" in page.locator("#instalment-plan").inner_text()
    shot(page, "instalments-chosen")
    payment = attempt_of(merchant, session)
    assert (payment["instalments"]["count"], payment["instalments"]["buyer_fee"]) == (6, 2_700)
    signed = dict(parse_qsl(urlsplit(payment["action"]["url"]).query))
    assert json.loads(signed["biz_content"])["extend_params"] == {"hb_fq_num": "6", "hb_fq_seller_percent": "0"}
    page.locator("#continue").click()  # to Alipay's cashier, which now holds the Huabei terms
    order = requests.get(f"{alipay.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()["order"]
    assert (order["hb_fq_num"], order["hb_fq_seller_percent"]) == ("6", "0")
    page.get_by_role("button", name="确认付款 Pay").click()
    expect_paid(page)


def test_without_a_fee_table_nothing_is_offered(stack, channel_account, merchant, phone):
    channel_account("alipay", account_id="alipay-inst", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, amount=60_000, allowed_methods=["alipay.page"])
    page = phone.new_page()
    page.goto(session["url"])
    assert methods_on(page) == ["alipay.page"] and page.locator("fieldset.instalments").count() == 0


def test_card_instalments_chosen_before_the_card_fields_reach_the_consume(stack, channel_account, merchant, phone):
    account = channel_account("unionpay", account_id="unionpay-cards", merchant_ids=(merchant.merchant_id,))
    table = {"channel": "unionpay", "terms": [{"count": 6, "buyer_rate_bps": 360, "seller_rate_bps": 0,
                                               "minimum_minor": 10_000}]}
    instalments.put_table(audit.Actor("cli", "ops-test", "ops-test"), table, merchant_id=merchant.merchant_id)
    session = new_session(merchant, amount=30_000, allowed_methods=["unionpay.card"])
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("group", name="Card instalments (UnionPay)").get_by_label(
        "6 instalments: 6 × ¥51.80 CNY, fee ¥10.80 CNY in all").check()
    page.get_by_role("button", name="UnionPay card").click()
    page.get_by_label("Card number").fill("6225 8800 0000 0035")
    page.get_by_label("Expiry month").fill("06")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("Phone number registered with the card").fill("13700137000")
    page.get_by_role("button", name="Send code and pay").click()
    page.get_by_role("heading", name="Enter the SMS code").wait_for()
    payment = attempt_of(merchant, session)
    assert (payment["instalments"]["count"], payment["instalments"]["buyer_total"]) == (6, 31_080)
    code = requests.get(f"{account.sandbox_url}/_sandbox/sms/{payment['attempt_id']}", timeout=10).json()["code"]
    page.get_by_role("textbox", name="SMS code").fill(code)
    page.get_by_label("CVV (credit cards)").fill("456")
    page.get_by_role("button", name="Confirm payment").click()
    expect_paid(page)
    order = requests.get(f"{account.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).json()["order"]
    assert order["instalments"] == 6
