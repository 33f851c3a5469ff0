"""What the hub keeps of WeChat's web authorisation, and which account the JSAPI attempt goes to.

No browser: the payer is ``requests`` with WeChat's User-Agent (WeChat approves ``snsapi_base`` silently, so the
authorisation is two redirects). The hub runs in this process, so its records are read from the state table."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from tests.browser.test_checkout_page import attempt_of, new_session
from tests.browser.test_checkout_wechat_jsapi import WECHAT_UA, _authorise, _choose_wechat, sandbox_order

pytestmark = pytest.mark.timeout(120)
OTHER_APPID = "wx7777777777777777"


def session_items(session: dict[str, Any]) -> list[dict[str, Any]]:
    from chalicelib.storage import state_repo
    from chalicelib.storage.aws import client
    from chalicelib.storage.codec import from_item

    session_id = re.search(r"/checkout/([^/]+)/", session["url"]).group(1)  # type: ignore[union-attr]
    answer = client("dynamodb").query(TableName=state_repo.state_table(), KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": f"CS#{session_id}"}},
                                      ConsistentRead=True)
    return [from_item(item) for item in answer["Items"]]


def wechat_payer() -> requests.Session:
    http = requests.Session()
    http.headers.update({"User-Agent": WECHAT_UA, "Accept-Language": "en"})
    return http


def choose_again(http: requests.Session, url: str) -> str:
    """"Use another method", then WeChat Pay again: the hub's answer (an authorisation link, or the page)."""
    token = re.search(r'name="csrf" value="([^"]+)"', http.get(f"{url}?choose=1", timeout=10).text)
    assert token
    answer = http.post(f"{url}/pay", data={"csrf": token.group(1), "method": "wechat.jsapi"}, allow_redirects=False,
                       timeout=10)
    assert answer.status_code == 303, answer.text
    return answer.headers["Location"]


def test_the_state_and_the_openid_expire_by_the_tables_ttl(stack, merchant):
    from chalicelib.domain.clock import parse_iso

    http = wechat_payer()
    session = new_session(merchant, allowed_methods=["wechat.native"])
    before = time.time()
    link = _choose_wechat(http, session["url"])
    states = [i for i in session_items(session) if str(i["sk"]).startswith("WXSTATE#")]
    assert len(states) == 1
    # the table's TTL attribute, at the state's own 10-minute limit
    assert before + 600 - 2 <= int(states[0]["expires_at_epoch"]) <= time.time() + 600
    assert int(states[0]["expires_at_epoch"]) == int(parse_iso(str(states[0]["expires_at"])).timestamp())

    back, _ = _authorise(http, link)
    assert http.get(back, allow_redirects=False, timeout=10).status_code == 303
    held = {str(i["sk"]): i for i in session_items(session)}
    assert not [sk for sk in held if sk.startswith("WXSTATE#")]  # used: deleted as it was read
    openid = held["WXOPENID"]
    # the session's expiry plus an hour's margin
    assert int(openid["expires_at_epoch"]) == int(parse_iso(session["expires_at"]).timestamp()) + 3600


