"""End-to-end checks of the Stripe sandbox over real HTTP on 127.0.0.1: authentication, idempotency keys
(docs/channels/stripe.md#idempotency-keys), the PaymentIntent and refund lifecycles, signed webhooks verified with
the HUB's adapter, faults, and balance reports parsed with the hub's parser."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from chalicelib.channels.base import InboundCallback, PaymentOutcome, RefundOutcome, StatementRow, StatementSummary
from chalicelib.channels.stripe import StripeAdapter
from chalicelib.channels.transport import UrllibTransport
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.errors import CallbackRejected, ChannelError
from chalicelib.domain.money import Money
from sandbox.stripe import StripeSandbox

BEIJING = timezone(timedelta(hours=8))
WAIT_S = 5.0
EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
          "payment_intent.requires_action", "payment_intent.processing", "refund.created", "refund.updated",
          "refund.failed", "charge.refunded"]


def wait_for(predicate: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: datetime

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver:
    """Records every webhook; ``status_for(n)`` decides the answer to the n-th one."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status_for: Callable[[int], int] = lambda n: 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                item = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, datetime.now(UTC))
                with receiver._lock:
                    index = len(receiver.received)
                    receiver.received.append(item)
                self.send_response(receiver.status_for(index))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def of_type(self, event_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.event["type"] == event_type]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Merchant:
    base_url: str
    merchant_id: str
    secret_key: str
    webhook_secret: str
    endpoint_id: str

    def call(self, method: str, path: str, data: dict[str, Any] | None = None, *, key: str | None = None,
             secret_key: str | None = None, **headers: str) -> requests.Response:
        sent = {"Authorization": f"Bearer {secret_key or self.secret_key}", "Stripe-Version": "2024-06-20", **headers}
        if key is not None:
            sent["Idempotency-Key"] = key
        if method == "GET":
            return requests.get(self.base_url + path, params=data, headers=sent, timeout=15)
        return requests.request(method, self.base_url + path, data=data, headers=sent, timeout=15)

    def account(self, secrets: list[str] | None = None) -> ChannelAccount:
        config = ChannelAccountConfig(account_id="sbx", channel="stripe", methods=("stripe.card",),
                                      currencies=("USD",), api_base_url=self.base_url,
                                      settings={"merchant_id": self.merchant_id, "publishable_key": "pk"})
        return ChannelAccount(config, ChannelSecrets({"secret_key": self.secret_key,
                                                      "webhook_secrets": secrets or [self.webhook_secret]}))

    def verify(self, item: Received, secrets: list[str] | None = None) -> Any:
        """The hub's own verification of what the sandbox sent."""
        inbound = InboundCallback(headers=item.headers, body=item.body, received_at=item.at)
        return StripeAdapter(UrllibTransport()).verify_and_parse_notification(self.account(secrets), inbound)

    def create(self, attempt_id: str, key: str | None = None, **fields: Any) -> requests.Response:
        data = {"amount": 1000, "currency": "usd", "metadata[attempt_id]": attempt_id, **fields}
        return self.call("POST", "/v1/payment_intents", data, key=key or f"create-{attempt_id}")

    def pay_now(self, attempt_id: str, card: str = "pm_card_visa", **fields: Any) -> dict[str, Any]:
        answer = self.create(attempt_id, payment_method=card, confirm="true", confirmation_method="manual",
                             return_url="https://shop.example/back", **fields)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


@pytest.fixture
def sandbox() -> Iterator[StripeSandbox]:
    box = StripeSandbox(retry_scale=0.0005, refund_settle_s=0.05, event_delay_s=0.0)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def register(sandbox: StripeSandbox, receiver: Receiver, events: list[str] | None = None) -> Merchant:
    answer = requests.post(f"{sandbox.base_url}/_sandbox/merchants", json={}, timeout=5).json()
    endpoint = requests.post(f"{sandbox.base_url}/v1/webhook_endpoints", headers={
        "Authorization": f"Bearer {answer['secret_key']}", "Idempotency-Key": "we-1"}, data={
        "url": receiver.url, **{f"enabled_events[{n}]": e for n, e in enumerate(events or EVENTS)}}, timeout=5)
    assert endpoint.status_code == 200, endpoint.text
    return Merchant(sandbox.base_url, answer["merchant_id"], answer["secret_key"], endpoint.json()["secret"],
                    endpoint.json()["id"])


