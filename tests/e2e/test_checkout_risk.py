"""Risk decisions on the hosted checkout's attempts, and the step-up screens, over HTTP as a browser without script
would use them (the WebAuthn screen, which needs script, is driven in Chromium: tests/browser/test_checkout_stepup.py).

Judged by the payment as the merchant reads it, the operator's decision records, the SMS sandbox's outbox and the
WeChat Pay sandbox's books (a step-up that is not passed leaves no order at the channel)."""

from __future__ import annotations

import re
import uuid

import requests

from tests.e2e.test_checkout_sessions import Payer, create, pay_at_wechat_sandbox
from tests.e2e.test_risk import providers, rule, rules, user  # noqa: F401 - fixture
from tests.helpers import wait_for

PHONE = "+8613800138000"


def _session(merchant, payer=None, **overrides):
    return create(merchant, payer=payer or user(), step_up_phone=overrides.pop("step_up_phone", PHONE), **overrides)


def _csrf(payer: Payer) -> str:
    payer.page()
    return payer.http.cookies.get("payhub_csrf")


def _post(payer: Payer, action: str, form: dict[str, str]) -> requests.Response:
    answer = payer.post(action, form, csrf=_csrf(payer))
    assert answer.status_code == 303, answer.text
    return answer


def _decisions(payment_id: str) -> list[dict]:
    from chalicelib.risk import operations

    return operations.payment_risk(payment_id)["decisions"]


def _orders_at_wechat(stack, attempt_id: str) -> bool:
    """The WeChat Pay sandbox's own books: was an order made under this attempt's number?"""
    return requests.get(f"{stack.sandbox_url}/_sandbox/orders/{attempt_id}", timeout=10).status_code == 200


def _paid_at_wechat(stack, attempt_id: str) -> int:
    entries = requests.get(f"{stack.sandbox_url}/_sandbox/ledger", timeout=10).json()["entries"]
    return sum(e["amount_fen"] for e in entries if e["out_trade_no"] == attempt_id and e["kind"] == "payment")


def test_a_denied_attempt_shows_the_refusal_and_changes_nothing(stack, merchant, providers):  # noqa: F811
    who = user()
    rules({"rules": [rule("blocked", "lists.blocked", "deny", score=100, reason="blocked payer")],
           "blocklist": {"user_id": [who["user_id"]]}}, providers)
    session = _session(merchant, who)
    payer = Payer(session["url"])
    answer = _post(payer, "pay", {"method": "wechat.native"})
    assert "error=risk_denied" in answer.headers["Location"]
    page = payer.http.get(payer.origin + answer.headers["Location"], timeout=30)
    assert page.status_code == 403 and "Payment declined for your security" in page.text
    assert "Nothing was charged" in page.text and "<script>" not in page.text
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["status"] == "pending" and payment.get("attempt_id") is None  # no attempt, nothing at a channel
    [decision] = _decisions(session["payment_id"])
    assert decision["action"] == "deny" and decision["operation"] == "create"
    assert decision["method"] == "wechat.native" and decision["attempt_id"].startswith("att_")
    assert decision["reasons"] == ["blocked payer"]
    zh = payer.http.get(payer.origin + answer.headers["Location"].replace("lang=en", "") + "&lang=zh-CN", timeout=30)
    assert "支付未通过安全检查" in zh.text and "未扣款" in zh.text


