"""The e-CNY partner-bank gateway sandbox over real HTTP on 127.0.0.1.

Raw requests here are built from docs/channels/ecny.md with the crypto primitives directly; the sandbox's
answers and notifications are checked with the HUB's own adapter and verifier, so each side checks the other.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from chalicelib.channels.base import (
    CreateRequest,
    InboundCallback,
    Notification,
    NotificationKind,
    Payer,
    PaymentOutcome,
    RefundOutcome,
    RefundRequest,
    StatementRow,
    StatementSummary,
)
from chalicelib.channels.ecny import ECNYAdapter
from chalicelib.channels.transport import UrllibTransport
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.crypto.sm import sm2_generate_keypair, sm2_sign, sm2_verify
from chalicelib.domain.errors import CallbackRejected, ChannelError
from chalicelib.domain.money import Money
from sandbox.ecny import ECNYSandbox

BEIJING = timezone(timedelta(hours=8))
MERCHANT_ID = "EC4401000000777"
SERIAL = "AA00BB11CC22DD33EE44"


def wait_for(predicate: Callable[[], Any], timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s")


def today() -> str:
    return datetime.now(BEIJING).date().isoformat()


class Hub:
    """The hub's side of one account: its adapter, its keys, and a notify URL answered the hub's way."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.private_hex, self.public_hex = sm2_generate_keypair()
        self.registration = requests.post(f"{base_url}/_sandbox/merchants", json={
            "merchant_id": MERCHANT_ID, "merchant_key_serial": SERIAL, "merchant_public_key": self.public_hex,
        }, timeout=5).json()
        self.bank_keys = {self.registration["bank_key_serial"]: self.registration["bank_public_key"]}
        self.adapter = ECNYAdapter(UrllibTransport())
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.parsed: list[Notification] = []
        self._lock = threading.Lock()
        self._expiries: dict[str, datetime] = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    parsed = hub.adapter.verify_and_parse_notification(
                        hub.account(), InboundCallback(headers, body, datetime.now(UTC)))
                    reply = hub.adapter.acknowledge(True)
                except CallbackRejected:
                    parsed, reply = None, hub.adapter.acknowledge(False)
                with hub._lock:
                    hub.received.append((headers, body, reply.status))
                    if parsed is not None:
                        hub.parsed.extend([parsed] if isinstance(parsed, Notification) else parsed)
                self.send_response(reply.status)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.notify_url = f"http://127.0.0.1:{self._server.server_address[1]}/callbacks/ecny/ecny-sbx"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def account(self) -> ChannelAccount:
        config = ChannelAccountConfig(
            account_id="ecny-sbx", channel="ecny", methods=("ecny.wallet",), api_base_url=self.base_url,
            settings={"merchant_id": MERCHANT_ID, "merchant_key_serial": SERIAL,
                      "merchant_sm2_public_key": self.public_hex})
        return ChannelAccount(config, ChannelSecrets({
            "merchant_private_key": self.private_hex, "bank_public_keys": dict(self.bank_keys),
            "data_keys": {self.registration["data_key_id"]: self.registration["data_key"]}}))

    def create(self, attempt_id: str, fen: int = 1000) -> Any:
        # One expiry per order, as the hub records it: a retry that crossed a second would otherwise send other terms.
        expires_at = self._expiries.setdefault(attempt_id, datetime.now(UTC) + timedelta(minutes=30))
        return self.adapter.create(self.account(), CreateRequest(
            attempt_id=attempt_id, method="ecny.wallet", amount=Money(fen, "CNY"), description="测试商品",
            notify_url=self.notify_url, expires_at=expires_at, payer=Payer()))

    def query(self, attempt_id: str) -> Any:
        return self.adapter.query(self.account(), attempt_id, Money(0, "CNY"))

    def refund(self, attempt_id: str, refund_id: str, fen: int, total: int = 1000) -> Any:
        return self.adapter.refund(self.account(), RefundRequest(
            refund_id=refund_id, attempt_id=attempt_id, channel_transaction_id=None, amount=Money(fen, "CNY"),
            attempt_amount=Money(total, "CNY"), reason=None, notify_url=self.notify_url))

    def notifications(self, object_id: str | None = None) -> list[Notification]:
        with self._lock:
            return [n for n in self.parsed if object_id is None or n.object_id == object_id]

    def statement(self, day: str | None = None) -> list[StatementRow | StatementSummary]:
        account = self.account()
        return list(self.adapter.parse_statement(account, self.adapter.fetch_statement(account, day or today())))

    def raw_call(self, path: str, body: dict[str, Any], *, timestamp: int | None = None, nonce: str | None = None,
                 serial: str = SERIAL, merchant: str = MERCHANT_ID, sign_over: bytes | None = None,
                 private_hex: str | None = None, public_hex: str | None = None) -> requests.Response:
        """A request built by hand from the documented rules, with any part overridable."""
        payload = json.dumps(body).encode()
        ts, nonce = str(int(time.time()) if timestamp is None else timestamp), nonce or secrets.token_hex(16)
        message = f"POST\n{path}\n{ts}\n{nonce}\n".encode() + (payload if sign_over is None else sign_over)
        signature = base64.b64encode(sm2_sign(private_hex or self.private_hex, public_hex or self.public_hex,
                                              message)).decode()
        return requests.post(self.base_url + path, data=payload, timeout=5, headers={
            "Content-Type": "application/json", "X-ECNY-Merchant-Id": merchant, "X-ECNY-Timestamp": ts,
            "X-ECNY-Nonce": nonce, "X-ECNY-Serial": serial, "X-ECNY-Signature": signature})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def box() -> Iterator[ECNYSandbox]:
    sandbox = ECNYSandbox(retry_scale=0.002, refund_settle_s=0.05)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def hub(box: ECNYSandbox) -> Iterator[Hub]:
    h = Hub(box.base_url)
    yield h
    h.stop()