@pytest.fixture
def merchant(sandbox: StripeSandbox, receiver: Receiver) -> Merchant:
    return register(sandbox, receiver)


def control(sandbox: StripeSandbox, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, sandbox.base_url + path, json=body, timeout=15)


def arm(sandbox: StripeSandbox, fault: str, **options: Any) -> None:
    answer = control(sandbox, "POST", "/_sandbox/faults", {"fault": fault, **options})
    assert answer.status_code == 200, answer.text


# -- authentication, versions, idempotency ----------------------------------------------------------------------------


def test_requests_without_or_with_a_wrong_key_are_401(merchant: Merchant) -> None:
    assert requests.get(f"{merchant.base_url}/v1/payment_intents", timeout=5).status_code == 401
    wrong = merchant.call("GET", "/v1/payment_intents", secret_key="sk_test_guessed0000000000000000000000")
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "invalid_request_error"
    assert "sk_test_guessed0000000000" not in wrong.text  # the key is masked in the message
    basic = requests.get(f"{merchant.base_url}/v1/payment_intents", auth=(merchant.secret_key, ""), timeout=5)
    assert basic.status_code == 200


def test_unknown_api_version_is_refused(merchant: Merchant) -> None:
    answer = merchant.call("GET", "/v1/payment_intents", **{"Stripe-Version": "1999-01-01"})
    assert answer.status_code == 400


def test_idempotent_replay_mismatch_and_validation(merchant: Merchant) -> None:
    first = merchant.create("att_idem", key="k-1")
    replay = merchant.create("att_idem", key="k-1")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    other = merchant.create("att_idem", key="k-1", amount=2000)
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    # A request that fails validation is not stored: the same key works once the request is right.
    invalid = merchant.call("POST", "/v1/payment_intents", {"currency": "usd"}, key="k-2")
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "parameter_missing"
    assert merchant.create("att_idem2", key="k-2").status_code == 200


def test_a_declined_confirmation_is_stored_and_replayed(merchant: Merchant, receiver: Receiver) -> None:
    data = {"payment_method": "pm_card_chargeDeclined", "confirm": "true", "confirmation_method": "manual",
            "return_url": "https://shop.example/back"}
    declined = merchant.create("att_decl", key="k-decl", **data)
    assert declined.status_code == 402
    error = declined.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == ("card_error", "card_declined", "generic_decline")
    assert error["payment_intent"]["status"] == "requires_payment_method"
    again = merchant.create("att_decl", key="k-decl", **data)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (402, "true")
    [failed] = wait_for(lambda: receiver.of_type("payment_intent.payment_failed"))
    [note] = merchant.verify(failed)
    assert note.payment.outcome is PaymentOutcome.FAILED


def test_stored_500_is_replayed_but_an_unstored_one_is_not(sandbox: StripeSandbox, merchant: Merchant) -> None:
    arm(sandbox, "error_5xx", stored=True)
    assert merchant.create("att_500", key="k-500").status_code == 500
    replay = merchant.create("att_500", key="k-500")
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (500, "true")
    assert merchant.create("att_500", key="k-500b").status_code == 200
    arm(sandbox, "error_5xx")
    failed = merchant.create("att_501", key="k-501")
    assert failed.status_code == 500 and failed.headers["Stripe-Should-Retry"] == "true"
    assert merchant.create("att_501", key="k-501").status_code == 200