def test_a_challenged_attempt_is_held_then_passes_by_sms_and_is_paid(stack, merchant, providers, caplog):  # noqa: F811
    rules({"rules": [rule("big", "amount >= 4242", "challenge", step_up=["webauthn", "sms"], score=40)]}, providers)
    session = _session(merchant, amount=4242)
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "wechat.native"})
    held = merchant.get(f"/v1/payments/{session['payment_id']}")
    # held before any channel call; WebAuthn is not offered: this payer has no authenticator registered
    assert held["status"] == "requires_step_up" and held["step_up"]["methods"] == ["sms"]
    assert not _orders_at_wechat(stack, held["attempt_id"])
    page = payer.page()
    assert "Confirm it&#x27;s you" in page.text and "138****8000" in page.text and 'value="sms"' in page.text
    assert 'id="stepup-webauthn-box"' not in page.text
    _post(payer, "stepup", {"method": "sms"})
    code = providers.codes_for(PHONE)[-1]
    assert payer.page("/return", allow_redirects=False).status_code == 303  # a stray return changes nothing
    assert "Enter the code we texted you" in payer.page().text
    wrong = _post(payer, "stepup", {"step": "verify", "code": f"{(int(code) + 1) % 10**6:06d}"})
    again = payer.http.get(payer.origin + wrong.headers["Location"], timeout=30)
    assert "That code is not right. 4 tries left." in again.text and 'aria-invalid="true"' in again.text
    assert not _orders_at_wechat(stack, held["attempt_id"])  # a wrong code charges nothing
    _post(payer, "stepup", {"step": "verify", "code": code})
    opened = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert opened["status"] == "pending" and opened["action"]["type"] == "qr_code"
    assert opened["step_up"]["status"] == "passed" and opened["step_up"]["method"] == "sms"
    assert "Scan the QR code with WeChat" in payer.page().text
    pay_at_wechat_sandbox(stack, opened["attempt_id"])
    wait_for(lambda: payer.page("/status").json()["state"] == "paid")
    assert _paid_at_wechat(stack, opened["attempt_id"]) == 4242
    assert code not in caplog.text
    [decision] = _decisions(session["payment_id"])
    assert decision["action"] == "challenge" and decision["step_up"] == ["webauthn", "sms"]


def test_five_wrong_codes_fail_the_payment_and_the_page_says_nothing_was_charged(stack, merchant, providers, drain):  # noqa: F811
    rules({"rules": [rule("big", "amount >= 4243", "challenge", step_up=["sms"])]}, providers)
    session = _session(merchant, amount=4243, step_up_phone="+8613900139000")
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "wechat.native"})
    _post(payer, "stepup", {"method": "sms"})
    code = providers.codes_for("+8613900139000")[-1]
    for _ in range(5):
        _post(payer, "stepup", {"step": "verify", "code": f"{(int(code) + 7) % 10**6:06d}"})
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["status"] == "failed" and payment["failure_reason"] == "step_up_failed"
    assert not _orders_at_wechat(stack, payment["attempt_id"])
    page = payer.page()
    assert page.status_code == 410 and "Verification failed" in page.text and "Nothing was charged" in page.text


def test_an_expired_code_says_so_and_a_new_code_passes(stack, merchant, providers):  # noqa: F811
    rules({"rules": [rule("big", "amount >= 4244", "challenge", step_up=["sms"])]}, providers)
    session = _session(merchant, amount=4244, step_up_phone="+8613700137000")
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "wechat.native"})
    _post(payer, "stepup", {"method": "sms"})
    code = providers.codes_for("+8613700137000")[-1]
    from chalicelib.stepup import records as stepup_records
    from chalicelib.storage import state_repo
    from chalicelib.storage.transaction import Transaction

    tx = Transaction()
    tx.update("challenge", state_repo.state_table(), stepup_records.challenge_key(session["payment_id"]),
              {"deadline_epoch": 1}, condition="attribute_exists(pk)", condition_values={})
    tx.commit()  # the 5 minutes are over
    late = _post(payer, "stepup", {"step": "verify", "code": code})
    assert "The check expired" in payer.http.get(payer.origin + late.headers["Location"], timeout=30).text
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["status"] == "requires_step_up"
    _post(payer, "stepup", {"method": "sms"})
    _post(payer, "stepup", {"step": "verify", "code": providers.codes_for("+8613700137000")[-1]})
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["action"]["type"] == "qr_code"


def test_a_challenge_nobody_can_pass_here_is_refused(stack, merchant, providers):  # noqa: F811
    rules({"rules": [rule("bio", "amount >= 4245", "challenge", step_up=["webauthn"])]}, providers)
    session = _session(merchant, amount=4245)
    payer = Payer(session["url"])
    answer = _post(payer, "pay", {"method": "wechat.native"})
    assert "error=risk_denied" in answer.headers["Location"]  # no authenticator registered: it fails closed
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["status"] == "pending"


