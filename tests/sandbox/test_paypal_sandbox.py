"""The PayPal sandbox over real HTTP on 127.0.0.1: OAuth, Orders v2, captures, refunds, signed webhooks (checked by
the HUB's verifier in the receiving endpoint), certificate rotation, the verify API, faults, Transaction Search
statements and statement faults, the approval page and the control API."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from chalicelib.channels.base import InboundCallback, NotificationKind, PaymentOutcome, RefundOutcome
from chalicelib.channels.paypal import PayPalAdapter
from chalicelib.channels.transport import UrllibTransport
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.errors import CallbackRejected, ChannelError
from infra.local.provision.paypal import register_webhook
from sandbox.paypal import PayPalSandbox

BEIJING = timezone(timedelta(hours=8))
WAIT_S = 5.0


def wait_for(predicate: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s")


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int
    event: dict[str, Any]


@dataclass
class Receiver:
    """A merchant endpoint that verifies each webhook with the hub's adapter and answers like the hub does."""

    account: ChannelAccount | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapter: PayPalAdapter = field(default_factory=lambda: PayPalAdapter(UrllibTransport()))

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        status = 200
        try:
            assert self.account is not None
            self.adapter.verify_and_parse_notification(self.account, InboundCallback(headers, body, datetime.now(UTC)))
        except CallbackRejected:
            status = 400
        with self.lock:
            self.deliveries.append(Delivery(headers, body, status, json.loads(body)))
        return status

    def accepted(self, event_type: str, **resource: Any) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.status == 200 and d.event["event_type"] == event_type
                    and all(_resource_value(d.event["resource"], k) == v for k, v in resource.items())]

    def all_for(self, attempt_id: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if attempt_id in d.body.decode()]


def _resource_value(resource: dict[str, Any], key: str) -> Any:
    if key == "attempt":
        return resource.get("custom_id") or resource.get("purchase_units", [{}])[0].get("custom_id")
    return resource.get(key)


@dataclass
class App:
    base_url: str
    sandbox: PayPalSandbox
    client_id: str
    client_secret: str
    merchant_id: str
    webhook_id: str
    registration: dict[str, Any]
    receiver: Receiver

    def account(self, *, mode: str = "certificate", pinned: dict[str, str] | None = None) -> ChannelAccount:
        config = ChannelAccountConfig(
            account_id="paypal-sandbox-test", channel="paypal", methods=("paypal.wallet",), currencies=("USD", "JPY"),
            api_base_url=self.base_url, settings={"merchant_id": self.merchant_id, "webhook_id": self.webhook_id,
                                                  "webhook_verification": mode})
        return ChannelAccount(config, ChannelSecrets({
            "client_id": self.client_id, "client_secret": self.client_secret,
            "webhook_cert_roots": self.registration["cert_roots"],
            "webhook_certs": self.registration["webhook_certs"] if pinned is None else pinned}))

    def token(self) -> str:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        answer = requests.post(f"{self.base_url}/v1/oauth2/token", data="grant_type=client_credentials", timeout=5,
                               headers={"Authorization": f"Basic {basic}",
                                        "Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def rest(self, method: str, path: str, body: Any = None, *, request_id: str | None = None,
             token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token()}", "Content-Type": "application/json"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=5,
                                data=None if body is None else json.dumps(body))

    def create_order(self, attempt_id: str, value: str = "10.00", currency: str = "USD") -> dict[str, Any]:
        answer = self.rest("POST", "/v2/checkout/orders", {
            "intent": "CAPTURE",
            "purchase_units": [{"reference_id": attempt_id, "custom_id": attempt_id, "invoice_id": attempt_id,
                                "amount": {"currency_code": currency, "value": value}}],
            "application_context": {"return_url": "https://shop.example/back", "cancel_url": "https://shop.example/x"}},
            request_id=f"{attempt_id}-create")
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def control(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.base_url}/_sandbox{path}", json=body, timeout=5)

    def pay(self, attempt_id: str, result: str = "success") -> None:
        answer = self.control("POST", "/pay", {"out_trade_no": attempt_id, "result": result})
        assert answer.status_code == 200, answer.text

    def capture(self, order_id: str, attempt_id: str) -> requests.Response:
        return self.rest("POST", f"/v2/checkout/orders/{order_id}/capture", {}, request_id=f"{attempt_id}-capture")