@pytest.fixture(autouse=True)
def no_faults(box: ECNYSandbox) -> Iterator[None]:
    yield
    requests.delete(f"{box.base_url}/_sandbox/faults", timeout=5)
    requests.delete(f"{box.base_url}/_sandbox/statement-faults", timeout=5)


def new_id(prefix: str = "att") -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def control(box: ECNYSandbox, path: str, body: dict[str, Any] | None = None, expect: int = 200) -> dict[str, Any]:
    response = requests.post(box.base_url + path, json=body or {}, timeout=5)
    assert response.status_code == expect, response.text
    return dict(response.json())


def arm(box: ECNYSandbox, fault: str, **options: Any) -> None:
    control(box, "/_sandbox/faults", {"fault": fault, **options})


# -- the gateway checks the hub's signatures ------------------------------------------------------------------


def verify_answer(hub: Hub, response: requests.Response, request_nonce: str) -> bool:
    h = response.headers
    message = f"RESPONSE\n{request_nonce}\n{h['X-ECNY-Timestamp']}\n{h['X-ECNY-Nonce']}\n".encode() + response.content
    return sm2_verify(hub.bank_keys[h["X-ECNY-Serial"]], message, base64.b64decode(h["X-ECNY-Signature"]))


def test_a_correctly_signed_request_is_answered_and_the_answer_is_signed_for_it(hub: Hub) -> None:
    nonce = secrets.token_hex(16)
    response = hub.raw_call("/ecny/v1/orders/query", {"merchant_id": MERCHANT_ID, "out_order_no": "att_nothing1"},
                            nonce=nonce)
    assert response.status_code == 200 and response.json()["code"] == "ORDER_NOT_FOUND"
    assert verify_answer(hub, response, nonce)
    assert not verify_answer(hub, response, secrets.token_hex(16))  # bound to our nonce


@pytest.mark.parametrize(("override", "code"), [
    ({"sign_over": b"{}"}, "SIGN_INVALID"),  # the body sent is not the body signed
    ({"timestamp": int(time.time()) - 600}, "TIMESTAMP_EXPIRED"),
    ({"serial": "FFFFFFFFFFFFFFFFFFFF"}, "MERCHANT_INVALID"),
    ({"merchant": "EC0000000000000"}, "MERCHANT_INVALID"),
    ({"nonce": "bad nonce"}, "SIGN_INVALID"),
])
def test_bad_requests_are_refused_with_401(hub: Hub, override: dict[str, Any], code: str) -> None:
    response = hub.raw_call("/ecny/v1/orders/query", {"merchant_id": MERCHANT_ID, "out_order_no": "att_x12345"},
                            **override)
    assert (response.status_code, response.json()["code"]) == (401, code)


def test_a_forged_signature_is_refused(hub: Hub) -> None:
    other_private, other_public = sm2_generate_keypair()
    response = hub.raw_call("/ecny/v1/orders/query", {"merchant_id": MERCHANT_ID, "out_order_no": "att_x12345"},
                            private_hex=other_private, public_hex=other_public)
    assert (response.status_code, response.json()["code"]) == (401, "SIGN_INVALID")