def test_the_provider_down_fails_open_or_closed_as_each_rule_says(stack, merchant, providers):  # noqa: F811
    providers.down = True
    try:
        rules({"rules": [rule("sift-open", "provider.score >= 90", "deny")]}, providers)
        opened = _session(merchant)
        _post(Payer(opened["url"]), "pay", {"method": "wechat.native"})
        assert merchant.get(f"/v1/payments/{opened['payment_id']}")["action"]["type"] == "qr_code"
        rules({"rules": [rule("sift-closed", "provider.score >= 90", "challenge", step_up=["sms"],
                              on_error="closed")]}, providers)
        closed = _session(merchant)
        _post(Payer(closed["url"]), "pay", {"method": "wechat.native"})
        held = merchant.get(f"/v1/payments/{closed['payment_id']}")
        assert held["status"] == "requires_step_up"
        [decision] = _decisions(closed["payment_id"])
        assert decision["provider"]["available"] is False and decision["rules"][0]["error"]
    finally:
        providers.down = False


def test_switching_method_counts_the_payment_once(stack, merchant, providers, channel_account):  # noqa: F811
    channel_account("alipay", account_id="alipay-risk", merchant_ids=(merchant.merchant_id,))
    rules({"rules": [rule("fast", "velocity.payer.count_10m >= 2", "challenge", step_up=["sms"])]}, providers)
    who = user()
    session = _session(merchant, who, allowed_methods=["wechat.native", "alipay.qr"])
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "wechat.native"})
    _post(payer, "pay", {"method": "alipay.qr"})  # a switch: decided again, not counted again
    _post(payer, "pay", {"method": "wechat.native"})
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["status"] == "pending"
    assert len(merchant.get(f"/v1/checkout_sessions/{session['id']}")["attempts"]) == 3
    second = _session(merchant, who)  # the payer's second payment: velocity 1, allowed
    _post(Payer(second["url"]), "pay", {"method": "wechat.native"})
    assert merchant.get(f"/v1/payments/{second['payment_id']}")["status"] == "pending"
    third = _session(merchant, who)
    _post(Payer(third["url"]), "pay", {"method": "wechat.native"})
    assert merchant.get(f"/v1/payments/{third['payment_id']}")["status"] == "requires_step_up"


def test_step_up_posts_need_the_pages_token(stack, merchant, providers):  # noqa: F811
    rules({"rules": [rule("big", "amount >= 4246", "challenge", step_up=["sms"])]}, providers)
    session = _session(merchant, amount=4246, step_up_phone="+8613600136000")
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "wechat.native"})
    forged = payer.post("stepup", {"method": "sms"}, csrf="x" * 43)
    assert forged.status_code == 403
    assert providers.codes_for("+8613600136000") == []
    json_call = payer.http.post(f"{session['url']}/stepup/webauthn", json={"step": "options"},
                                headers={"X-CSRF-Token": "y" * 43}, timeout=30)
    assert json_call.status_code == 403 and json_call.json() == {"error": "forbidden"}
    assert re.search(r"requires_step_up", merchant.get(f"/v1/payments/{session['payment_id']}")["status"])


