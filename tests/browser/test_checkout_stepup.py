"""Step-up on the hosted checkout page, in headless Chromium: a risky payment is confirmed with the device's platform
authenticator (a DevTools virtual authenticator: ``WebAuthn.enable`` / ``WebAuthn.addVirtualAuthenticator``) or an
SMS code read from the SMS provider's sandbox, and is then paid; a cancelled authenticator charges nothing; a
blocked payer sees the refusal. The channel's books (the WeChat Pay sandbox's ledger) say what was charged.

Browsers refuse WebAuthn on an IP address, and the test stack's base URL is ``http://127.0.0.1:<port>``: the page
is opened at ``http://localhost:<port>`` (the same server; http is a secure context on localhost only), the rule
document names that origin for WebAuthn, and the page's POSTs have their Origin header restated as the hub's base
URL, which is what it would be were the hub served at localhost (the CSRF token check is unchanged).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import pytest
import requests

from tests.browser.conftest import shot
from tests.e2e.test_checkout_sessions import create
from tests.e2e.test_risk import providers, rule, rules, user  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(240)
RUNS = int(os.environ.get("PAYHUB_BROWSER_RUNS", "3"))  # bench/risk_browser.py runs it longer
PHONE = "+8613512345678"


def local(url: str, stack: Any) -> str:
    return url.replace(stack.api_url, stack.api_url.replace("127.0.0.1", "localhost"))


def hub_origin_for_posts(context: Any, stack: Any) -> None:
    def restate(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        headers = {**route.request.headers, "origin": stack.api_url}
        route.fulfill(response=route.fetch(headers=headers, max_redirects=0))

    context.route("**/checkout/**", restate)


def authenticator(page: Any) -> tuple[Any, str]:
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    added = devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return devtools, added["authenticatorId"]


def enrol(page: Any, merchant: Any, stack: Any, user_id: str) -> None:
    """The merchant's own signed-in page registers the payer's platform authenticator (its backend calls the hub
    with its key); played here on the hub's origin with the same script, relaying to the merchant API."""
    def relay(path: str, body: dict[str, Any]) -> Any:
        if path == "/authenticators/options":
            answer = merchant.call("POST", f"/v1/payers/{user_id}/authenticators/options")
        else:
            answer = merchant.call("POST", f"/v1/payers/{user_id}/authenticators", {"credential": body["credential"]})
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    page.expose_function("merchantBackend", relay)
    page.goto(local(f"{stack.api_url}/checkout-assets/webauthn_step_up.js", stack))
    page.add_script_tag(url="/checkout-assets/webauthn_step_up.js")
    done = page.evaluate("(u) => PayhubWebAuthn.register((p, b) => window.merchantBackend(p, b), u)"
                         ".then((r) => r.credential_id)", user_id)
    assert done


def risky_session(merchant: Any, payer: dict[str, str], amount: int = 8888, **extra: Any) -> dict[str, Any]:
    return create(merchant, payer=payer, amount=amount, step_up_phone=PHONE, **extra)


def paid_at_wechat(stack: Any, attempt_id: str) -> int:
    entries = requests.get(f"{stack.sandbox_url}/_sandbox/ledger", timeout=10).json()["entries"]
    return sum(e["amount_fen"] for e in entries if e["out_trade_no"] == attempt_id and e["kind"] == "payment")


def pay_the_qr(stack: Any, attempt_id: str) -> None:
    answer = requests.post(f"{stack.sandbox_url}/_sandbox/pay", json={"out_trade_no": attempt_id, "result": "success"},
                           timeout=10)
    assert answer.status_code == 200, answer.text


def webauthn_rules(stack: Any, box: Any, **extra: Any) -> None:
    origin = stack.api_url.replace("127.0.0.1", "localhost")
    rules({"rules": [rule("big", "amount >= 8888", "challenge", step_up=["webauthn", "sms"], score=50,
                          reason="large amount")], **extra,
           "providers": {"webauthn_rp_id": "localhost", "webauthn_origins": [origin]}}, box)