@pytest.fixture(scope="module")
def app() -> Iterator[App]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sandbox = PayPalSandbox(retry_scale=0.001)
    base_url = sandbox.start()
    registration = requests.post(f"{base_url}/_sandbox/merchants", json={}, timeout=5).json()
    webhook_id = register_webhook(base_url, registration["client_id"], registration["client_secret"],
                                  f"http://127.0.0.1:{server.server_address[1]}/callbacks/paypal/test")
    app = App(base_url, sandbox, registration["client_id"], registration["client_secret"], registration["merchant_id"],
              webhook_id, registration, receiver)
    receiver.account = app.account()
    yield app
    sandbox.stop()
    server.shutdown()


@pytest.fixture(autouse=True)
def clean_faults(app: App) -> Iterator[None]:
    yield
    app.control("DELETE", "/faults")
    app.control("DELETE", "/statement-faults")


def attempt() -> str:
    return f"att_{uuid.uuid4().hex[:24]}"


# -- authentication -------------------------------------------------------------------------------------------


def test_oauth_refuses_a_wrong_secret_and_the_api_refuses_missing_or_bad_tokens(app):
    basic = base64.b64encode(f"{app.client_id}:wrong".encode()).decode()
    answer = requests.post(f"{app.base_url}/v1/oauth2/token", data="grant_type=client_credentials", timeout=5,
                           headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    for headers in ({}, {"Authorization": "Bearer A21AAforged"}, {"Authorization": f"Basic {basic}"}):
        answer = requests.get(f"{app.base_url}/v2/checkout/orders/ABCDEFGHIJKLMNOPQ", headers=headers, timeout=5)
        assert answer.status_code == 401 and answer.json()["name"] == "AUTHENTICATION_FAILURE"


def test_a_revoked_token_is_refused_and_the_hub_renews_it(app):
    paypal = PayPalAdapter(UrllibTransport())
    account = app.account()
    order = app.create_order(attempt())
    assert paypal.query(account, order["id"], None).outcome is PaymentOutcome.PENDING  # type: ignore[arg-type]
    app.control("POST", "/tokens/revoke")
    assert paypal.query(account, order["id"], None).outcome is PaymentOutcome.PENDING  # type: ignore[arg-type]


# -- orders and captures ----------------------------------------------------------------------------------------


def test_create_is_idempotent_by_request_id_and_checks_amounts(app):
    attempt_id = attempt()
    first, second = app.create_order(attempt_id), app.create_order(attempt_id)
    assert first["id"] == second["id"] and first["status"] == "CREATED"
    assert any(link["rel"] == "approve" for link in first["links"])
    for currency, value, issue in (("JPY", "10.50", "DECIMAL_PRECISION"), ("USD", "1.005", "DECIMAL_PRECISION"),
                                   ("KRW", "100", "CURRENCY_NOT_SUPPORTED"), ("USD", "0.00", "AMOUNT_MUST_BE_POSITIVE")):
        answer = app.rest("POST", "/v2/checkout/orders", {"intent": "CAPTURE", "purchase_units": [
            {"amount": {"currency_code": currency, "value": value}}]})
        assert answer.status_code == 422 and answer.json()["details"][0]["issue"] == issue


def test_pay_approves_and_the_hub_verifies_the_approval_webhook_then_captures(app):
    attempt_id = attempt()
    order = app.create_order(attempt_id)
    early = app.capture(order["id"], attempt_id)
    assert early.status_code == 422 and early.json()["details"][0]["issue"] == "ORDER_NOT_APPROVED"
    app.pay(attempt_id)
    approved = wait_for(lambda: app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=attempt_id))[0]
    assert approved.event["resource"]["status"] == "APPROVED"
    captured = app.capture(order["id"], attempt_id)
    assert captured.status_code == 201
    capture = captured.json()["purchase_units"][0]["payments"]["captures"][0]
    assert capture["status"] == "COMPLETED" and capture["custom_id"] == attempt_id
    again = app.capture(order["id"], attempt_id)  # same PayPal-Request-Id: the original answer
    assert again.status_code == 201 and again.json() == captured.json()
    other_id = app.rest("POST", f"/v2/checkout/orders/{order['id']}/capture", {}, request_id="another")
    assert other_id.status_code == 422 and other_id.json()["details"][0]["issue"] == "ORDER_ALREADY_CAPTURED"
    done = wait_for(lambda: app.receiver.accepted("PAYMENT.CAPTURE.COMPLETED", attempt=attempt_id))
    assert done[0].event["resource"]["id"] == capture["id"]