def test_unsigned_and_replayed_requests_are_refused(hub: Hub) -> None:
    unsigned = requests.post(f"{hub.base_url}/ecny/v1/orders/query", json={"merchant_id": MERCHANT_ID}, timeout=5,
                             headers={"X-ECNY-Merchant-Id": MERCHANT_ID, "X-ECNY-Serial": SERIAL})
    assert unsigned.status_code == 401
    nonce = secrets.token_hex(16)
    body = {"merchant_id": MERCHANT_ID, "out_order_no": "att_x12345"}
    assert hub.raw_call("/ecny/v1/orders/query", body, nonce=nonce).status_code == 200
    replayed = hub.raw_call("/ecny/v1/orders/query", body, nonce=nonce)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "NONCE_REPLAYED")


def test_the_body_must_name_the_signing_merchant(hub: Hub) -> None:
    response = hub.raw_call("/ecny/v1/orders/query", {"merchant_id": "EC0000000000000", "out_order_no": "att_x12345"})
    assert response.json()["code"] == "PARAM_ERROR"


# -- wallet payments with the hub's adapter ------------------------------------------------------------------


def test_online_payment_life_through_the_hubs_adapter(box: ECNYSandbox, hub: Hub) -> None:
    attempt = new_id()
    created = hub.create(attempt, 1000)
    assert created.action.type == "qr_code" and created.action.params["order_info"].startswith("ECNYCASHIER.")
    assert hub.create(attempt, 1000).channel_order_ref == created.channel_order_ref  # an identical retry
    with pytest.raises(ChannelError) as other:
        hub.create(attempt, 999)
    # The number exists at the bank: the hub cannot tell what was made under it, so the outcome is unknown.
    assert other.value.channel_code == "ORDER_EXISTS" and not other.value.refused and not other.value.retryable
    assert hub.query(attempt).outcome is PaymentOutcome.PENDING

    control(box, "/_sandbox/pay", {"out_trade_no": attempt})
    [paid] = wait_for(lambda: hub.notifications(attempt))
    assert paid.payment.outcome is PaymentOutcome.SUCCEEDED and paid.payment.amount == Money(1000, "CNY")
    assert paid.channel_merchant_id == MERCHANT_ID and not paid.payment.settled_offline
    assert hub.query(attempt).outcome is PaymentOutcome.SUCCEEDED
    with pytest.raises(ChannelError) as closing:
        hub.adapter.close(hub.account(), attempt)
    assert closing.value.channel_code == "ORDERPAID"
    control(box, "/_sandbox/pay", {"out_trade_no": attempt}, expect=409)

    refund_id = new_id("re")
    assert hub.refund(attempt, refund_id, 400).outcome is RefundOutcome.PROCESSING
    [refunded] = wait_for(lambda: hub.notifications(refund_id))
    assert refunded.kind is NotificationKind.REFUND and refunded.refund.outcome is RefundOutcome.SUCCEEDED
    assert hub.adapter.query_refund(hub.account(), refund_id, Money(400, "CNY")).outcome is RefundOutcome.SUCCEEDED
    with pytest.raises(ChannelError) as over:
        hub.refund(attempt, new_id("re"), 601)
    assert over.value.channel_code == "REFUND_EXCEEDS"
    ledger = requests.get(f"{box.base_url}/_sandbox/ledger", params={"merchant_id": MERCHANT_ID}, timeout=5).json()
    mine = [e for e in ledger["entries"] if e["out_order_no"] == attempt]
    assert [(e["kind"], e["amount_fen"]) for e in mine] == [("payment", 1000), ("refund", 400)]


def test_a_failed_wallet_payment_is_notified_as_failed(box: ECNYSandbox, hub: Hub) -> None:
    attempt = new_id()
    hub.create(attempt)
    control(box, "/_sandbox/pay", {"out_trade_no": attempt, "result": "fail"})
    [failed] = wait_for(lambda: hub.notifications(attempt))
    assert failed.payment.outcome is PaymentOutcome.FAILED
    control(box, "/_sandbox/pay", {"out_trade_no": "att_unknown0000"}, expect=404)


def test_close_then_pay_is_illegal(box: ECNYSandbox, hub: Hub) -> None:
    attempt = new_id()
    hub.create(attempt)
    hub.adapter.close(hub.account(), attempt)
    hub.adapter.close(hub.account(), attempt)  # closing twice succeeds
    assert hub.query(attempt).outcome is PaymentOutcome.CLOSED
    control(box, "/_sandbox/pay", {"out_trade_no": attempt}, expect=409)