def test_a_session_refuses_a_bad_step_up_phone(merchant):
    answer = merchant.call("POST", "/v1/checkout_sessions", {
        "merchant_order_no": uuid.uuid4().hex[:12], "amount": 100, "currency": "CNY", "description": "x",
        "allowed_methods": ["wechat.native"], "return_url": "https://shop.example/", "step_up_phone": "call me"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "step_up_phone"


def test_face_verification_from_the_page_and_back(stack, merchant, providers):  # noqa: F811
    rules({"rules": [rule("big", "amount >= 4247", "challenge", step_up=["face"])]}, providers)
    session = _session(merchant, amount=4247)
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "wechat.native"})
    assert "Verify with your face" in payer.page().text
    _post(payer, "stepup", {"method": "face"})
    page = payer.page().text
    link = re.search(r'id="stepup-face-go" href="([^"]+)"', page)
    assert link and link.group(1).startswith(f"{providers.url}/faceid/page/")
    token = link.group(1).rsplit("/", 1)[1]
    early = _post(payer, "stepup", {"step": "verify"})  # "I have finished" before the check is done
    assert "not finished yet" in payer.http.get(payer.origin + early.headers["Location"], timeout=30).text
    providers.face_results[token] = {"err": 0, "live": 0, "sim": 93}
    back = payer.page("/return", allow_redirects=False)  # the provider sends the payer back to the page
    assert back.status_code == 303
    opened = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert opened["status"] == "pending" and opened["action"]["type"] == "qr_code"
    assert opened["step_up"]["method"] == "face" and opened["step_up"]["similarity"] == 93
    assert "Scan the QR code with WeChat" in payer.page().text


def test_a_rule_scoped_to_one_method_refuses_that_method_only(stack, merchant, providers, channel_account):  # noqa: F811
    channel_account("alipay", account_id="alipay-risk", merchant_ids=(merchant.merchant_id,))
    rules({"rules": [rule("no-alipay-big", "amount >= 4248", "deny", scope={"methods": ["alipay.qr"]})]}, providers)
    session = _session(merchant, amount=4248, allowed_methods=["alipay.qr", "wechat.native"])
    payer = Payer(session["url"])
    refused = _post(payer, "pay", {"method": "alipay.qr"})
    page = payer.http.get(payer.origin + refused.headers["Location"], timeout=30).text
    assert "Payment declined for your security" in page and "?choose=1" in page  # another method is offered
    _post(payer, "pay", {"method": "wechat.native"})
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["method"] == "wechat.native" and payment["action"]["type"] == "qr_code"
    actions = sorted(d["action"] for d in _decisions(session["payment_id"]))
    assert actions == ["deny"]  # the allowed attempt fired nothing: kept on the payment only
    from chalicelib.risk import operations

    kept = operations.payment_risk(session["payment_id"])["risk"]["create"]  # what an operator reads
    assert kept["action"] == "allow" and kept["attempt_id"] == payment["attempt_id"]
    assert kept["method"] == "wechat.native"


CARD_A = {"card_number": "6225880000000035", "card_exp_month": "06", "card_exp_year": "2030",
          "card_phone": "13700137000"}  # the UnionPay sandbox's credit card (CVN2 456)
CARD_B = {"card_number": "6217000000000000012", "card_exp_month": "12", "card_exp_year": "2029",
          "card_phone": "13800138000"}  # its debit card


def _bank_code(account, attempt_id: str) -> str:
    """The code UnionPay texted to the card's phone for this attempt's order (the sandbox shows it)."""
    return requests.get(f"{account.sandbox_url}/_sandbox/sms/{attempt_id}", timeout=10).json()["code"]


def _at_unionpay(account, amount: int) -> dict[str, tuple[int, int]]:
    """The UnionPay sandbox's own books for orders of ``amount``: our attempt id -> (taken, given back)."""
    from tests.channel_money import our_attempt, taken

    return {our_attempt("unionpay", k): v for k, v in taken("unionpay", account.sandbox, amount).items()}


def _sms_to(providers, phone: str) -> list[dict]:  # noqa: F811
    return [m for m in providers.sent if m["PhoneNumbers"] == phone]