def test_the_hub_adapter_drives_a_whole_payment_and_refund_against_the_sandbox(app):
    from chalicelib.channels.base import ConfirmRequest, RefundRequest
    from chalicelib.domain.money import Money

    attempt_id = attempt()
    order = app.create_order(attempt_id, value="1500", currency="JPY")
    paypal = PayPalAdapter(UrllibTransport())
    account = app.account()
    app.pay(attempt_id)
    assert paypal.query(account, order["id"], Money(1500, "JPY")).outcome is PaymentOutcome.REQUIRES_CONFIRMATION
    confirmed = paypal.confirm(account, ConfirmRequest(attempt_id, "paypal.wallet", order["id"], Money(1500, "JPY"), "x"))
    assert confirmed.status.outcome is PaymentOutcome.SUCCEEDED and confirmed.status.amount == Money(1500, "JPY")
    capture_id = confirmed.status.channel_transaction_id
    refund = paypal.refund(account, RefundRequest("re_" + uuid.uuid4().hex[:20], attempt_id, capture_id,
                                                  Money(500, "JPY"), Money(1500, "JPY"), None, "x"))
    assert refund.outcome is RefundOutcome.SUCCEEDED and refund.amount == Money(500, "JPY")
    with pytest.raises(ChannelError) as caught:
        paypal.refund(account, RefundRequest("re_" + uuid.uuid4().hex[:20], attempt_id, capture_id,
                                             Money(1001, "JPY"), Money(1500, "JPY"), None, "x"))
    assert caught.value.refused and caught.value.channel_code == "REFUND_AMOUNT_EXCEEDED"
    with pytest.raises(ChannelError) as closing:
        paypal.close(account, order["id"])
    assert closing.value.channel_code == "ORDERPAID"


def test_an_invoice_id_is_captured_once_per_account(app):
    attempt_id = attempt()
    first = app.create_order(attempt_id)
    app.pay(attempt_id)
    assert app.capture(first["id"], attempt_id).status_code == 201
    second = app.create_order(attempt_id + "x")  # another order...
    answer = app.rest("POST", "/v2/checkout/orders", {"intent": "CAPTURE", "purchase_units": [  # ...same invoice_id
        {"custom_id": attempt_id, "invoice_id": attempt_id, "amount": {"currency_code": "USD", "value": "1.00"}}]})
    duplicate = answer.json()
    app.control("POST", "/pay", {"out_trade_no": duplicate["id"]})
    refused = app.rest("POST", f"/v2/checkout/orders/{duplicate['id']}/capture", {})
    assert refused.status_code == 422 and refused.json()["details"][0]["issue"] == "DUPLICATE_INVOICE_ID"
    assert second["status"] == "CREATED"


