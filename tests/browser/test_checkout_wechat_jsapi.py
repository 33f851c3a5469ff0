"""WeChat Pay on the hosted page inside WeChat's in-app browser: JSAPI with the openid from WeChat's web authorisation.

Chromium plays WeChat's browser: a ``MicroMessenger`` User-Agent, and a ``WeixinJSBridge`` injected before the page's
scripts run that appears a moment after the page loads (so the page must wait for ``WeixinJSBridgeReady``). The
bridge hands ``getBrandWCPayRequest`` to "the WeChat client", here a binding that asks the WeChat sandbox to pay the
prepay_id; the sandbox checks paySign with the merchant's public key, as WeChat's client does, before it pays and
sends its signed callback. Outcomes are judged by the sandbox's own books."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.browser.conftest import PHONE, shot
from tests.browser.test_checkout_page import attempt_of, expect_paid, methods_on, new_session

pytestmark = pytest.mark.timeout(180)
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 MicroMessenger/8.0.50(0x1800323d) NetType/WIFI Language/en")
BRIDGE = """
(() => {
  const bridge = {
    invoke(name, params, callback) {
      if (name !== "getBrandWCPayRequest") { callback({err_msg: name + ":fail"}); return; }
      window.__wechatClient(params).then(callback);
    },
  };
  // As in WeChat, the bridge is there only a moment after the page has loaded.
  document.addEventListener("DOMContentLoaded", () => setTimeout(() => {
    window.WeixinJSBridge = bridge;
    document.dispatchEvent(new Event("WeixinJSBridgeReady"));
  }, 100));
})();
"""


class WeChatClient:
    """What WeChat's app does with getBrandWCPayRequest: ``pay`` (the sandbox checks the signature and pays),
    ``cancel`` (the payer closes the sheet), ``tamper`` (the parameters were altered on the way)."""

    def __init__(self, sandbox_url: str) -> None:
        self.sandbox_url = sandbox_url
        self.mode = "pay"
        self.calls: list[dict[str, Any]] = []

    def __call__(self, source: Any, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(dict(params))
        if self.mode == "cancel":
            return {"err_msg": "get_brand_wcpay_request:cancel"}
        sent = dict(params)
        if self.mode == "tamper":
            sent["package"] = sent["package"][:-1] + ("A" if not sent["package"].endswith("A") else "B")
            sent["paySign"] = params["paySign"]
            sent["nonceStr"] = params["nonceStr"] + "x"
        answer = requests.post(f"{self.sandbox_url}/_sandbox/jsapi/pay", json=sent, timeout=10)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
def wechat(browser: Any, stack: Any) -> Iterator[tuple[Any, WeChatClient]]:
    """A phone-sized context that looks like WeChat's browser; any CSP violation or page error fails the test."""
    context = browser.new_context(viewport=PHONE, locale="en-US", device_scale_factor=1, user_agent=WECHAT_UA)
    client = WeChatClient(stack.sandbox_url)
    context.expose_binding("__wechatClient", client)
    context.add_init_script(BRIDGE)
    problems: list[str] = []
    context.on("page", lambda p: (p.on("console", lambda m: problems.append(m.text) if m.type == "error" else None),
                                  p.on("pageerror", lambda e: problems.append(str(e)))))
    yield context, client
    context.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p or "Error" in p], problems


