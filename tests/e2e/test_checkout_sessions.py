"""Checkout sessions over HTTP: validation naming the field, the hosted URL's key (unguessable, tamper-proof),
expiry, several attempts on one payment (switch, retry after a failure), at most one success under a race, and the
page's answers (HTML in the payer's language, CSP, CSRF)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any

import pytest
import requests

from tests.helpers import make_merchant, wait_for


def session_body(**overrides: Any) -> dict[str, Any]:
    return {"merchant_order_no": f"cs{uuid.uuid4().hex[:20]}", "amount": 2600, "currency": "CNY",
            "description": "Green tea", "allowed_methods": ["wechat.native"],
            "return_url": "https://shop.example/done", "cancel_url": "https://shop.example/cart",
            "payer": {"user_id": f"u-{uuid.uuid4().hex[:8]}"}, "locale": "en",
            "support_contact": {"email": "help@shop.example", "phone": "+86 400 000 0000"}, **overrides}


def create(merchant: Any, **overrides: Any) -> dict[str, Any]:
    response = merchant.call("POST", "/v1/checkout_sessions", session_body(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


class Payer:
    """A browser without script: GETs the page, keeps its cookie, posts its forms."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.origin = re.match(r"https?://[^/]+", url).group(0)  # type: ignore[union-attr]

    def page(self, suffix: str = "", **kw: Any) -> requests.Response:
        return self.http.get(self.url + suffix, timeout=30, **kw)

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.page("?choose=1").text)
        assert found, "the page has no form"
        return found.group(1)

    def post(self, action: str, form: dict[str, str], *, csrf: str | None = None,
             origin: str | None = None) -> requests.Response:
        token = csrf if csrf is not None else self.csrf()
        return self.http.post(f"{self.url}/{action}", data={"csrf": token, **form}, allow_redirects=False,
                              headers={"Origin": origin or self.origin}, timeout=30)

    def choose(self, method: str, **form: str) -> requests.Response:
        answer = self.post("pay", {"method": method, **form})
        assert answer.status_code == 303, answer.text
        return answer


@pytest.mark.parametrize(("change", "param"), [
    ({"amount": 0}, "amount"),
    ({"currency": "XYZ"}, "currency"),
    ({"allowed_methods": []}, "allowed_methods"),
    ({"allowed_methods": ["wechat.native", "wechat.miniprogram"]}, "allowed_methods.1"),
    ({"allowed_methods": ["wechat.native", "wechat.native"]}, "allowed_methods"),
    ({"return_url": "javascript:alert(1)"}, "return_url"),
    ({"expires_in_seconds": 10}, "expires_in_seconds"),
    ({"locale": "fr"}, "locale"),
    ({"payer": {"user_id": "u", "shoe_size": 42}}, "payer.shoe_size"),
    ({"support_contact": {"email": "not an email"}}, "support_contact.email"),
])
def test_a_bad_session_request_is_refused_naming_the_field(merchant, change, param):
    response = merchant.call("POST", "/v1/checkout_sessions", session_body(**change))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_a_session_is_a_payment_with_an_unguessable_url(stack, merchant):
    session = create(merchant)
    assert session["status"] == "pending" and session["payment"]["id"] == session["payment_id"]
    match = re.fullmatch(rf"{re.escape(stack.api_url)}/checkout/(cs_[a-z2-7]{{24}})/([A-Za-z0-9_-]{{22}})",
                         session["url"])
    assert match and match.group(1) == session["id"]
    read = merchant.get(f"/v1/checkout_sessions/{session['id']}")
    assert "url" not in read and read["support_ref"] == session["support_ref"] and read["attempts"] == []
    # the merchant_order_no is taken by the session's payment, as by any payment
    again = merchant.call("POST", "/v1/checkout_sessions", session_body(merchant_order_no=session["merchant_order_no"]))
    assert again.status_code == 409 and again.json()["error"]["param"] == "merchant_order_no"
    page = requests.get(session["url"], timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Green tea" in page.text and "¥26.00" in page.text and session["support_ref"] in page.text
    assert "help@shop.example" in page.text


def test_a_tampered_or_unknown_url_shows_a_page_not_json(stack, merchant):
    session = create(merchant)
    sid, key = session["url"].rsplit("/", 2)[-2:]
    flipped = key[:-1] + ("A" if key[-1] != "A" else "B")
    other = create(make_merchant(stack))
    other_key = other["url"].rsplit("/", 1)[-1]
    for url in (f"{stack.api_url}/checkout/{sid}/{flipped}", f"{stack.api_url}/checkout/{sid}/{other_key}",
                f"{stack.api_url}/checkout/cs_{'a' * 24}/{key}", f"{stack.api_url}/checkout/nonsense/{key}"):
        for lang, title in (("en-US,en;q=0.9", "Checkout not found"), ("zh-CN,zh;q=0.9", "找不到该收银台")):
            page = requests.get(url, headers={"Accept-Language": lang}, timeout=30)
            assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html"), url
            assert title in page.text and "Traceback" not in page.text and "{" not in page.text
    status = requests.get(f"{stack.api_url}/checkout/{sid}/{flipped}/status", timeout=30)
    assert status.status_code == 404 and status.json() == {"state": "unknown"}


def test_the_page_is_locked_down(merchant):
    session = create(merchant)
    page = requests.get(session["url"], timeout=30)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in page.text and " style=" not in page.text and "onclick" not in page.text
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and f"Path=/checkout/{session['id']}/" in cookie
    weight = len(page.content) + sum(len(requests.get(f"{session['url'].split('/checkout/')[0]}/checkout-assets/{n}",
                                                       timeout=30).content) for n in ("checkout.css", "checkout.js"))
    assert weight < 100_000


def test_a_post_without_the_pages_token_or_from_another_origin_is_refused(merchant):
    session = create(merchant)
    payer = Payer(session["url"])
    token = payer.csrf()
    forged = requests.post(f"{session['url']}/pay", data={"csrf": token, "method": "wechat.native"},
                           allow_redirects=False, timeout=30)  # a request without the page's cookie
    assert forged.status_code == 403 and "This form has expired" in forged.text
    cross = payer.post("pay", {"method": "wechat.native"}, origin="https://evil.example")
    assert cross.status_code == 403
    wrong = payer.post("pay", {"method": "wechat.native"}, csrf="x" * 43)
    assert wrong.status_code == 403
    assert merchant.get(f"/v1/checkout_sessions/{session['id']}")["attempts"] == []


def pay_at_wechat_sandbox(stack: Any, attempt_id: str, result: str = "success") -> None:
    answer = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": attempt_id, "result": result},
                           timeout=10)
    assert answer.status_code == 200, answer.text