def test_refund_webhook_and_refund_reads(app):
    attempt_id = attempt()
    order = app.create_order(attempt_id)
    app.pay(attempt_id)
    capture = app.capture(order["id"], attempt_id).json()["purchase_units"][0]["payments"]["captures"][0]
    refund = app.rest("POST", f"/v2/payments/captures/{capture['id']}/refund",
                      {"amount": {"currency_code": "USD", "value": "4.00"}, "invoice_id": "re_one", "custom_id": "re_one"},
                      request_id="re_one-refund").json()
    assert refund["status"] == "COMPLETED"
    delivered = wait_for(lambda: app.receiver.accepted("PAYMENT.CAPTURE.REFUNDED", custom_id="re_one"))
    assert delivered[0].event["resource"]["id"] == refund["id"]
    assert app.rest("GET", f"/v2/payments/refunds/{refund['id']}").json()["status"] == "COMPLETED"
    assert app.rest("GET", f"/v2/payments/captures/{capture['id']}").json()["status"] == "PARTIALLY_REFUNDED"
    order_now = app.rest("GET", f"/v2/checkout/orders/{order['id']}").json()
    assert order_now["purchase_units"][0]["payments"]["refunds"][0]["invoice_id"] == "re_one"


@pytest.mark.parametrize(("result", "status", "event_type"), [("fail", "DECLINED", "PAYMENT.CAPTURE.DENIED"),
                                                              ("pending", "PENDING", "PAYMENT.CAPTURE.PENDING")])
def test_declined_and_held_captures(app, result, status, event_type):
    attempt_id = attempt()
    order = app.create_order(attempt_id)
    app.pay(attempt_id, result)
    capture = app.capture(order["id"], attempt_id).json()["purchase_units"][0]["payments"]["captures"][0]
    assert capture["status"] == status
    wait_for(lambda: app.receiver.accepted(event_type, attempt=attempt_id))
    if result == "pending":
        settled = app.control("POST", f"/captures/{capture['id']}/settle", {"result": "success"})
        assert settled.json()["status"] == "COMPLETED"
        wait_for(lambda: app.receiver.accepted("PAYMENT.CAPTURE.COMPLETED", attempt=attempt_id))


# -- webhooks: verification, rotation, verify API, faults -----------------------------------------------------------


def test_the_certificate_url_serves_a_chain_to_the_test_root(app):
    from chalicelib.channels.paypal.certificates import validate_chain

    served = requests.get(app.registration["cert_url"], timeout=5)
    assert served.status_code == 200
    key = validate_chain(served.text, tuple(app.registration["cert_roots"].values()))
    key.check_time(datetime.now(UTC))
    assert key.subject_cn.endswith(".paypal.com")


def test_the_verify_api_accepts_a_genuine_webhook_and_refuses_a_changed_one(app):
    attempt_id = attempt()
    app.create_order(attempt_id)
    app.pay(attempt_id)
    delivery = wait_for(lambda: app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=attempt_id))[0]
    api_account = app.account(mode="api", pinned={})
    verified = PayPalAdapter(UrllibTransport()).verify_and_parse_notification(
        api_account, InboundCallback(delivery.headers, delivery.body, datetime.now(UTC)))
    assert verified.payment is not None and verified.payment.outcome is PaymentOutcome.REQUIRES_CONFIRMATION
    changed = delivery.body.replace(b'"status":"APPROVED"', b'"status":"COMPLETED"', 1)
    with pytest.raises(CallbackRejected):
        PayPalAdapter(UrllibTransport()).verify_and_parse_notification(
            api_account, InboundCallback(delivery.headers, changed, datetime.now(UTC)))