def test_the_jsapi_attempt_goes_to_the_account_the_openid_was_learnt_under(stack, merchant, channel_account):
    """Routing changes while the payer is at WeChat's authorisation (here: an account dedicated to the merchant, under
    another appid, appears; a breaker or a rollout does the same). The openid belongs to the first account's appid:
    the attempt must go there, or WeChat refuses an order whose appid is not the openid's."""
    http = wechat_payer()
    session = new_session(merchant, allowed_methods=["wechat.native"])
    link = _choose_wechat(http, session["url"])
    first_appid = re.search(r"appid=(wx[0-9a-f]+)", link).group(1)  # type: ignore[union-attr]
    channel_account("wechatpay", account_id=f"wx-{merchant.merchant_id[-8:].lower()}", appid=OTHER_APPID,
                    mchid="1900000110", merchant_ids=(merchant.merchant_id,))
    back, _ = _authorise(http, link)
    answer = http.get(back, allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and "error=" not in answer.headers["Location"], answer.headers["Location"]
    payment = attempt_of(merchant, session)
    assert payment["method"] == "wechat.jsapi"
    order = sandbox_order(stack, payment["attempt_id"])["order"]
    assert order["appid"] == first_appid != OTHER_APPID
    assert order["payer"]["openid"] == stack.sandbox.oauth.openid(first_appid, "sandbox-payer")

    # The payer tries again in the same session: routing now chooses the other appid's account, so the openid held
    # for the first appid is not used; the payer is sent through WeChat's authorisation under the other appid.
    again = choose_again(http, session["url"])
    assert f"appid={OTHER_APPID}" in again
    back, _ = _authorise(http, again)
    assert http.get(back, allow_redirects=False, timeout=10).status_code == 303
    retried = attempt_of(merchant, session)
    assert retried["attempt_id"] != payment["attempt_id"]
    order = sandbox_order(stack, retried["attempt_id"])["order"]
    assert order["appid"] == OTHER_APPID
    assert order["payer"]["openid"] == stack.sandbox.oauth.openid(OTHER_APPID, "sandbox-payer")


def test_a_known_openid_keeps_its_account_when_routing_changes_before_the_attempt(stack, merchant, channel_account,
                                                                                    monkeypatch):
    """The openid is already held for this session (a retry): the hub decides to use it under routing's choice, and
    routing changes before the attempt is opened. The attempt still goes to the account whose appid the openid is."""
    from chalicelib.checkout import payer

    http = wechat_payer()
    session = new_session(merchant, allowed_methods=["wechat.native"])
    back, _ = _authorise(http, _choose_wechat(http, session["url"]))
    assert http.get(back, allow_redirects=False, timeout=10).status_code == 303
    first = attempt_of(merchant, session)
    first_appid = sandbox_order(stack, first["attempt_id"])["order"]["appid"]

    real = payer.wechat_authorisation

    def then_routing_changes(*args: Any, **kwargs: Any) -> Any:
        known = real(*args, **kwargs)
        channel_account("wechatpay", account_id=f"wx-{merchant.merchant_id[-8:].lower()}", appid=OTHER_APPID,
                        mchid="1900000110", merchant_ids=(merchant.merchant_id,))
        return known

    monkeypatch.setattr(payer, "wechat_authorisation", then_routing_changes)
    page = choose_again(http, session["url"])
    assert "/connect/oauth2/authorize" not in page and "error=" not in page  # the held openid was used
    retried = attempt_of(merchant, session)
    assert retried["attempt_id"] != first["attempt_id"]
    order = sandbox_order(stack, retried["attempt_id"])["order"]
    assert order["appid"] == first_appid != OTHER_APPID
    assert order["payer"]["openid"] == stack.sandbox.oauth.openid(first_appid, "sandbox-payer")


def test_a_pinned_account_that_can_no_longer_take_the_payment_is_refused(stack, merchant, channel_account):
    from chalicelib.domain.errors import NoChannelAvailable
    from chalicelib.service.routing import pinned_account

    local = channel_account("wechatpay", account_id=f"wy-{merchant.merchant_id[-8:].lower()}", appid=OTHER_APPID,
                            mchid="1900000111", merchant_ids=(merchant.merchant_id,))
    assert pinned_account(local.account_id, "wechat.jsapi", "CNY", merchant.merchant_id).account_id == local.account_id
    with pytest.raises(NoChannelAvailable, match="serves other merchants only"):
        pinned_account(local.account_id, "wechat.jsapi", "CNY", "m_someone_else")
    with pytest.raises(NoChannelAvailable, match="does not take USD"):
        pinned_account(local.account_id, "wechat.jsapi", "USD", merchant.merchant_id)
    with pytest.raises(NoChannelAvailable, match="not configured"):
        pinned_account("wx-gone", "wechat.jsapi", "CNY", merchant.merchant_id)