def test_qr_then_paid_then_the_page_says_so(stack, merchant):
    session = create(merchant)
    payer = Payer(session["url"])
    payer.choose("wechat.native")
    page = payer.page()
    assert "<svg" in page.text and "Scan the QR code with WeChat" in page.text
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["method"] == "wechat.native" and payment["action"]["type"] == "qr_code"
    assert payer.page("/status").json()["state"] == "in_progress"
    pay_at_wechat_sandbox(stack, payment["attempt_id"])
    wait_for(lambda: payer.page("/status").json()["state"] == "paid")
    done = payer.page()
    assert "Payment successful" in done.text and "https://shop.example/done" in done.text
    assert 'name="method"' not in payer.page("?choose=1").text  # a paid session offers nothing more
    token = payer.http.cookies.get("payhub_csrf")
    again = payer.post("pay", {"method": "wechat.native"}, csrf=token)  # nor takes a new attempt
    assert again.status_code == 303
    read = merchant.get(f"/v1/checkout_sessions/{session['id']}")
    assert read["status"] == "succeeded" and len(read["attempts"]) == 1


def test_a_failure_then_a_retry_is_a_new_attempt_on_the_same_payment(stack, merchant):
    session = create(merchant)
    payer = Payer(session["url"])
    payer.choose("wechat.native")
    first = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    pay_at_wechat_sandbox(stack, first, result="fail")
    from chalicelib.service import status_sync

    status_sync.sync_attempt(first)  # WeChat calls back only on success: the hub's query finds the failure
    wait_for(lambda: payer.page("/status").json()["state"] == "failed_attempt")
    page = payer.page()
    assert "Payment not completed" in page.text and 'value="wechat.native"' in page.text
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["status"] == "pending"
    payer.choose("wechat.native")
    second = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    assert second != first
    pay_at_wechat_sandbox(stack, second)
    paid = wait_for(lambda: (p := merchant.get(f"/v1/payments/{session['payment_id']}"))["status"] == "succeeded"
                    and p)
    assert paid["attempt_id"] == second and paid["amount_captured"] == 2600
    attempts = merchant.get(f"/v1/checkout_sessions/{session['id']}")["attempts"]
    assert [a["attempt_id"] for a in attempts] == [first, second]