# -- offline payments ------------------------------------------------------------------------------------------


def test_offline_payments_are_silent_until_the_batch_and_credited_even_when_closed(box: ECNYSandbox, hub: Hub) -> None:
    closed, pending = new_id(), new_id()
    hub.create(closed, 500)
    hub.create(pending, 800)
    hub.adapter.close(hub.account(), closed)
    control(box, "/_sandbox/offline-pay", {"out_trade_no": closed, "device_id": "HW0000000042"})
    control(box, "/_sandbox/offline-pay", {"out_trade_no": pending})
    control(box, "/_sandbox/offline-pay", {"out_trade_no": pending}, expect=409)  # one per order
    time.sleep(0.1)
    assert hub.notifications(closed) == [] and hub.notifications(pending) == []
    assert hub.query(closed).outcome is PaymentOutcome.CLOSED  # the bank has not cleared it yet

    batches = control(box, "/_sandbox/offline-batch", {"merchant_id": MERCHANT_ID})["batches"]
    assert len(batches) == 1 and batches[0]["count"] == 2 and batches[0]["total_amount"] == "13.00"
    got = wait_for(lambda: len(hub.notifications(closed) + hub.notifications(pending)) == 2
                   and hub.notifications(closed) + hub.notifications(pending))
    assert all(n.payment.settled_offline and n.payment.outcome is PaymentOutcome.SUCCEEDED for n in got)
    assert {n.event_id for n in got} == {item["item_id"] for item in batches[0]["items"]}
    assert hub.query(closed).settled_offline  # cleared: SUCCESS, offline

    control(box, "/_sandbox/offline-batch", {"resend_batch_no": batches[0]["batch_no"]})
    wait_for(lambda: len(hub.notifications(closed)) == 2)
    first, again = hub.notifications(closed)
    assert first.event_id == again.event_id  # a re-sent batch repeats the item ids: the hub dedupes on them
    assert control(box, "/_sandbox/offline-batch", {})["batches"] == []  # nothing left to clear


def test_an_order_paid_online_cannot_also_be_paid_offline(box: ECNYSandbox, hub: Hub) -> None:
    attempt = new_id()
    hub.create(attempt)
    control(box, "/_sandbox/pay", {"out_trade_no": attempt})
    control(box, "/_sandbox/offline-pay", {"out_trade_no": attempt}, expect=409)


# -- notification faults -------------------------------------------------------------------------------------


def deliveries(box: ECNYSandbox, attempt: str) -> dict[str, Any]:
    return dict(requests.get(f"{box.base_url}/_sandbox/deliveries", params={"out_trade_no": attempt}, timeout=5).json())


@pytest.mark.parametrize("fault", ["forged", "tampered", "stale", "forged_callback"])
def test_spoiled_first_delivery_is_refused_by_the_hub_and_the_retry_is_good(box: ECNYSandbox, hub: Hub,
                                                                            fault: str) -> None:
    attempt = new_id()
    hub.create(attempt)
    arm(box, fault)
    control(box, "/_sandbox/pay", {"out_trade_no": attempt})
    rows = wait_for(lambda: [d for d in deliveries(box, attempt)["attempts"] if d["delivered"]]
                    and deliveries(box, attempt)["attempts"])
    first = next(r for r in rows if r["attempt"] == 1)
    assert first["status_code"] == 400 and not first["delivered"]
    assert [n.payment.outcome for n in hub.notifications(attempt)] == [PaymentOutcome.SUCCEEDED]


def test_duplicate_late_and_no_callback(box: ECNYSandbox, hub: Hub) -> None:
    dup, late, silent = new_id(), new_id(), new_id()
    for attempt in (dup, late, silent):
        hub.create(attempt)
    arm(box, "duplicate_callback", copies=4)
    control(box, "/_sandbox/pay", {"out_trade_no": dup})
    copies = wait_for(lambda: len(hub.notifications(dup)) == 4 and hub.notifications(dup))
    assert len({n.event_id for n in copies}) == 1  # same notify_id: one event for the hub

    arm(box, "late", delay_s=0.4)
    started = time.monotonic()
    control(box, "/_sandbox/pay", {"out_trade_no": late})
    wait_for(lambda: hub.notifications(late))
    assert time.monotonic() - started >= 0.35

    arm(box, "no_callback")
    control(box, "/_sandbox/pay", {"out_trade_no": silent})
    assert wait_for(lambda: deliveries(box, silent)["suppressed"])
    assert hub.notifications(silent) == [] and deliveries(box, silent)["attempts"] == []