def test_a_challenged_card_confirmation_steps_up_on_the_page_then_confirms(stack, merchant, providers,  # noqa: F811
                                                                          channel_account, drain):
    account = channel_account("unionpay", account_id="unionpay-risk", merchant_ids=(merchant.merchant_id,))
    rules({"rules": [rule("card-confirm", "amount >= 4249", "challenge", step_up=["webauthn", "sms"],
                          operations=["confirm"])]}, providers)
    session = _session(merchant, amount=4249, allowed_methods=["unionpay.card"])  # the merchant's step_up_phone
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "unionpay.card", **CARD_A})
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    bank_code = _bank_code(account, payment["attempt_id"])
    _post(payer, "confirm", {"sms_code": bank_code, "cvv": "456"})  # risk control wants the payer first
    assert _at_unionpay(account, 4249) == {payment["attempt_id"]: (0, 0)}  # nothing taken before the step-up
    page = payer.page().text
    # SMS to the merchant's number; WebAuthn is not shown: this payer has no authenticator registered
    assert "Confirm it&#x27;s you" in page and 'value="sms"' in page and "stepup-webauthn-box" not in page
    _post(payer, "stepup", {"method": "sms"})
    assert "138****8000" in payer.page().text
    assert _sms_to(providers, CARD_A["card_phone"]) == []  # the number typed with the card gets nothing
    _post(payer, "stepup", {"step": "verify", "code": providers.codes_for(PHONE)[-1]})
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["step_up"]["status"] == "passed"
    assert 'name="sms_code"' in payer.page().text  # the bank's confirmation again: the CVV was never stored
    _post(payer, "confirm", {"sms_code": bank_code, "cvv": "456"})
    drain()
    assert _at_unionpay(account, 4249) == {payment["attempt_id"]: (4249, 0)}  # taken once, at the bank's books
    wait_for(lambda: payer.page("/status").json()["state"] == "paid")


def test_a_step_up_passed_for_one_card_does_not_confirm_another(stack, merchant, providers,  # noqa: F811
                                                               channel_account, drain):
    account = channel_account("unionpay", account_id="unionpay-risk", merchant_ids=(merchant.merchant_id,))
    rules({"rules": [rule("card-confirm", "amount >= 4251", "challenge", step_up=["sms"], operations=["confirm"])]},
          providers)
    session = _session(merchant, amount=4251, allowed_methods=["unionpay.card"])
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "unionpay.card", **CARD_A})
    first = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    _post(payer, "confirm", {"sms_code": _bank_code(account, first), "cvv": "456"})
    _post(payer, "stepup", {"method": "sms"})
    _post(payer, "stepup", {"step": "verify", "code": providers.codes_for(PHONE)[-1]})
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["step_up"]["status"] == "passed"
    # The payer does not confirm card A: they switch to card B and confirm that.
    _post(payer, "pay", {"method": "unionpay.card", **CARD_B})
    switched = merchant.get(f"/v1/payments/{session['payment_id']}")
    second = switched["attempt_id"]
    assert second != first
    _post(payer, "confirm", {"sms_code": _bank_code(account, second)})
    drain()
    # Card B was decided on its own, challenged, and not charged: the bank's books hold nothing for either card.
    assert _at_unionpay(account, 4251) == {first: (0, 0), second: (0, 0)}
    # card A's step-up ended with its attempt (recorded as passed for that attempt, then abandoned)
    assert switched["step_up"]["status"] == "abandoned" and switched["step_up"]["was"] == "passed"
    assert switched["step_up"]["attempt_id"] == first
    held = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert held["status"] == "pending" and held["step_up"]["status"] == "required"
    assert held["step_up"]["attempt_id"] == second
    confirms = [d for d in _decisions(session["payment_id"]) if d["operation"] == "confirm"]
    assert [d["action"] for d in confirms] == ["challenge", "challenge"]
    assert "Confirm it&#x27;s you" in payer.page().text
    _post(payer, "stepup", {"method": "sms"})  # card B's own step-up, then its confirmation goes through
    _post(payer, "stepup", {"step": "verify", "code": providers.codes_for(PHONE)[-1]})
    _post(payer, "confirm", {"sms_code": _bank_code(account, second)})
    drain()
    assert _at_unionpay(account, 4251) == {first: (0, 0), second: (4251, 0)}
    wait_for(lambda: payer.page("/status").json()["state"] == "paid")