def test_switching_closes_the_first_attempt_at_its_channel(stack, merchant):
    from chalicelib.storage import state_repo

    session = create(merchant)
    payer = Payer(session["url"])
    payer.choose("wechat.native")
    first = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    payer.choose("wechat.native")  # the payer asks for a fresh code: the old one is closed first
    second = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    assert second != first
    old = state_repo.get_attempt(first)
    assert old is not None and str(old.status) == "closed" and old.raw_status == "SWITCHED"
    late = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": first}, timeout=10)
    assert late.status_code != 200  # closed at the channel: the old code can no longer be paid


@pytest.mark.parametrize("policy", ["refund", "accept"])
def test_a_late_success_on_a_switched_attempt_follows_the_merchants_policy(stack, policy, drain):
    """The channel's close raced the payer: money arrives on an attempt already closed by a switch."""
    from chalicelib.channels.base import PaymentOutcome, PaymentStatus
    from chalicelib.domain.money import Money
    from chalicelib.service.outcomes import apply_attempt_status

    merchant = make_merchant(stack, late_success_policy=policy)
    session = create(merchant)
    payer = Payer(session["url"])
    payer.choose("wechat.native")
    first = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    payer.choose("wechat.native")
    apply_attempt_status(first, PaymentStatus(PaymentOutcome.SUCCEEDED, raw_status="SUCCESS",
                                              amount=Money(2600, "CNY")), source="test:late_callback")
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["amount_captured"] == 2600
    if policy == "accept":
        assert payment["status"] == "succeeded" and payment["amount_refund_pending"] == 0
    else:
        assert payment["status"] == "pending" and payment["amount_refund_pending"] == 2600
    drain()


def test_at_most_one_attempt_succeeds_when_the_payer_pays_while_switching(stack, merchant, drain):
    """The payer pays the old code on a phone while a second tab switches: whichever the channel takes first,
    the payment keeps one success; anything more goes back (double or late success)."""
    for _ in range(3):
        session = create(merchant)
        payer = Payer(session["url"])
        payer.choose("wechat.native")
        first = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
        csrf = payer.csrf()
        results: list[Any] = []
        switch = threading.Thread(target=lambda: results.append(
            payer.post("pay", {"method": "wechat.native"}, csrf=csrf)))
        switch.start()
        requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": first}, timeout=10)
        switch.join()
        current = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
        if current != first:
            requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": current}, timeout=10)
        payment = wait_for(lambda: (p := merchant.get(f"/v1/payments/{session['payment_id']}"))["status"]
                           == "succeeded" and p, timeout_s=15)
        time.sleep(0.3)  # a second callback, if any, lands
        payment = merchant.get(f"/v1/payments/{session['payment_id']}")
        kept = payment["amount_captured"] - payment["amount_refund_pending"] - payment["amount_refunded"]
        assert kept == 2600, payment
    drain()