def test_certificate_rotation_with_overlap(app):
    old_attempt = attempt()
    app.create_order(old_attempt)
    app.pay(old_attempt)
    old = wait_for(lambda: app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=old_attempt))[0]
    rotated = app.control("POST", "/certs/rotate").json()
    app.receiver.account = app.account(pinned=rotated["webhook_certs"])  # the operator adds the new certificate
    new_attempt = attempt()
    app.create_order(new_attempt)
    app.pay(new_attempt)
    new = wait_for(lambda: app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=new_attempt))[0]
    assert new.headers["paypal-cert-url"] == rotated["cert_url"] != old.headers["paypal-cert-url"]
    paypal = PayPalAdapter(UrllibTransport())
    both = app.account(pinned=rotated["webhook_certs"])
    for delivery in (old, new):
        paypal.verify_and_parse_notification(both, InboundCallback(delivery.headers, delivery.body, datetime.now(UTC)))
    only_new = app.account(pinned={rotated["cert_url"]: rotated["webhook_certs"][rotated["cert_url"]]})
    paypal.verify_and_parse_notification(only_new, InboundCallback(new.headers, new.body, datetime.now(UTC)))
    with pytest.raises(CallbackRejected):
        paypal.verify_and_parse_notification(only_new, InboundCallback(old.headers, old.body, datetime.now(UTC)))


@pytest.mark.parametrize("fault", ["forged", "tampered", "stale"])
def test_spoiled_webhooks_are_rejected_by_the_hub_and_the_retry_is_genuine(app, fault):
    app.control("POST", "/faults", {"fault": fault})
    attempt_id = attempt()
    app.create_order(attempt_id)
    app.pay(attempt_id)
    wait_for(lambda: app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=attempt_id))
    statuses = [d.status for d in app.receiver.all_for(attempt_id)]
    assert statuses[0] == 400 and statuses[-1] == 200
    attempts = app.control("GET", f"/deliveries?out_trade_no={attempt_id}").json()["attempts"]
    assert attempts[0]["fault"] == fault and attempts[0]["status_code"] == 400 and attempts[-1]["delivered"]


def test_duplicate_no_callback_and_late_faults(app):
    app.control("POST", "/faults", {"fault": "duplicate_callback", "copies": 3})
    dup = attempt()
    app.create_order(dup)
    app.pay(dup)
    copies = wait_for(lambda: len(app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=dup)) == 3 and
                      app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=dup))
    assert len({c.event["id"] for c in copies}) == 1  # one event id: the hub dedupes on it
    assert len({c.headers["paypal-transmission-id"] for c in copies}) == 3
    app.control("POST", "/faults", {"fault": "no_callback"})
    silent = attempt()
    app.create_order(silent)
    app.pay(silent)
    suppressed = app.control("GET", f"/deliveries?out_trade_no={silent}").json()["suppressed"]
    assert suppressed and suppressed[0]["fault"] == "no_callback"
    app.control("POST", "/faults", {"fault": "late", "delay_s": 0.3})
    late = attempt()
    app.create_order(late)
    started = time.monotonic()
    app.pay(late)
    wait_for(lambda: app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=late))
    assert time.monotonic() - started >= 0.3
    time.sleep(0.1)
    assert not app.receiver.all_for(silent)


def test_out_of_order_holds_an_event_until_the_next_one_of_its_order(app):
    app.control("POST", "/faults", {"fault": "out_of_order", "delay_s": 5})
    attempt_id = attempt()
    order = app.create_order(attempt_id)
    app.pay(attempt_id)
    time.sleep(0.2)
    assert not app.receiver.all_for(attempt_id)
    app.capture(order["id"], attempt_id)
    wait_for(lambda: len(app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=attempt_id)) == 1)
    order_seen = [d.event["event_type"] for d in app.receiver.all_for(attempt_id) if d.status == 200]
    assert order_seen == ["PAYMENT.CAPTURE.COMPLETED", "CHECKOUT.ORDER.APPROVED"]