def sandbox_order(stack: Any, out_trade_no: str) -> dict[str, Any]:
    answer = requests.get(f"{stack.sandbox_url}/_sandbox/orders/{out_trade_no}", timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_wechat_pay_as_jsapi_in_wechats_browser_cancel_then_pay(stack, merchant, wechat):
    context, client = wechat
    session = new_session(merchant, allowed_methods=["wechat.native", "wechat.h5"], payer={"ip": "203.0.113.7"})
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(session["url"])
    assert methods_on(page) == ["wechat.jsapi"]  # one "WeChat Pay", as JSAPI: no QR code, no H5 inside WeChat
    client.mode = "cancel"
    page.get_by_role("button", name="WeChat Pay").click()  # -> WeChat's authorisation -> back -> JSAPI attempt
    page.get_by_text("You cancelled the payment").wait_for()
    assert page.url.startswith(session["url"]) and "code=" not in page.url
    shot(page, "wechat-jsapi")
    payment = attempt_of(merchant, session)
    assert payment["status"] == "pending" and payment["method"] == "wechat.jsapi"
    assert sandbox_order(stack, payment["attempt_id"])["order"]["trade_state"] == "NOTPAY"
    client.mode = "pay"
    page.get_by_role("button", name=re.compile("with WeChat")).click()  # the payer pays again on the same attempt
    expect_paid(page)  # the page polled the hub: never the bridge's ":ok"
    assert len(client.calls) == 2 and client.calls[0] == client.calls[1]
    paid = attempt_of(merchant, session)
    assert paid["status"] == "succeeded" and paid["attempt_id"] == payment["attempt_id"]
    books = sandbox_order(stack, paid["attempt_id"])["order"]
    assert books["trade_state"] == "SUCCESS" and books["trade_type"] == "JSAPI"
    appid = books["appid"]
    assert books["payer"]["openid"] == stack.sandbox.oauth.openid(appid, "sandbox-payer")
    ledger = requests.get(f"{stack.sandbox_url}/_sandbox/ledger", timeout=10).json()["entries"]
    assert [e["amount_fen"] for e in ledger if e["out_trade_no"] == paid["attempt_id"] and e["kind"] == "payment"] \
        == [2600]
    secret = stack.sandbox.oauth.app_secret(appid)
    assert not [u for u in seen if secret in u]  # the AppSecret never reaches the browser
    assert any("/connect/oauth2/authorize?" in u and "scope=snsapi_base" in u for u in seen)


def test_a_tampered_pay_sign_is_refused_by_wechats_client(stack, merchant, wechat):
    context, client = wechat
    session = new_session(merchant, allowed_methods=["wechat.native"])
    page = context.new_page()
    page.goto(session["url"])
    client.mode = "tamper"
    page.get_by_role("button", name="WeChat Pay").click()
    page.get_by_text("WeChat could not complete the payment").wait_for()
    payment = attempt_of(merchant, session)
    assert sandbox_order(stack, payment["attempt_id"])["order"]["trade_state"] == "NOTPAY"
    assert payment["status"] == "pending"
    client.mode = "pay"
    page.get_by_role("button", name=re.compile("with WeChat")).click()
    expect_paid(page)


def _choose_wechat(http: requests.Session, url: str) -> str:
    """The payer's WeChat browser taps WeChat Pay: the hub's answer is the authorisation link."""
    page = http.get(url, timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    answer = http.post(f"{url}/pay", data={"csrf": token.group(1), "method": "wechat.jsapi"}, allow_redirects=False,
                       timeout=10)
    assert answer.status_code == 303 and "/connect/oauth2/authorize?" in answer.headers["Location"], answer.text
    return answer.headers["Location"]


def _authorise(http: requests.Session, link: str) -> tuple[str, str]:
    answer = http.get(link.split("#")[0], allow_redirects=False, timeout=10)  # WeChat approves snsapi_base silently
    assert answer.status_code == 302, answer.text
    back = answer.headers["Location"]
    return back, re.search(r"[?&]code=([^&]+)", back).group(1)  # type: ignore[union-attr]


def test_forged_state_and_a_reused_code_are_refused(stack, merchant):
    http = requests.Session()
    http.headers.update({"User-Agent": WECHAT_UA, "Accept-Language": "en"})
    first = new_session(merchant, allowed_methods=["wechat.native"])
    back, code = _authorise(http, _choose_wechat(http, first["url"]))
    forged = re.sub(r"state=[^&]+", "state=" + uuid.uuid4().hex, back)
    refused = http.get(forged, allow_redirects=False, timeout=10)
    assert refused.status_code == 403 and "text/html" in refused.headers["Content-Type"]
    assert attempt_of(merchant, first)["method"] == "checkout"  # nothing was opened
    assert http.get(back, allow_redirects=False, timeout=10).status_code == 303  # the real one opens the attempt
    assert attempt_of(merchant, first)["method"] == "wechat.jsapi"
    assert http.get(back, allow_redirects=False, timeout=10).status_code == 403  # a state is good once

    second = new_session(merchant, allowed_methods=["wechat.native"])
    back2, _ = _authorise(http, _choose_wechat(http, second["url"]))
    replayed = re.sub(r"code=[^&]+", f"code={code}", back2)  # the first session's code, already traded
    answer = http.get(replayed, allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and "error=wechat_auth" in answer.headers["Location"]
    assert attempt_of(merchant, second)["method"] == "checkout"
    shown = http.get(stack.api_url + answer.headers["Location"], timeout=10).text
    assert "WeChat could not confirm who you are" in shown


def test_the_sandboxs_code_exchange_speaks_wechats_errors(stack):
    oauth = stack.sandbox.oauth
    appid = "wx8888888888888888"
    secret = oauth.app_secret(appid)
    redirect = "http://127.0.0.1:9/back?x=1"
    link = (f"{stack.sandbox_url}/connect/oauth2/authorize?appid={appid}&redirect_uri={requests.utils.quote(redirect)}"
            "&response_type=code&scope=snsapi_base&state=s1")
    back = requests.get(link, allow_redirects=False, timeout=10)
    assert back.status_code == 302 and back.headers["Location"].startswith(redirect + "&code=")
    code = re.search(r"code=([^&]+)", back.headers["Location"]).group(1)  # type: ignore[union-attr]

    def exchange(**overrides: str) -> dict[str, Any]:
        query = {"appid": appid, "secret": secret, "code": code, "grant_type": "authorization_code", **overrides}
        return dict(requests.get(f"{stack.sandbox_url}/sns/oauth2/access_token", params=query, timeout=10).json())

    assert exchange(secret="0" * 32)["errcode"] == 40125
    assert exchange(code="nope")["errcode"] == 40029
    assert exchange(grant_type="client_credential")["errcode"] == 40002
    first = exchange()
    assert first["openid"] == oauth.openid(appid, "sandbox-payer") and first["scope"] == "snsapi_base"
    assert exchange()["errcode"] == 40163  # a code is good once
    assert requests.get(link.replace(appid, "wx0000000000000000"), allow_redirects=False, timeout=10).status_code == 400