def test_concurrent_use_of_one_key_is_409(sandbox: StripeSandbox, merchant: Merchant) -> None:
    arm(sandbox, "timeout", delay_s=0.6)
    slow: list[requests.Response] = []
    thread = threading.Thread(target=lambda: slow.append(merchant.create("att_conc", key="k-conc")))
    thread.start()
    time.sleep(0.2)
    clash = merchant.create("att_conc", key="k-conc")
    assert clash.status_code == 409 and clash.json()["error"]["type"] == "idempotency_error"
    thread.join()
    assert slow[0].status_code == 200
    assert merchant.create("att_conc", key="k-conc").headers["Idempotent-Replayed"] == "true"


def test_every_request_is_logged_with_its_key_and_version(sandbox: StripeSandbox, merchant: Merchant) -> None:
    merchant.create("att_log", key="k-log")
    last = control(sandbox, "GET", "/_sandbox/requests").json()["requests"][-1]
    assert (last["path"], last["idempotency_key"], last["stripe_version"], last["status"]) == (
        "/v1/payment_intents", "k-log", "2024-06-20", 200)


# -- amounts --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "currency", "code"), [
    (1234, "kwd", "invalid_amount"), (150, "isk", "invalid_charge_amount_no_decimal_compatible"),
    (0, "usd", "parameter_invalid_integer"), (100, "xyz", "parameter_invalid_string"),
])
def test_amounts_stripe_cannot_take(merchant: Merchant, amount: int, currency: str, code: str) -> None:
    answer = merchant.create("att_amt", amount=amount, currency=currency)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == code


# -- PaymentIntents and 3-D Secure ------------------------------------------------------------------------------------


def test_card_payment_succeeds_and_the_webhook_verifies_with_the_hub(merchant: Merchant, receiver: Receiver) -> None:
    paid = merchant.pay_now("att_visa")
    assert paid["status"] == "succeeded" and paid["latest_charge"].startswith("ch_")
    [item] = wait_for(lambda: receiver.of_type("payment_intent.succeeded"))
    assert item.path == "/hook"
    [note] = merchant.verify(item)
    assert (note.object_id, note.channel_merchant_id, note.payment.outcome) == (
        "att_visa", merchant.merchant_id, PaymentOutcome.SUCCEEDED)
    assert note.payment.amount == Money(1000, "USD")
    assert ",v0=" in item.headers["stripe-signature"]  # test mode's legacy signature, ignored by the hub


def test_three_ds_manual_confirmation_through_the_challenge_page(merchant: Merchant, receiver: Receiver) -> None:
    created = merchant.pay_now("att_3ds", card="pm_card_threeDSecure2Required")
    assert created["status"] == "requires_action"
    url = created["next_action"]["redirect_to_url"]["url"]
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and "Complete" in page.text
    secret = parse_qs(urlsplit(url).query)["client_secret"][0]
    back = requests.post(url.split("?")[0], data={"client_secret": secret, "result": "success"},
                         allow_redirects=False, timeout=5)
    assert back.status_code == 303
    returned = parse_qs(urlsplit(back.headers["Location"]).query)
    assert (returned["payment_intent"], returned["redirect_status"]) == ([created["id"]], ["succeeded"])
    waiting = merchant.call("GET", f"/v1/payment_intents/{created['id']}").json()
    assert waiting["status"] == "requires_confirmation"
    confirmed = merchant.call("POST", f"/v1/payment_intents/{created['id']}/confirm", {}, key="c-1")
    assert confirmed.json()["status"] == "succeeded"
    assert wait_for(lambda: receiver.of_type("payment_intent.succeeded"))
    [action] = receiver.of_type("payment_intent.requires_action")
    assert merchant.verify(action)[0].payment.outcome is PaymentOutcome.PENDING