def test_api_faults(app):
    app.control("POST", "/faults", {"fault": "error_5xx", "path_prefix": "/v2/checkout/orders"})
    answer = app.rest("POST", "/v2/checkout/orders", {})
    assert answer.status_code == 500 and answer.json()["name"] == "INTERNAL_SERVER_ERROR"
    app.control("POST", "/faults", {"fault": "timeout", "delay_s": 0.5, "path_prefix": "/v2/checkout/orders"})
    token = app.token()
    started = time.monotonic()
    answer = app.rest("POST", "/v2/checkout/orders", {"intent": "CAPTURE", "purchase_units": [
        {"custom_id": "att_timeout", "amount": {"currency_code": "USD", "value": "1.00"}}]}, token=token)
    assert answer.status_code == 201 and time.monotonic() - started >= 0.5
    assert app.control("GET", "/orders/att_timeout").status_code == 200  # the work was done; only the answer was late


def test_unknown_faults_and_bad_control_requests(app):
    assert app.control("POST", "/faults", {"fault": "meteor"}).status_code == 400
    assert app.control("POST", "/pay", {"out_trade_no": "att_nobody"}).status_code == 404
    attempt_id = attempt()
    app.create_order(attempt_id)
    app.pay(attempt_id)
    assert app.control("POST", "/pay", {"out_trade_no": attempt_id}).status_code == 409
    assert app.control("POST", "/pay", {"out_trade_no": attempt_id, "result": "maybe"}).status_code == 400


def test_the_approval_page_and_its_redirect(app):
    attempt_id = attempt()
    order = app.create_order(attempt_id)
    approve = next(link["href"] for link in order["links"] if link["rel"] == "approve")
    page = requests.get(approve, timeout=5)
    assert page.status_code == 200 and "Approve" in page.text
    answer = requests.post(f"{app.base_url}/checkoutnow/{order['id']}/approve", allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(f"https://shop.example/back?token={order['id']}&PayerID=")
    wait_for(lambda: app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=attempt_id))


def test_forget_makes_the_order_unknown(app):
    attempt_id = attempt()
    order = app.create_order(attempt_id)
    assert app.control("POST", f"/orders/{attempt_id}/forget").status_code == 200
    gone = app.rest("GET", f"/v2/checkout/orders/{order['id']}")
    assert gone.status_code == 404 and gone.json()["details"][0]["issue"] == "INVALID_RESOURCE_ID"
    assert app.control("GET", f"/orders/{attempt_id}").status_code == 404


# -- statements ---------------------------------------------------------------------------------------------------


def paid(app: App, value: str = "10.00") -> tuple[str, dict[str, Any]]:
    attempt_id = attempt()
    order = app.create_order(attempt_id, value=value)
    app.pay(attempt_id)
    capture = app.capture(order["id"], attempt_id).json()["purchase_units"][0]["payments"]["captures"][0]
    return attempt_id, capture


def statement_rows(app: App, day: str) -> list[Any]:
    paypal = PayPalAdapter(UrllibTransport())
    account = app.account()
    return list(paypal.parse_statement(account, paypal.fetch_statement(account, day)))


def test_the_statement_is_transaction_search_with_fees(app):
    attempt_id, capture = paid(app, "20.00")
    day = datetime.now(BEIJING).date().isoformat()
    start = f"{day}T00:00:00+08:00"
    raw = app.rest("GET", "/v1/reporting/transactions?" + requests.compat.urlencode(
        {"start_date": start, "end_date": f"{day}T23:59:59+08:00", "fields": "transaction_info"})).json()
    mine = [t["transaction_info"] for t in raw["transaction_details"] if t["transaction_info"]["custom_field"] == attempt_id]
    assert mine[0]["transaction_event_code"] == "T0006" and mine[0]["transaction_status"] == "S"
    assert mine[0]["transaction_amount"] == {"currency_code": "USD", "value": "20.00"}
    assert mine[0]["fee_amount"] == {"currency_code": "USD", "value": "-1.19"}  # 3.49 % + 0.49
    rows = {r.object_id: r for r in statement_rows(app, day)}
    assert rows[attempt_id].channel_ref == capture["id"] and rows[attempt_id].status == "succeeded"
    too_long = app.rest("GET", "/v1/reporting/transactions?start_date=2024-01-01T00:00:00Z&end_date=2024-03-01T00:00:00Z")
    assert too_long.status_code == 400


