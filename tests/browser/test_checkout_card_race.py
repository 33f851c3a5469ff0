"""The card page when the bank's callback lands between the two reads that draw the confirmation's answer.

The answer page reads the payment, then its current attempt. A callback committing in between used to give a
payment still "processing" beside an attempt already "succeeded": the page took that for a failed attempt, offered
the methods again and stopped polling; the payer saw the success only after a reload (about half the runs of the card
test, by chance). Here the race is forced, every run: the hub's callback handler is held until the answer page has
read the payment, and the page's attempt read waits until the callback has committed.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from tests.browser.test_checkout_page import attempt_of, expect_paid, new_session

pytestmark = pytest.mark.timeout(120)
WAIT_S = 10.0


class CallbackBetweenReads:
    """Orders three threads of the in-process hub: the answer page's payment read, the bank's callback, the answer
    page's attempt read. The old page's status polls are held meanwhile, so they cannot redraw the page first."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.payment_read = threading.Event()
        self.callback_done = threading.Event()
        self.page_done = threading.Event()
        self.fired = False
        self.callback_held = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from chalicelib.checkout import payer, sessions
        from chalicelib.domain.states import PaymentState
        from functions import callbacks

        real_view, real_attempt, real_callback = payer.view, sessions.current_attempt, callbacks.handle_callback

        def view(session: Any, *, with_methods: bool = True, **options: Any) -> Any:
            if not with_methods and self.payment_read.is_set():
                self.page_done.wait(WAIT_S)  # a status poll of the SMS page: after the answer page is drawn
            self.local.page = with_methods
            try:
                return real_view(session, with_methods=with_methods, **options)
            finally:
                self.local.page = False
                if with_methods and self.fired:
                    self.page_done.set()

        def current_attempt(payment: Any) -> Any:
            if getattr(self.local, "page", False) and not self.fired and payment.status is PaymentState.PROCESSING:
                self.fired = True  # the answer page has read the payment "processing": now the callback lands
                self.payment_read.set()
                assert self.callback_done.wait(WAIT_S), "the bank's callback never came"
            return real_attempt(payment)

        def handle_callback(channel: str, *args: Any) -> Any:
            if channel != "unionpay" or self.callback_held:
                return real_callback(channel, *args)
            self.callback_held = True
            assert self.payment_read.wait(WAIT_S), "the confirmation's answer page never read the payment"
            try:
                return real_callback(channel, *args)
            finally:
                self.callback_done.set()

        monkeypatch.setattr(payer, "view", view)
        monkeypatch.setattr(sessions, "current_attempt", current_attempt)
        monkeypatch.setattr(callbacks, "handle_callback", handle_callback)


@pytest.mark.parametrize("run", range(3))
def test_a_callback_between_the_answer_pages_reads_still_shows_success(stack, channel_account, merchant, phone,
                                                                        monkeypatch, run):
    account = channel_account("unionpay", account_id="unionpay-cards", merchant_ids=(merchant.merchant_id,))
    session = new_session(merchant, allowed_methods=["unionpay.card", "wechat.native"])
    page = phone.new_page()
    page.goto(session["url"])
    page.get_by_role("button", name="UnionPay card").click()
    page.get_by_label("Card number").fill("6225 8800 0000 0035")
    page.get_by_label("Expiry month").fill("06")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("Phone number registered with the card").fill("13700137000")
    page.get_by_role("button", name="Send code and pay").click()
    page.get_by_role("heading", name="Enter the SMS code").wait_for()
    payment = attempt_of(merchant, session)
    code = requests.get(f"{account.sandbox_url}/_sandbox/sms/{payment['attempt_id']}", timeout=10).json()["code"]
    page.get_by_role("textbox", name="SMS code").fill(code)
    page.get_by_label("CVV (credit cards)").fill("456")
    race = CallbackBetweenReads()
    race.install(monkeypatch)
    page.get_by_role("button", name="Confirm payment").click()
    assert race.page_done.wait(WAIT_S) and race.callback_done.is_set(), "the race was not forced"
    expect_paid(page, timeout_ms=8_000)  # no reload: the answer page itself, or its polling, shows the success
    assert page.get_by_role("alert").count() == 0  # never "payment not completed" for money taken
    assert attempt_of(merchant, session)["status"] == "succeeded"