def test_out_of_order_holds_the_payment_notification_until_the_refund(box: ECNYSandbox, hub: Hub) -> None:
    attempt, refund_id = new_id(), new_id("re")
    hub.create(attempt)
    arm(box, "out_of_order", delay_s=10)
    control(box, "/_sandbox/pay", {"out_trade_no": attempt})
    time.sleep(0.1)
    assert hub.notifications(attempt) == []
    hub.refund(attempt, refund_id, 1000)
    wait_for(lambda: hub.notifications(attempt))
    with hub._lock:
        kinds = [n.kind for n in hub.parsed if n.object_id in (attempt, refund_id)]
    assert kinds == [NotificationKind.REFUND, NotificationKind.PAYMENT]


def test_notifications_are_retried_until_acknowledged(box: ECNYSandbox, hub: Hub) -> None:
    attempt = new_id()
    hub.create(attempt)
    saved = dict(hub.bank_keys)
    hub.bank_keys.clear()  # the hub cannot verify anything for a moment: it answers 400 and the bank retries
    try:
        control(box, "/_sandbox/pay", {"out_trade_no": attempt})
        wait_for(lambda: len(deliveries(box, attempt)["attempts"]) >= 2)
    finally:
        hub.bank_keys.update(saved)
    wait_for(lambda: [d for d in deliveries(box, attempt)["attempts"] if d["delivered"]], timeout_s=5)
    statuses = [d["status_code"] for d in deliveries(box, attempt)["attempts"]]
    assert statuses[0] == 400 and statuses[-1] == 200 and statuses.count(200) == 1
    assert len(hub.notifications(attempt)) == 1


# -- API faults ----------------------------------------------------------------------------------------------


def test_error_5xx_is_retryable_and_does_nothing(box: ECNYSandbox, hub: Hub) -> None:
    attempt = new_id()
    arm(box, "error_5xx", path_prefix="/ecny/v1/orders")
    with pytest.raises(ChannelError) as caught:
        hub.create(attempt)
    assert caught.value.retryable
    control(box, f"/_sandbox/orders/{attempt}/forget", expect=404)  # never created


def test_timeout_does_the_work_but_holds_the_answer(box: ECNYSandbox, hub: Hub) -> None:
    attempt = new_id()
    arm(box, "timeout", delay_s=0.5, path_prefix="/ecny/v1/orders")
    started = time.monotonic()
    hub.create(attempt)
    assert time.monotonic() - started >= 0.45
    shown = requests.get(f"{box.base_url}/_sandbox/orders/{attempt}", timeout=5).json()
    assert shown["order"]["status"] == "WAITING"


def test_a_forgotten_order_is_not_found_and_left_out_of_the_statement(box: ECNYSandbox, hub: Hub) -> None:
    attempt = new_id()
    hub.create(attempt)
    control(box, "/_sandbox/pay", {"out_trade_no": attempt})
    control(box, f"/_sandbox/orders/{attempt}/forget")
    assert hub.query(attempt).outcome is PaymentOutcome.NOT_FOUND
    assert attempt not in {r.object_id for r in hub.statement() if isinstance(r, StatementRow)}


def test_bank_key_rotation_answers_under_the_new_serial(box: ECNYSandbox, hub: Hub) -> None:
    rotated = control(box, "/_sandbox/bank-keys/rotate", {"merchant_id": MERCHANT_ID})
    assert rotated["bank_key_serial"] not in hub.bank_keys
    with pytest.raises(ChannelError, match="unknown X-ECNY-Serial"):
        hub.query(new_id())  # the hub does not know the new key yet
    hub.bank_keys[rotated["bank_key_serial"]] = rotated["bank_public_key"]  # overlap: both held
    assert hub.query(new_id()).outcome is PaymentOutcome.NOT_FOUND


# -- statements ----------------------------------------------------------------------------------------------