def test_a_number_typed_on_the_page_never_receives_a_code(stack, merchant, providers,  # noqa: F811
                                                           channel_account):
    account = channel_account("unionpay", account_id="unionpay-risk", merchant_ids=(merchant.merchant_id,))
    rules({"rules": [rule("card-confirm", "amount >= 4252", "challenge", step_up=["sms"], operations=["confirm"])]},
          providers)
    typed = "13500135000"  # whoever holds the page types their own number with a card the bank knows no phone for
    card = {"card_number": "6212345678901232", "card_exp_month": "01", "card_exp_year": "2031", "card_phone": typed}
    session = create(merchant, payer=user(), amount=4252, allowed_methods=["unionpay.card"])  # no step_up_phone
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "unionpay.card", **card})
    attempt = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    _post(payer, "confirm", {"sms_code": _bank_code(account, attempt)})
    page = payer.page().text
    assert "Confirm it&#x27;s you" in page and 'value="sms"' not in page  # nothing this payer can use here
    asked = _post(payer, "stepup", {"method": "sms"})  # asking anyway, by hand
    assert "error=unavailable" in asked.headers["Location"]
    assert _sms_to(providers, typed) == [] and _sms_to(providers, "+86" + typed) == []
    _post(payer, "confirm", {"sms_code": _bank_code(account, attempt)})  # and confirming again is refused
    assert _at_unionpay(account, 4252) == {attempt: (0, 0)}
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["status"] == "pending"
    # A held attempt (a create's challenge) with SMS only and no merchant number fails closed, as nobody could pass
    rules({"rules": [rule("big", "amount >= 4252", "challenge", step_up=["sms"])]}, providers)
    other = create(merchant, payer=user(), amount=4252, allowed_methods=["wechat.native"])
    refused = _post(Payer(other["url"]), "pay", {"method": "wechat.native"})
    assert "error=risk_denied" in refused.headers["Location"]
    assert _sms_to(providers, typed) == []


def test_a_payer_may_leave_a_card_confirmations_step_up_for_another_method(stack, merchant, providers,  # noqa: F811
                                                                          channel_account, drain):
    account = channel_account("unionpay", account_id="unionpay-risk", merchant_ids=(merchant.merchant_id,))
    rules({"rules": [rule("card-confirm", "amount >= 4250", "challenge", step_up=["sms"], operations=["confirm"])]},
          providers)
    session = _session(merchant, amount=4250, allowed_methods=["unionpay.card", "wechat.native"])
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "unionpay.card", **CARD_A})
    card_attempt = merchant.get(f"/v1/payments/{session['payment_id']}")["attempt_id"]
    bank_code = _bank_code(account, card_attempt)
    _post(payer, "confirm", {"sms_code": bank_code, "cvv": "456"})
    assert "Use another method" in payer.page().text
    assert 'value="wechat.native"' in payer.page("?choose=1").text
    _post(payer, "pay", {"method": "wechat.native"})
    assert "Scan the QR code with WeChat" in payer.page().text
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["method"] == "wechat.native" and payment["step_up"]["status"] == "abandoned"
    # The card's order was left unconsumed at UnionPay (it has no close: the hub asked and found it unpaid): the
    # bank's books hold nothing taken for the card, before and after the payer pays by WeChat.
    drain()
    assert _at_unionpay(account, 4250) == {card_attempt: (0, 0)}
    with account.sandbox.state._lock:
        [order] = [o for o in account.sandbox.state.orders.values() if o.amount_fen == 4250]
        assert order.status == "SMS_SENT"  # never consumed
    pay_at_wechat_sandbox(stack, payment["attempt_id"])
    wait_for(lambda: payer.page("/status").json()["state"] == "paid")
    assert _paid_at_wechat(stack, payment["attempt_id"]) == 4250
    assert _at_unionpay(account, 4250) == {card_attempt: (0, 0)}


WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 MicroMessenger/8.0.50(0x1800323d) NetType/WIFI Language/en")