def test_an_expired_session_shows_the_expiry_page_and_closes_its_payment(stack, merchant, drain):
    from chalicelib.checkout import sessions
    from chalicelib.storage import state_repo

    session = create(merchant, expires_in_seconds=60)
    item = state_repo.get_item(sessions.session_key(session["id"]))
    assert item is not None
    past = "2020-01-01T00:00:00.000Z"
    from chalicelib.storage.aws import client

    for key in (sessions.session_key(session["id"]), {"pk": f"PAY#{session['payment_id']}", "sk": "PAYMENT"}):
        client("dynamodb").update_item(TableName=state_repo.state_table(),
                                       Key={"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}},
                                       UpdateExpression="SET expires_at = :p", ExpressionAttributeValues={":p": {"S": past}})
    page = requests.get(session["url"], headers={"Accept-Language": "zh-CN"}, timeout=30)
    assert page.status_code == 410 and "This checkout has expired" in page.text  # the session's locale: en
    assert 'href="https://shop.example/cart"' in page.text
    zh = requests.get(session["url"] + "?lang=zh-CN", timeout=30)
    assert "订单已过期" in zh.text
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["status"] == "closed"
    refused = Payer(session["url"])
    assert refused.page().status_code == 410
    drain()


def test_the_remembered_method_comes_first_and_can_be_forgotten(stack, channel_account, merchant):
    channel_account("alipay", account_id="alipay-checkout", merchant_ids=(merchant.merchant_id,))
    user = {"user_id": f"u-{uuid.uuid4().hex[:8]}"}
    methods = ["wechat.native", "alipay.qr"]
    first = Payer(create(merchant, payer=user, allowed_methods=methods)["url"])
    order = re.findall(r'name="method" value="([^"]+)"', first.page().text)
    assert order == methods and "remember" in first.page().text
    first.choose("alipay.qr", remember="1")
    second = Payer(create(merchant, payer=user, allowed_methods=methods)["url"])
    page = second.page().text
    assert re.findall(r'name="method" value="([^"]+)"', page) == ["alipay.qr", "wechat.native"]
    assert "Last used" in page
    stranger = Payer(create(merchant, allowed_methods=methods)["url"])  # no payer id: nothing remembered
    assert re.findall(r'name="method" value="([^"]+)"', stranger.page().text) == methods
    forget = second.post("forget", {})
    assert forget.status_code == 303 and "notice=forgotten" in forget.headers["Location"]
    third = Payer(create(merchant, payer=user, allowed_methods=methods)["url"])
    assert re.findall(r'name="method" value="([^"]+)"', third.page().text) == methods


def test_after_a_failure_the_next_method_routing_offers_comes_first(stack, channel_account, merchant):
    channel_account("alipay", account_id="alipay-next", merchant_ids=(merchant.merchant_id,))
    session = create(merchant, allowed_methods=["wechat.native", "alipay.qr"])
    payer = Payer(session["url"])
    before = payer.page().text
    assert re.findall(r'name="method" value="([^"]+)"', before) == ["wechat.native", "alipay.qr"]
    assert "Try this instead" not in before
    payer.choose("wechat.native")
    first = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    pay_at_wechat_sandbox(stack, first, result="fail")
    from chalicelib.service import status_sync

    status_sync.sync_attempt(first)
    wait_for(lambda: payer.page("/status").json()["state"] == "failed_attempt")
    page = payer.page().text
    # Another channel than the one that just failed is offered first, marked; the failed method stays to retry.
    assert re.findall(r'name="method" value="([^"]+)"', page) == ["alipay.qr", "wechat.native"]
    assert 'value="alipay.qr" class="method" data-method="alipay.qr">' in page and "Try this instead" in page


def test_not_remembered_without_the_payers_consent(stack, merchant):
    user = {"user_id": f"u-{uuid.uuid4().hex[:8]}"}
    first = Payer(create(merchant, payer=user, allowed_methods=["wechat.native"])["url"])
    first.choose("wechat.native")  # no "remember" ticked
    from chalicelib.checkout import remembered

    assert remembered.last_method(merchant.merchant_id, user["user_id"]) is None


def test_a_method_without_an_account_is_not_offered(stack, merchant):
    session = create(merchant, allowed_methods=["paypal.wallet", "wechat.native"], currency="CNY")
    page = requests.get(session["url"], timeout=30).text
    assert re.findall(r'name="method" value="([^"]+)"', page) == ["wechat.native"]
    payer = Payer(session["url"])
    refused = payer.post("pay", {"method": "paypal.wallet"})
    assert refused.status_code == 303 and "error=method_unavailable" in refused.headers["Location"]
    assert "not available right now" in payer.page("?error=method_unavailable").text


def test_an_operator_finds_a_session_by_its_support_reference(stack, merchant, capsys):
    import json

    from payhub_cli.main import main as payhub

    session = create(merchant)
    payer = Payer(session["url"])
    payer.choose("wechat.native")
    payer.choose("wechat.native")
    assert payhub(["checkout", "lookup", session["support_ref"].lower()]) == 0  # read out over the phone
    found = json.loads(capsys.readouterr().out)
    assert found["id"] == session["id"] and found["merchant_id"] == merchant.merchant_id
    assert [a["status"] for a in found["attempts"]] == ["closed", "pending"]
    assert found["attempts"][0]["raw_status"] == "SWITCHED" and found["support_contact"]["email"] == "help@shop.example"
    assert payhub(["checkout", "lookup", "ZZZZZ-ZZZZZ"]) == 1
    assert "no checkout session" in capsys.readouterr().err


def test_make_run_prints_a_working_checkout_url_for_the_demo_merchant(stack, merchant):
    from chalicelib.storage import config_repo
    from infra.local.run import demo_checkout_url

    url = demo_checkout_url(config_repo.get_merchant(merchant.merchant_id), ["wechatpay"])
    page = requests.get(url, timeout=30)
    assert page.status_code == 200 and re.findall(r'name="method" value="([^"]+)"', page.text) == ["wechat.native"]