def test_statement_in_the_real_format_from_the_ledger(box: ECNYSandbox, hub: Hub) -> None:
    online, offline, refund_id = new_id(), new_id(), new_id("re")
    hub.create(online, 1234)
    hub.create(offline, 567)
    control(box, "/_sandbox/pay", {"out_trade_no": online})
    hub.refund(online, refund_id, 234, total=1234)
    wait_for(lambda: hub.notifications(refund_id))
    control(box, "/_sandbox/offline-pay", {"out_trade_no": offline})
    control(box, "/_sandbox/offline-batch", {"merchant_id": MERCHANT_ID})

    raw = b"".join(hub.adapter.fetch_statement(hub.account(), today()))
    text = raw.decode("gbk")
    assert text.startswith(f"ECNYRECON|1.0|{MERCHANT_ID}|") and "\r\n交易类型|商户订单号|" in text
    assert text.splitlines()[-1].startswith("合计|总笔数=")
    rows = {(r.kind.value, r.object_id): r for r in hub.statement() if isinstance(r, StatementRow)}
    assert rows[("payment", online)].amount == Money(1234, "CNY")
    assert rows[("refund", refund_id)].amount == Money(234, "CNY") and rows[("refund", refund_id)].attempt_id == online
    assert rows[("payment", offline)].amount == Money(567, "CNY")
    assert f"|{offline}|" in text and text.split(f"|{offline}|")[1].split("\r\n")[0].split("|")[10] == "Y"
    summary = hub.statement()[-1]
    assert isinstance(summary, StatementSummary) and summary.count == len([line for line in text.splitlines()[2:-1]])


def test_statement_faults_each_kind(box: ECNYSandbox, hub: Hub) -> None:
    paid = [new_id() for _ in range(6)]
    for attempt in paid:
        hub.create(attempt, 100)
        control(box, "/_sandbox/pay", {"out_trade_no": attempt})
    day = today()
    for body in ({"kind": "drop_row", "out_trade_no": paid[0]},
                 {"kind": "extra_row", "out_trade_no": "att_never_heard_of", "amount": 4242},
                 {"kind": "amount", "out_trade_no": paid[1], "delta": 7},
                 {"kind": "currency", "out_trade_no": paid[2], "currency": "USD"},
                 {"kind": "status", "out_trade_no": paid[3], "status": "REVERSED"},
                 {"kind": "fee", "out_trade_no": paid[4], "fee": 3},
                 {"kind": "duplicate_row", "out_trade_no": paid[5]}):
        control(box, "/_sandbox/statement-faults", {"day": day, **body})
    rows = [r for r in hub.statement(day) if isinstance(r, StatementRow)]
    by_id: dict[str, list[StatementRow]] = {}
    for row in rows:
        by_id.setdefault(row.object_id, []).append(row)
    assert paid[0] not in by_id
    assert by_id["att_never_heard_of"][0].amount == Money(4242, "CNY")
    assert by_id[paid[1]][0].amount == Money(107, "CNY")
    assert by_id[paid[2]][0].amount.currency == "USD"
    assert by_id[paid[3]][0].status == "reversed"
    assert by_id[paid[4]][0].fee == Money(3, "CNY")
    assert len(by_id[paid[5]]) == 2

    control(box, "/_sandbox/statement-faults", {"day": day, "kind": "corrupt"})
    with pytest.raises(ChannelError, match="e-CNY statement line"):
        hub.statement(day)
    requests.delete(f"{box.base_url}/_sandbox/statement-faults", timeout=5)
    assert paid[0] in {r.object_id for r in hub.statement(day) if isinstance(r, StatementRow)}


def test_statement_fault_validation_and_future_days(box: ECNYSandbox, hub: Hub) -> None:
    control(box, "/_sandbox/statement-faults", {"day": "2024-13-01", "kind": "drop_row", "out_trade_no": "a"},
            expect=400)
    control(box, "/_sandbox/statement-faults", {"day": today(), "kind": "melt"}, expect=400)
    control(box, "/_sandbox/statement-faults", {"day": today(), "kind": "amount", "out_trade_no": "a"}, expect=400)
    tomorrow = (datetime.now(BEIJING).date() + timedelta(days=1)).isoformat()
    with pytest.raises(ChannelError) as caught:
        hub.statement(tomorrow)
    assert caught.value.retryable and caught.value.channel_code == "STATEMENT_NOT_READY"


def test_fault_names_are_checked(box: ECNYSandbox) -> None:
    control(box, "/_sandbox/faults", {"fault": "meteor"}, expect=400)
    control(box, "/_sandbox/faults", {"mode": "late_callback", "delay_s": 0.1})  # the WeChat spelling works
    listed = requests.get(f"{box.base_url}/_sandbox/faults", timeout=5).json()["faults"]
    assert [f["fault"] for f in listed] == ["late"]


def test_runs_alone_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "sandbox.ecny", "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and "--retry-scale" in result.stdout