def test_statement_faults(app):
    day = datetime.now(BEIJING).date().isoformat()
    ids = [paid(app)[0] for _ in range(6)]
    for fault in ({"kind": "drop_row", "out_trade_no": ids[0]}, {"kind": "amount", "out_trade_no": ids[1], "delta": 7},
                  {"kind": "currency", "out_trade_no": ids[2], "currency": "EUR"},
                  {"kind": "status", "out_trade_no": ids[3], "status": "pending"},
                  {"kind": "fee", "out_trade_no": ids[4], "fee": 3}, {"kind": "duplicate_row", "out_trade_no": ids[5]},
                  {"kind": "extra_row", "out_trade_no": "att_never_heard_of", "amount": 4200}):
        assert app.control("POST", "/statement-faults", {"day": day, **fault}).status_code == 200
    rows = statement_rows(app, day)
    by_id: dict[str, list[Any]] = {}
    for row in rows:
        by_id.setdefault(row.object_id, []).append(row)
    assert ids[0] not in by_id
    assert by_id[ids[1]][0].amount.minor == 1007
    assert by_id[ids[2]][0].amount.currency == "EUR"
    assert by_id[ids[3]][0].status == "pending"
    assert by_id[ids[4]][0].fee.minor == 3
    assert len(by_id[ids[5]]) == 2
    assert by_id["att_never_heard_of"][0].amount.minor == 4200
    assert app.control("POST", "/statement-faults", {"day": day, "kind": "corrupt"}).status_code == 200
    with pytest.raises(ChannelError, match="line"):
        statement_rows(app, day)
    assert app.control("POST", "/statement-faults", {"day": day, "kind": "nonsense"}).status_code == 400


def test_forgotten_orders_leave_the_statement(app):
    attempt_id, _ = paid(app)
    day = datetime.now(BEIJING).date().isoformat()
    assert attempt_id in {r.object_id for r in statement_rows(app, day)}
    app.control("POST", f"/orders/{attempt_id}/forget")
    assert attempt_id not in {r.object_id for r in statement_rows(app, day)}


def test_a_live_sandbox_reports_today_as_not_complete():
    box = PayPalSandbox(report_live=True)
    url = box.start()
    try:
        registration = requests.post(f"{url}/_sandbox/merchants", json={}, timeout=5).json()
        config = ChannelAccountConfig(account_id="live-report", channel="paypal", methods=("paypal.wallet",),
                                      currencies=("USD",), api_base_url=url,
                                      settings={"merchant_id": registration["merchant_id"], "webhook_id": "X"})
        account = ChannelAccount(config, ChannelSecrets({"client_id": registration["client_id"],
                                                         "client_secret": registration["client_secret"]}))
        with pytest.raises(ChannelError) as caught:
            list(PayPalAdapter(UrllibTransport()).fetch_statement(account, datetime.now(BEIJING).date().isoformat()))
        assert caught.value.retryable
    finally:
        box.stop()


def test_notifications_from_the_sandbox_carry_the_accounts_merchant_id(app):
    attempt_id = attempt()
    app.create_order(attempt_id)
    app.pay(attempt_id)
    delivery = wait_for(lambda: app.receiver.accepted("CHECKOUT.ORDER.APPROVED", attempt=attempt_id))[0]
    notification = PayPalAdapter(UrllibTransport()).verify_and_parse_notification(
        app.receiver.account, InboundCallback(delivery.headers, delivery.body, datetime.now(UTC)))  # type: ignore[arg-type]
    assert notification.kind is NotificationKind.PAYMENT and notification.channel_merchant_id == app.merchant_id