def test_sandbox_pay_completes_the_challenge_or_fails_it(sandbox: StripeSandbox, merchant: Merchant,
                                                         receiver: Receiver) -> None:
    merchant.pay_now("att_3ds_ok", card="pm_card_threeDSecure2Required")
    answer = control(sandbox, "POST", "/_sandbox/pay", {"out_trade_no": "att_3ds_ok"})
    assert answer.json()["payment_intent"]["status"] == "requires_confirmation"
    assert control(sandbox, "POST", "/_sandbox/pay", {"out_trade_no": "att_3ds_ok"}).status_code == 409
    merchant.pay_now("att_3ds_no", card="pm_card_threeDSecure2Required")
    failed = control(sandbox, "POST", "/_sandbox/pay", {"out_trade_no": "att_3ds_no", "result": "fail"})
    assert failed.json()["payment_intent"]["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    assert control(sandbox, "POST", "/_sandbox/pay", {"out_trade_no": "att_nobody"}).status_code == 404


def test_sandbox_pay_of_a_stripe_js_intent_attaches_a_test_card(sandbox: StripeSandbox, merchant: Merchant,
                                                                receiver: Receiver) -> None:
    merchant.create("att_js")
    paid = control(sandbox, "POST", "/_sandbox/pay", {"out_trade_no": "att_js"}).json()["payment_intent"]
    assert (paid["status"], paid["payment_method"]) == ("succeeded", "pm_card_visa")
    [item] = wait_for(lambda: receiver.of_type("payment_intent.succeeded"))
    assert merchant.verify(item)[0].object_id == "att_js"


def test_cancel_and_the_unexpected_states(merchant: Merchant, receiver: Receiver) -> None:
    open_intent = merchant.create("att_cancel").json()
    canceled = merchant.call("POST", f"/v1/payment_intents/{open_intent['id']}/cancel",
                             {"cancellation_reason": "abandoned"}, key="x-1")
    assert canceled.json()["status"] == "canceled"
    assert wait_for(lambda: receiver.of_type("payment_intent.canceled"))
    paid = merchant.pay_now("att_cancel_paid")
    refused = merchant.call("POST", f"/v1/payment_intents/{paid['id']}/cancel", {}, key="x-2")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "payment_intent_unexpected_state"


def test_search_list_and_the_search_lag(sandbox: StripeSandbox, receiver: Receiver) -> None:
    lagging = StripeSandbox(retry_scale=0.001, search_lag_s=30)
    lagging.start()
    try:
        merchant = register(lagging, receiver)
        created = merchant.create("att_lag").json()
        query = {"query": "metadata['attempt_id']:'att_lag'"}
        assert merchant.call("GET", "/v1/payment_intents/search", query).json()["data"] == []
        listed = merchant.call("GET", "/v1/payment_intents", {"limit": 1}).json()
        assert [i["id"] for i in listed["data"]] == [created["id"]]
        # The hub's adapter finds it anyway: an empty search falls back to listing.
        status = StripeAdapter(UrllibTransport()).query(merchant.account(), "att_lag", Money(1000, "USD"))
        assert status.channel_transaction_id == created["id"]
    finally:
        lagging.stop()
    merchant = register(sandbox, receiver)
    created = merchant.create("att_find").json()
    found = merchant.call("GET", "/v1/payment_intents/search", {"query": "metadata['attempt_id']:'ATT_FIND'"}).json()
    assert [i["id"] for i in found["data"]] == [created["id"]]  # search is case-insensitive


def test_expand_latest_charge_gives_the_charge_and_its_time(merchant: Merchant) -> None:
    paid = merchant.pay_now("att_expand")
    expanded = merchant.call("GET", f"/v1/payment_intents/{paid['id']}", {"expand[]": "latest_charge"}).json()
    charge = expanded["latest_charge"]
    assert (charge["object"], charge["id"], charge["payment_intent"]) == ("charge", paid["latest_charge"], paid["id"])
    assert isinstance(charge["created"], int) and charge["created"] >= paid["created"]
    status = StripeAdapter(UrllibTransport()).query(merchant.account(), "att_expand", Money(1000, "USD"),
                                                    channel_order_ref=paid["id"])
    assert status.paid_at == datetime.fromtimestamp(charge["created"], UTC)
    refused = merchant.call("GET", f"/v1/payment_intents/{paid['id']}", {"expand[]": "customer"})
    assert refused.status_code == 400 and "cannot be expanded" in refused.json()["error"]["message"]


def test_the_hubs_adapter_reads_and_cancels_by_id_what_search_does_not_show_yet(receiver: Receiver) -> None:
    lagging = StripeSandbox(retry_scale=0.001, search_lag_s=30)
    lagging.start()
    try:
        merchant = register(lagging, receiver)
        created = merchant.create("att_lag_close").json()
        adapter = StripeAdapter(UrllibTransport())
        status = adapter.query(merchant.account(), "att_lag_close", Money(1000, "USD"), channel_order_ref=created["id"])
        assert (status.outcome, status.channel_transaction_id) == (PaymentOutcome.PENDING, created["id"])
        adapter.close(merchant.account(), "att_lag_close", channel_order_ref=created["id"])
        assert merchant.call("GET", f"/v1/payment_intents/{created['id']}").json()["status"] == "canceled"
    finally:
        lagging.stop()


def test_forget_makes_the_order_unknown(sandbox: StripeSandbox, merchant: Merchant) -> None:
    paid = merchant.pay_now("att_forget")
    assert control(sandbox, "POST", "/_sandbox/orders/att_forget/forget").status_code == 200
    assert merchant.call("GET", f"/v1/payment_intents/{paid['id']}").status_code == 404
    status = StripeAdapter(UrllibTransport()).query(merchant.account(), "att_forget", Money(1000, "USD"))
    assert status.outcome is PaymentOutcome.NOT_FOUND


# -- refunds -----------------------------------------------------------------------------------------------------------


def test_refund_goes_pending_then_succeeded(merchant: Merchant, receiver: Receiver) -> None:
    paid = merchant.pay_now("att_refund")
    created = merchant.call("POST", "/v1/refunds", {"payment_intent": paid["id"], "amount": 300,
                                                    "metadata[refund_id]": "re_hub1"}, key="r-1")
    assert created.json()["status"] == "pending"
    [updated] = wait_for(lambda: receiver.of_type("refund.updated"))
    [note] = merchant.verify(updated)
    assert (note.object_id, note.refund.outcome) == ("re_hub1", RefundOutcome.SUCCEEDED)
    assert merchant.verify(receiver.of_type("refund.created")[0])[0].refund.outcome is RefundOutcome.PROCESSING
    assert merchant.verify(wait_for(lambda: receiver.of_type("charge.refunded"))[0]) == []
    too_much = merchant.call("POST", "/v1/refunds", {"payment_intent": paid["id"], "amount": 701}, key="r-2")
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "amount_too_large"
    status = StripeAdapter(UrllibTransport()).query_refund(merchant.account(), "re_hub1", Money(300, "USD"))
    assert status.outcome is RefundOutcome.SUCCEEDED


def test_refund_on_a_refund_fail_card_fails_after_pending(merchant: Merchant, receiver: Receiver) -> None:
    paid = merchant.pay_now("att_rf", card="pm_card_refundFail")
    merchant.call("POST", "/v1/refunds", {"payment_intent": paid["id"], "metadata[refund_id]": "re_hub2"}, key="r-3")
    [failed] = wait_for(lambda: receiver.of_type("refund.failed"))
    [note] = merchant.verify(failed)
    assert note.refund.outcome is RefundOutcome.FAILED and note.refund.raw_status == "failed:expired_or_canceled_card"


def test_control_api_fails_a_succeeded_refund(sandbox: StripeSandbox, merchant: Merchant, receiver: Receiver) -> None:
    paid = merchant.pay_now("att_rf2")
    merchant.call("POST", "/v1/refunds", {"payment_intent": paid["id"], "metadata[refund_id]": "re_hub3"}, key="r-4")
    wait_for(lambda: receiver.of_type("refund.updated"))
    assert control(sandbox, "POST", "/_sandbox/refunds/re_hub3/fail").json()["refund"]["status"] == "failed"
    assert wait_for(lambda: receiver.of_type("refund.failed"))


# -- webhooks: secrets, retries, faults ----------------------------------------------------------------------------------


def test_rolled_secret_signs_with_both_until_the_old_one_expires(sandbox: StripeSandbox, merchant: Merchant,
                                                                 receiver: Receiver) -> None:
    rolled = control(sandbox, "POST", f"/_sandbox/webhook_endpoints/{merchant.endpoint_id}/roll",
                     {"expire_old_in_s": 3600}).json()
    merchant.pay_now("att_roll")
    [item] = wait_for(lambda: receiver.of_type("payment_intent.succeeded"))
    assert item.headers["stripe-signature"].count("v1=") == 2
    assert merchant.verify(item, [merchant.webhook_secret])
    assert merchant.verify(item, [rolled["secret"]])
    control(sandbox, "POST", f"/_sandbox/webhook_endpoints/{merchant.endpoint_id}/roll", {"expire_old_in_s": 0})
    merchant.pay_now("att_roll2")
    item = wait_for(lambda: [r for r in receiver.of_type("payment_intent.succeeded") if b"att_roll2" in r.body])[0]
    assert item.headers["stripe-signature"].count("v1=") == 1
    with pytest.raises(CallbackRejected):
        merchant.verify(item, [merchant.webhook_secret, rolled["secret"]])


def test_failed_deliveries_are_retried(sandbox: StripeSandbox, merchant: Merchant, receiver: Receiver) -> None:
    receiver.status_for = lambda n: 500 if n < 2 else 200
    merchant.pay_now("att_retry")
    wait_for(lambda: len(receiver.of_type("payment_intent.succeeded")) == 3)
    attempts = control(sandbox, "GET", "/_sandbox/deliveries?out_trade_no=att_retry&event_type=payment_intent.succeeded")
    assert [(a["attempt"], a["status_code"]) for a in attempts.json()["attempts"]] == [(1, 500), (2, 500), (3, 200)]


@pytest.mark.parametrize("fault", ["forged", "tampered", "stale", "forged_callback"])
def test_spoiled_first_delivery_is_rejected_by_the_hub_and_the_retry_verifies(
        sandbox: StripeSandbox, merchant: Merchant, receiver: Receiver, fault: str) -> None:
    arm(sandbox, fault, event_type="payment_intent.succeeded")
    receiver.status_for = lambda n: 400 if n == 0 else 200  # the hub rejects the spoiled one
    merchant.pay_now(f"att_{fault}")
    first, second = wait_for(lambda: len(receiver.of_type("payment_intent.succeeded")) >= 2
                             and receiver.of_type("payment_intent.succeeded"))
    with pytest.raises(CallbackRejected):
        merchant.verify(first)
    assert merchant.verify(second)[0].payment.outcome is PaymentOutcome.SUCCEEDED
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"]


def test_duplicate_late_and_suppressed_deliveries(sandbox: StripeSandbox, merchant: Merchant, receiver: Receiver) -> None:
    arm(sandbox, "duplicate_callback", copies=4, event_type="payment_intent.succeeded")
    merchant.pay_now("att_dup")
    copies = wait_for(lambda: len(receiver.of_type("payment_intent.succeeded")) == 4 and
                      receiver.of_type("payment_intent.succeeded"))
    assert len({c.event["id"] for c in copies}) == 1
    arm(sandbox, "no_callback", event_type="payment_intent.succeeded")
    merchant.pay_now("att_none")
    suppressed = control(sandbox, "GET", "/_sandbox/deliveries?out_trade_no=att_none").json()["suppressed"]
    assert [s["fault"] for s in suppressed] == ["no_callback"]
    arm(sandbox, "late", delay_s=0.4, event_type="payment_intent.succeeded")
    started = time.monotonic()
    merchant.pay_now("att_late")
    wait_for(lambda: [r for r in receiver.of_type("payment_intent.succeeded") if b"att_late" in r.body])
    assert time.monotonic() - started >= 0.4


def test_out_of_order_sends_the_refund_before_the_payment(sandbox: StripeSandbox, merchant: Merchant,
                                                          receiver: Receiver) -> None:
    arm(sandbox, "out_of_order")
    paid = merchant.pay_now("att_ooo")
    time.sleep(0.1)
    assert receiver.of_type("payment_intent.succeeded") == []
    merchant.call("POST", "/v1/refunds", {"payment_intent": paid["id"], "metadata[refund_id]": "re_ooo"}, key="r-ooo")
    wait_for(lambda: receiver.of_type("payment_intent.succeeded"))
    order = [r.event["type"] for r in receiver.received]
    assert order.index("refund.created") < order.index("payment_intent.succeeded")


def test_unsubscribed_events_are_not_sent(sandbox: StripeSandbox, receiver: Receiver) -> None:
    merchant = register(sandbox, receiver, events=["refund.updated"])
    merchant.pay_now("att_quiet")
    time.sleep(0.2)
    assert receiver.received == []


# -- reports -------------------------------------------------------------------------------------------------------------


def _statement(merchant: Merchant) -> list[StatementRow | StatementSummary]:
    adapter = StripeAdapter(UrllibTransport())
    today = datetime.now(BEIJING).date().isoformat()
    return list(adapter.parse_statement(merchant.account(), adapter.fetch_statement(merchant.account(), today)))


def _day() -> str:
    return datetime.now(BEIJING).date().isoformat()


def test_balance_reports_are_real_csv_parsed_by_the_hub(merchant: Merchant, receiver: Receiver) -> None:
    paid = merchant.pay_now("att_rep", amount=2000)
    merchant.pay_now("att_rep_jpy", amount=500, currency="jpy")
    merchant.call("POST", "/v1/refunds", {"payment_intent": paid["id"], "amount": 500,
                                          "metadata[refund_id]": "re_rep"}, key="r-rep")
    *rows, = _statement(merchant)
    payments = {r.object_id: r for r in rows if isinstance(r, StatementRow) and r.kind.value == "payment"}
    assert payments["att_rep"].amount == Money(2000, "USD") and payments["att_rep"].fee == Money(88, "USD")
    assert payments["att_rep_jpy"].amount == Money(500, "JPY")
    [refund] = [r for r in rows if isinstance(r, StatementRow) and r.kind.value == "refund"]
    assert (refund.object_id, refund.attempt_id, refund.amount) == ("re_rep", "att_rep", Money(500, "USD"))
    assert not any(isinstance(r, StatementSummary) for r in rows)  # two currencies: no single total


def test_report_run_is_pending_first_when_reports_take_time(receiver: Receiver) -> None:
    slow = StripeSandbox(retry_scale=0.001, report_delay_s=0.3)
    slow.start()
    try:
        merchant = register(slow, receiver)
        merchant.pay_now("att_slow")
        start = int(datetime.now(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
        run = merchant.call("POST", "/v1/reporting/report_runs", {
            "report_type": "balance_change_from_activity.summary.1", "parameters[interval_start]": start,
            "parameters[interval_end]": start + 86_400}, key="run-1").json()
        assert run["status"] == "pending" and run["result"] is None
        time.sleep(0.35)
        done = merchant.call("GET", f"/v1/reporting/report_runs/{run['id']}").json()
        assert done["status"] == "succeeded"
        csv_text = merchant.call("GET", urlsplit(done["result"]["url"]).path).text
        assert csv_text.splitlines()[0] == "reporting_category,currency,count,gross,fee,net"
        future = merchant.call("POST", "/v1/reporting/report_runs", {
            "report_type": "balance_change_from_activity.summary.1", "parameters[interval_start]": start + 86_400,
            "parameters[interval_end]": start + 2 * 86_400}, key="run-2")
        assert future.status_code == 400  # tomorrow's data is not available
    finally:
        slow.stop()


def test_report_files_belong_to_their_account(sandbox: StripeSandbox, merchant: Merchant, receiver: Receiver) -> None:
    other = register(sandbox, receiver)
    start = int(datetime.now(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    run = merchant.call("POST", "/v1/reporting/report_runs", {
        "report_type": "balance_change_from_activity.summary.1", "parameters[interval_start]": start,
        "parameters[interval_end]": start + 86_400}, key="run-own").json()
    path = urlsplit(run["result"]["url"]).path
    assert merchant.call("GET", path).status_code == 200
    assert other.call("GET", path).status_code == 404


def _arm_statement(sandbox: StripeSandbox, kind: str, **fields: Any) -> None:
    answer = control(sandbox, "POST", "/_sandbox/statement-faults", {"day": _day(), "kind": kind, **fields})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(("kind", "fields", "check"), [
    ("drop_row", {}, lambda rows: "att_sf" not in [r.object_id for r in rows]),
    ("extra_row", {"out_trade_no": "att_ghost", "amount": 777, "currency": "usd"},
     lambda rows: [r.amount for r in rows if r.object_id == "att_ghost"] == [Money(777, "USD")]),
    ("amount", {"delta": 5}, lambda rows: [r.amount for r in rows if r.object_id == "att_sf"] == [Money(1005, "USD")]),
    ("currency", {"currency": "eur"}, lambda rows: [r.amount.currency for r in rows if r.object_id == "att_sf"] == ["EUR"]),
    ("status", {"status": "failed"}, lambda rows: [r.status for r in rows if r.object_id == "att_sf"] == ["failed"]),
    ("fee", {"fee": 1}, lambda rows: [r.fee for r in rows if r.object_id == "att_sf"] == [Money(1, "USD")]),
    ("duplicate_row", {}, lambda rows: len([r for r in rows if r.object_id == "att_sf"]) == 2),
])
def test_statement_faults(sandbox: StripeSandbox, merchant: Merchant, kind: str, fields: dict[str, Any],
                          check: Callable[[list[StatementRow]], bool]) -> None:
    merchant.pay_now("att_sf")
    merchant.pay_now("att_sf_other")
    clean = [r for r in _statement(merchant) if isinstance(r, StatementRow)]
    assert [r.object_id for r in clean] == ["att_sf", "att_sf_other"]
    _arm_statement(sandbox, kind, **{"out_trade_no": "att_sf", **fields})
    parsed = _statement(merchant)
    rows = [r for r in parsed if isinstance(r, StatementRow)]
    assert check(rows)
    untouched = [replace(r, line=0) for r in rows if r.object_id == "att_sf_other"]
    assert untouched == [replace(r, line=0) for r in clean if r.object_id == "att_sf_other"]
    summary = parsed[-1]
    if kind != "currency":  # the summary is computed from the rows as rendered: the file is consistent with itself
        assert isinstance(summary, StatementSummary)
        succeeded = [r for r in rows if r.status == "succeeded"]
        assert summary.count == len(rows)
        assert summary.payments == Money(sum(r.amount.minor for r in succeeded), "USD")
        assert summary.fees == Money(sum(r.fee.minor for r in rows if r.fee), "USD")
    control(sandbox, "DELETE", "/_sandbox/statement-faults")
    assert [r for r in _statement(merchant) if isinstance(r, StatementRow)] == clean


def test_corrupt_statement_fails_to_parse_naming_the_line(sandbox: StripeSandbox, merchant: Merchant) -> None:
    merchant.pay_now("att_corrupt")
    _arm_statement(sandbox, "corrupt")
    with pytest.raises(ChannelError, match="line 3"):
        _statement(merchant)


def test_forgotten_orders_are_left_out_of_statements(sandbox: StripeSandbox, merchant: Merchant) -> None:
    merchant.pay_now("att_keep")
    merchant.pay_now("att_lost")
    control(sandbox, "POST", "/_sandbox/orders/att_lost/forget")
    assert [r.object_id for r in _statement(merchant) if isinstance(r, StatementRow)] == ["att_keep"]


def test_ledger_books_fees(sandbox: StripeSandbox, merchant: Merchant) -> None:
    merchant.pay_now("att_fee", amount=10_000)
    [entry] = control(sandbox, "GET", f"/_sandbox/ledger?merchant_id={merchant.merchant_id}").json()["entries"]
    assert (entry["amount"], entry["fee"], entry["net"], entry["reporting_category"]) == (10_000, 320, 9_680, "charge")