def test_a_challenged_wechat_jsapi_attempt_is_paid_after_its_step_up(stack, merchant, providers):  # noqa: F811
    rules({"rules": [rule("big", "amount >= 4253", "challenge", step_up=["sms"])]}, providers)
    session = _session(merchant, amount=4253, allowed_methods=["wechat.native"])
    payer = Payer(session["url"])
    payer.http.headers.update({"User-Agent": WECHAT_UA, "Accept-Language": "en"})
    authorise = _post(payer, "pay", {"method": "wechat.jsapi"}).headers["Location"]
    assert "/connect/oauth2/authorize?" in authorise
    back = requests.get(authorise.split("#")[0], allow_redirects=False, timeout=10)  # WeChat approves silently
    assert back.status_code == 302
    assert payer.http.get(back.headers["Location"], allow_redirects=False, timeout=30).status_code == 303
    held = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert held["status"] == "requires_step_up" and held["method"] == "wechat.jsapi"
    assert not _orders_at_wechat(stack, held["attempt_id"])
    _post(payer, "stepup", {"method": "sms"})
    _post(payer, "stepup", {"step": "verify", "code": providers.codes_for(PHONE)[-1]})
    opened = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert opened["status"] == "pending" and opened["attempt_id"] == held["attempt_id"], opened
    order = requests.get(f"{stack.sandbox_url}/_sandbox/orders/{held['attempt_id']}", timeout=10).json()["order"]
    assert order["trade_type"] == "JSAPI" and order["payer"]["openid"] == stack.sandbox.oauth.openid(
        order["appid"], "sandbox-payer")
    action = opened["action"]
    bridge = {k: str(action[k]) for k in ("appId", "timeStamp", "nonceStr", "package", "signType", "paySign")}
    paid = requests.post(f"{stack.sandbox_url}/_sandbox/jsapi/pay", json=bridge, timeout=10)  # WeChat's client pays
    assert paid.status_code == 200 and paid.json()["err_msg"].endswith(":ok"), paid.text
    wait_for(lambda: payer.page("/status").json()["state"] == "paid")
    assert _paid_at_wechat(stack, held["attempt_id"]) == 4253


def test_the_page_tells_a_face_check_under_way_by_its_code_not_its_words(stack, merchant, providers,  # noqa: F811
                                                                          monkeypatch):
    from chalicelib.domain.errors import InvalidState, StepUpPending
    from chalicelib.stepup import on_checkout

    rules({"rules": [rule("big", "amount >= 4255", "challenge", step_up=["face"])]}, providers)
    session = _session(merchant, amount=4255)
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "wechat.native"})
    _post(payer, "stepup", {"method": "face"})

    def refuse(error: Exception):
        def verify(*args, **kwargs):
            raise error
        return verify

    monkeypatch.setattr(on_checkout, "verify", refuse(StepUpPending("still at the provider", param="payment_id")))
    assert "error=not_finished" in _post(payer, "stepup", {"step": "verify"}).headers["Location"]
    monkeypatch.setattr(on_checkout, "verify", refuse(InvalidState("the payment is not finished being set up",
                                                                   param="payment_id")))
    assert "error=unavailable" in _post(payer, "stepup", {"step": "verify"}).headers["Location"]


def test_a_confirmation_posted_for_a_method_without_one_is_refused_before_risk_control(
        stack, merchant, providers):  # noqa: F811
    """Only a card attempt waiting for the bank's code has a confirmation: the form posted by hand on a WeChat QR is
    refused before any decision, so a confirm rule cannot hold that payment, and the payer's WeChat payment stands."""
    rules({"rules": [rule("any-confirm", "amount >= 1", "challenge", step_up=["sms"], operations=["confirm"])]},
          providers)
    session = _session(merchant, amount=4254, allowed_methods=["wechat.native"])
    payer = Payer(session["url"])
    _post(payer, "pay", {"method": "wechat.native"})
    answer = _post(payer, "confirm", {"sms_code": "123456"})
    assert "error=error" in answer.headers["Location"]
    payment = merchant.get(f"/v1/payments/{session['payment_id']}")
    assert payment["status"] == "pending" and payment.get("step_up") is None
    assert [d for d in _decisions(session["payment_id"]) if d["operation"] == "confirm"] == []
    pay_at_wechat_sandbox(stack, payment["attempt_id"])
    wait_for(lambda: payer.page("/status").json()["state"] == "paid")
    assert _paid_at_wechat(stack, payment["attempt_id"]) == 4254
    assert merchant.get(f"/v1/payments/{session['payment_id']}")["amount_refunded"] == 0