def test_a_risky_payment_steps_up_with_the_platform_authenticator_and_is_paid(stack, merchant, providers, phone):  # noqa: F811
    webauthn_rules(stack, providers)
    who = user()
    hub_origin_for_posts(phone, stack)
    page = phone.new_page()
    devtools, authenticator_id = authenticator(page)
    enrol(page, merchant, stack, who["user_id"])
    timings: list[float] = []
    for run in range(RUNS):
        session = risky_session(merchant, who)
        page.goto(local(session["url"], stack))
        page.get_by_role("button", name="WeChat Pay").click()
        heading = page.get_by_role("heading", name="Confirm it's you")
        heading.wait_for()
        button = page.get_by_role("button", name="Use this device's fingerprint or face")
        button.wait_for()  # shown by the script: this browser can use WebAuthn
        assert page.get_by_role("button", name="Text a code to 135****5678").is_visible()
        if run == 0:
            shot(page, "stepup")
        tapped = time.perf_counter()
        button.click()
        page.get_by_role("heading", name="Scan the QR code with WeChat to pay").wait_for()
        timings.append((time.perf_counter() - tapped) * 1000)
        payment = merchant.get(f"/v1/payments/{session['payment_id']}")
        assert payment["step_up"]["method"] == "webauthn" and payment["step_up"]["user_verified"] is True
        assert payment["step_up"]["status"] == "passed" and payment["status"] == "pending"
        pay_the_qr(stack, payment["attempt_id"])
        page.get_by_role("heading", name="Payment successful").wait_for(timeout=15_000)
        assert paid_at_wechat(stack, payment["attempt_id"]) == 8888
    devtools.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator_id})
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(f"\ncheckout step-up tap -> channel's screen over {len(timings)} runs: median "
          f"{statistics.median(timings):.0f} ms, p99 {p99:.0f} ms, max {ordered[-1]:.0f} ms (goal p99 < 1000 ms)")


def test_a_cancelled_or_unrecognised_authenticator_charges_nothing(stack, merchant, providers, phone):  # noqa: F811
    webauthn_rules(stack, providers)
    who = user()
    hub_origin_for_posts(phone, stack)
    page = phone.new_page()
    devtools, authenticator_id = authenticator(page)
    enrol(page, merchant, stack, who["user_id"])
    # The finger is not recognised: with user verification required the browser gives no assertion.
    devtools.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator_id, "isUserVerified": False})
    session = risky_session(merchant, who)
    page.goto(local(session["url"], stack))
    page.get_by_role("button", name="WeChat Pay").click()
    page.get_by_role("button", name="Use this device's fingerprint or face").click()
    alert = page.get_by_role("alert")
    alert.filter(has_text="cancelled or not recognised").wait_for()
    assert "Nothing was charged" in alert.inner_text()
    shot(page, "stepup-cancelled")
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["status"] == "requires_step_up"
    assert requests.get(f"{stack.sandbox_url}/_sandbox/orders/{payment['attempt_id']}", timeout=10).status_code == 404
    assert paid_at_wechat(stack, payment["attempt_id"]) == 0


def test_a_risky_payment_steps_up_by_sms_with_the_keyboard_and_is_paid(stack, merchant, providers, phone):  # noqa: F811
    rules({"rules": [rule("big", "amount >= 6666", "challenge", step_up=["sms"])]}, providers)
    session = risky_session(merchant, user(), amount=6666, locale="zh-CN")
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="微信支付").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="请验证身份").wait_for()
    page.get_by_role("button", name="发送验证码到 135****5678").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="输入短信验证码").wait_for()
    code = providers.codes_for(PHONE)[-1]  # what the payer's phone shows
    page.get_by_label("6 位验证码").focus()
    page.keyboard.type(f"{(int(code) + 1) % 10**6:06d}")
    page.keyboard.press("Enter")
    page.get_by_role("alert").filter(has_text="验证码不正确，还可以再试 4 次").wait_for()
    shot(page, "stepup-sms-zh")
    page.get_by_label("6 位验证码").fill(code)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="请使用微信扫描二维码付款").wait_for()
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["step_up"]["method"] == "sms" and payment["step_up"]["status"] == "passed"
    pay_the_qr(stack, payment["attempt_id"])
    page.get_by_role("heading", name="支付成功").wait_for(timeout=15_000)
    assert paid_at_wechat(stack, payment["attempt_id"]) == 6666


def test_a_blocked_payer_sees_the_refusal(stack, merchant, providers, phone):  # noqa: F811
    who = user()
    rules({"rules": [rule("blocked", "lists.blocked", "deny", score=100, reason="blocked payer")],
           "blocklist": {"device_id": [who["device_id"]]}}, providers)
    session = risky_session(merchant, who, amount=100)
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="WeChat Pay").click()
    page.get_by_role("heading", name="Payment declined for your security").wait_for()
    assert "Nothing was charged" in page.get_by_role("alert").inner_text()
    assert page.get_by_role("link", name="Back to the shop").get_attribute("href") == "https://shop.example/cart"
    shot(page, "refused")
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["status"] == "pending" and payment.get("attempt_id") is None
