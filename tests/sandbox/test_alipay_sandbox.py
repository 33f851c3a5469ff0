"""The Alipay sandbox over real HTTP on 127.0.0.1: it checks our signatures as Alipay does, signs its answers
and notifies as Alipay does (the notifies are verified here with the HUB's own verifier), re-sends until it
hears ``success``, misbehaves on request, and serves bills in Alipay's ZIP-of-GBK-CSVs format."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.channels.alipay import AlipayAdapter
from chalicelib.channels.alipay.bill import parse_trade_bill
from chalicelib.channels.base import InboundCallback, Notification, StatementRow, StatementSummary
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.crypto.rsa import sign_sha256, verify_sha256
from chalicelib.crypto.sm import sm2_generate_keypair, sm2_sign, sm2_verify
from chalicelib.domain.errors import CallbackRejected
from chalicelib.domain.money import Money
from sandbox.alipay import AlipaySandbox

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


def canonical(params: dict[str, str], exclude: tuple[str, ...] = ("sign",)) -> bytes:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] != "").encode()


# -- a merchant, as docs/channels/alipay.md#wire-rules describes one ----------------------------------------------


@dataclass
class Merchant:
    base_url: str
    app_id: str
    pid: str
    sign_type: str
    rsa_key: rsa.RSAPrivateKey | None = None
    sm2_private: str = ""
    sm2_public: str = ""
    alipay_public_key: str = ""
    registration: dict[str, Any] = field(default_factory=dict)

    def public_key_text(self) -> str:
        if self.rsa_key is None:
            return self.sm2_public
        der = self.rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def sign(self, message: bytes) -> str:
        if self.rsa_key is not None:
            return base64.b64encode(sign_sha256(self.rsa_key, message)).decode()
        return base64.b64encode(sm2_sign(self.sm2_private, self.sm2_public, message)).decode()

    def alipay_signed(self, message: bytes, signature: str) -> bool:
        raw = base64.b64decode(signature)
        if self.sign_type == "SM2":
            return sm2_verify(self.alipay_public_key, message, raw)
        der = base64.b64decode(self.alipay_public_key)
        public = serialization.load_der_public_key(der)
        return verify_sha256(public, message, raw)  # type: ignore[arg-type]

    def params(self, method: str, biz: dict[str, Any], **extra: str) -> dict[str, str]:
        params = {"app_id": self.app_id, "method": method, "format": "JSON", "charset": "utf-8",
                  "sign_type": self.sign_type, "timestamp": datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                  "version": "1.0", "biz_content": json.dumps(biz, ensure_ascii=False), **extra}
        params["sign"] = self.sign(canonical(params))
        return params

    def post(self, params: dict[str, str], timeout_s: float = 10.0) -> requests.Response:
        return requests.post(f"{self.base_url}/gateway.do?charset=utf-8", data=urlencode(params), timeout=timeout_s,
                             headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"})

    def call(self, method: str, biz: dict[str, Any], **extra: str) -> dict[str, Any]:
        """One server call; the answer's signature is checked over its raw ``<method>_response`` text."""
        response = self.post(self.params(method, biz, **extra))
        assert response.status_code == 200, response.text
        text = response.content.decode()
        key = method.replace(".", "_") + "_response"
        prefix = '{"' + key + '":'
        assert text.startswith(prefix), text
        content, _, tail = text[len(prefix):].rpartition(',"sign":"')
        signature = tail[:-2]
        assert self.alipay_signed(content.encode(), signature), "answer signature does not verify"
        answer: dict[str, Any] = json.loads(content)
        return answer

    def account(self, keys: dict[str, str] | None = None) -> ChannelAccount:
        """The same merchant as the hub configures it (for the hub's verifier)."""
        settings = {"appid": self.app_id, "merchant_id": self.pid, "sign_type": self.sign_type}
        if self.sign_type == "SM2":
            settings["app_sm2_public_key"] = self.sm2_public
        config = ChannelAccountConfig(account_id="alipay-sbx", channel="alipay", methods=("alipay.qr",),
                                      api_base_url=self.base_url, settings=settings)
        return ChannelAccount(config, ChannelSecrets({"app_private_key": "unused", "alipay_public_keys": keys or {
            self.registration["alipay_key_id"]: self.alipay_public_key}}))


_APP_IDS = iter(range(2021000000000001, 2021000000999999))


def register(base_url: str, sign_type: str = "RSA2") -> Merchant:
    app_id = str(next(_APP_IDS))
    merchant = Merchant(base_url, app_id, "2088" + app_id[-12:], sign_type)
    if sign_type == "SM2":
        merchant.sm2_private, merchant.sm2_public = sm2_generate_keypair()
    else:
        merchant.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = requests.post(f"{base_url}/_sandbox/merchants", json={
        "app_id": app_id, "pid": merchant.pid, "sign_type": sign_type, "app_public_key": merchant.public_key_text()},
        timeout=10)
    assert answer.status_code == 200, answer.text
    merchant.registration = answer.json()
    merchant.alipay_public_key = merchant.registration["alipay_public_key"]
    return merchant


# -- a notify_url that verifies with the hub's adapter ----------------------------------------------------------


class Receiver:
    """Answers each notify as told (``success`` by default) after verifying it with the hub's verifier."""

    def __init__(self) -> None:
        self.answers: list[bytes] = []
        self.verified: list[Notification] = []
        self.rejected: list[str] = []
        self.accounts: dict[str, ChannelAccount] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = receiver.handle(self.path, body)
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def handle(self, path: str, body: bytes) -> bytes:
        account = self.accounts[path.rsplit("/", 1)[-1]]
        adapter = AlipayAdapter(transport=None)  # type: ignore[arg-type]
        try:
            notification = adapter.verify_and_parse_notification(account, InboundCallback({}, body, datetime.now(UTC)))
        except CallbackRejected as exc:
            with self._lock:
                self.rejected.append(exc.message)
            return b"fail"
        with self._lock:
            self.verified.append(notification)
            return self.answers.pop(0) if self.answers else b"success"

    def notify_url(self, merchant: Merchant) -> str:
        self.accounts[merchant.app_id] = merchant.account()
        return f"{self.url}/notify/{merchant.app_id}"

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AlipaySandbox]:
    box = AlipaySandbox(retry_scale=0.001)
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def merchant(sandbox: AlipaySandbox) -> Merchant:
    return register(sandbox.base_url)


@pytest.fixture(scope="module")
def sm2_merchant(sandbox: AlipaySandbox) -> Merchant:
    return register(sandbox.base_url, "SM2")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_faults(sandbox: AlipaySandbox) -> Iterator[None]:
    yield
    requests.delete(f"{sandbox.base_url}/_sandbox/faults", timeout=10)
    requests.delete(f"{sandbox.base_url}/_sandbox/statement-faults", timeout=10)


_ORDER_NOS = iter(range(1, 10**6))


def order_no() -> str:
    return f"att_{time.time_ns() % 10**9}_{next(_ORDER_NOS)}"


def precreate_qr(merchant: Merchant, receiver: Receiver | None, amount: str = "88.88") -> tuple[str, str]:
    """(out_trade_no, qr_code) of a freshly precreated order."""
    number = order_no()
    extra = {"notify_url": receiver.notify_url(merchant)} if receiver else {}
    answer = merchant.call("alipay.trade.precreate", {"out_trade_no": number, "total_amount": amount, "subject": "绿茶"},
                           **extra)
    assert answer["code"] == "10000" and answer["qr_code"].startswith(merchant.base_url + "/qr/"), answer
    return number, answer["qr_code"]


def precreate(merchant: Merchant, receiver: Receiver | None, amount: str = "88.88") -> str:
    return precreate_qr(merchant, receiver, amount)[0]


def pay(sandbox: AlipaySandbox, number: str, **extra: Any) -> requests.Response:
    return requests.post(f"{sandbox.base_url}/_sandbox/pay", json={"out_trade_no": number, **extra}, timeout=10)


def deliveries(sandbox: AlipaySandbox, number: str) -> list[dict[str, Any]]:
    return list(requests.get(f"{sandbox.base_url}/_sandbox/deliveries", params={"out_trade_no": number},
                             timeout=10).json()["attempts"])


def arm(sandbox: AlipaySandbox, fault: str, **options: Any) -> None:
    response = requests.post(f"{sandbox.base_url}/_sandbox/faults", json={"fault": fault, **options}, timeout=10)
    assert response.status_code == 200, response.text


# -- the hub's requests are checked ------------------------------------------------------------------------------


def test_unsigned_forged_and_unknown_app_requests_are_refused(sandbox: AlipaySandbox, merchant: Merchant) -> None:
    good = merchant.params("alipay.trade.query", {"out_trade_no": "att_x"})
    answers = {}
    for name, params in {
        "unsigned": {k: v for k, v in good.items() if k != "sign"},
        "forged": {**good, "sign": register(sandbox.base_url).sign(canonical(good))},
        "tampered": {**good, "biz_content": '{"out_trade_no":"att_y"}'},
        "sign_type": {**merchant.params("alipay.trade.query", {"out_trade_no": "att_x"}, sign_type="RSA")},
    }.items():
        body = merchant.post(params).json()
        answers[name] = body["alipay_trade_query_response"]["sub_code"]
        assert body["alipay_trade_query_response"]["code"].startswith("400") and "sign" in body
    assert answers == {"unsigned": "isv.missing-signature", "forged": "isv.invalid-signature",
                       "tampered": "isv.invalid-signature", "sign_type": "isv.invalid-signature-type"}
    unknown = merchant.post({**good, "app_id": "2021999999999999"}).json()
    assert unknown == {"error_response": {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-app-id",
                                          "sub_msg": "无效的AppID参数"}}


def test_answers_are_signed_over_the_response_text(sandbox: AlipaySandbox, merchant: Merchant,
                                                   sm2_merchant: Merchant) -> None:
    for who in (merchant, sm2_merchant):
        answer = who.call("alipay.trade.query", {"out_trade_no": "att_nothing"})  # Merchant.call checks the sign
        assert (answer["code"], answer["sub_code"]) == ("40004", "ACQ.TRADE_NOT_EXIST")


def test_trade_life_query_close_refund(sandbox: AlipaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    number = precreate(merchant, receiver)
    # Not scanned yet: Alipay has no trade, and closing it is "not exist" too.
    assert merchant.call("alipay.trade.query", {"out_trade_no": number})["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    assert pay(sandbox, number).status_code == 200
    paid = merchant.call("alipay.trade.query", {"out_trade_no": number})
    assert (paid["trade_status"], paid["total_amount"]) == ("TRADE_SUCCESS", "88.88") and paid["send_pay_date"]
    closed = merchant.call("alipay.trade.close", {"out_trade_no": number})
    assert closed["sub_code"] == "ACQ.TRADE_STATUS_ERROR"
    refund = {"out_trade_no": number, "refund_amount": "8.88", "out_request_no": "re_1"}
    first = merchant.call("alipay.trade.refund", refund)
    again = merchant.call("alipay.trade.refund", refund)
    assert (first["fund_change"], again["fund_change"], again["refund_fee"]) == ("Y", "N", "8.88")
    assert merchant.call("alipay.trade.refund", {**refund, "refund_amount": "1.00"})["sub_code"] == "ACQ.CONTEXT_INCONSISTENT"
    over = merchant.call("alipay.trade.refund", {**refund, "out_request_no": "re_2", "refund_amount": "80.01"})
    assert over["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    found = merchant.call("alipay.trade.fastpay.refund.query", {"out_trade_no": number, "out_request_no": "re_1"})
    assert (found["refund_status"], found["refund_amount"]) == ("REFUND_SUCCESS", "8.88")
    missing = merchant.call("alipay.trade.fastpay.refund.query", {"out_trade_no": number, "out_request_no": "re_9"})
    assert missing["code"] == "10000" and "refund_amount" not in missing
    rest = merchant.call("alipay.trade.refund", {**refund, "out_request_no": "re_2", "refund_amount": "80.00"})
    assert rest["fund_change"] == "Y"
    assert merchant.call("alipay.trade.query", {"out_trade_no": number})["trade_status"] == "TRADE_CLOSED"
    # The notifies, verified by the hub's verifier: payment, then each refund (the last with TRADE_CLOSED).
    wait_for(lambda: len(receiver.verified) == 3)
    payment, partial, full = receiver.verified
    assert (payment.kind, payment.object_id, payment.payment.outcome if payment.payment else None) == (
        "payment", number, "succeeded")
    assert (partial.kind, partial.object_id, partial.raw["trade_status"]) == ("refund", "re_1", "TRADE_SUCCESS")
    assert (full.kind, full.object_id, full.raw["trade_status"], full.raw["refund_fee"]) == (
        "refund", "re_2", "TRADE_CLOSED", "88.88")
    assert receiver.rejected == []


def test_unpaid_trade_closes_and_notifies(sandbox: AlipaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    number, qr_code = precreate_qr(merchant, receiver)
    scanned = requests.get(qr_code, timeout=10)  # the payer scans: the trade exists, waiting for them
    assert scanned.status_code == 200 and "确认付款" in scanned.text
    assert merchant.call("alipay.trade.query", {"out_trade_no": number})["trade_status"] == "WAIT_BUYER_PAY"
    assert merchant.call("alipay.trade.close", {"out_trade_no": number})["code"] == "10000"
    assert merchant.call("alipay.trade.close", {"out_trade_no": number})["code"] == "10000"  # again: quiet
    wait_for(lambda: receiver.verified)
    assert receiver.verified[0].payment is not None and receiver.verified[0].payment.outcome == "closed"
    assert pay(sandbox, number).status_code == 409


def test_page_order_is_opened_by_the_payer_and_paid_at_the_cashier(sandbox: AlipaySandbox, merchant: Merchant,
                                                                   receiver: Receiver) -> None:
    number = order_no()
    params = merchant.params("alipay.trade.page.pay", {
        "out_trade_no": number, "total_amount": "19.99", "subject": "茶具", "product_code": "FAST_INSTANT_TRADE_PAY"},
        notify_url=receiver.notify_url(merchant), return_url="https://shop.example/done")
    assert pay(sandbox, number).status_code == 404  # nobody opened it yet
    page = requests.get(f"{sandbox.base_url}/gateway.do?{urlencode(params)}", timeout=10)
    assert page.status_code == 200 and "19.99" in page.text and "确认付款" in page.text
    tampered = {**params, "biz_content": params["biz_content"].replace("19.99", "0.01")}
    assert requests.get(f"{sandbox.base_url}/gateway.do?{urlencode(tampered)}", timeout=10).status_code == 400
    done = requests.post(f"{sandbox.base_url}/cashier/{merchant.app_id}/{number}/pay", data={"result": "success"},
                         allow_redirects=False, timeout=10)
    assert done.status_code == 303
    back = dict(parse_qsl(urlsplit(done.headers["Location"]).query))
    assert back["out_trade_no"] == number and back["method"] == "alipay.trade.page.pay.return"
    assert merchant.alipay_signed(canonical(back, ("sign", "sign_type")), back["sign"])
    wait_for(lambda: receiver.verified)
    assert receiver.verified[0].object_id == number


def test_app_order_is_opened_through_the_pay_control_with_its_action(sandbox: AlipaySandbox, merchant: Merchant,
                                                                     receiver: Receiver) -> None:
    number = order_no()
    params = merchant.params("alipay.trade.app.pay", {"out_trade_no": number, "total_amount": "3.00", "subject": "x"},
                             notify_url=receiver.notify_url(merchant))
    action = {"type": "app_params", "order_string": urlencode(params)}
    answer = pay(sandbox, number, action=action)
    assert answer.status_code == 200 and answer.json()["order"]["trade_status"] == "TRADE_SUCCESS"
    forged = {"type": "app_params", "order_string": urlencode({**params, "sign": params["sign"][::-1]})}
    assert pay(sandbox, order_no(), action=forged).status_code == 409


def test_notifies_are_resent_until_the_answer_is_exactly_success(sandbox: AlipaySandbox, merchant: Merchant,
                                                                 receiver: Receiver) -> None:
    receiver.answers = [b"fail", b"success\n", b"success"]
    number = precreate(merchant, receiver)
    pay(sandbox, number)
    rows = wait_for(lambda: [d for d in deliveries(sandbox, number) if d["delivered"]] and deliveries(sandbox, number))
    assert [(d["attempt"], d["delivered"]) for d in rows] == [(1, False), (2, False), (3, True)]
    assert len({v.event_id for v in receiver.verified}) == 1  # the same notify_id every time


def test_duplicate_late_and_suppressed_notifies(sandbox: AlipaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    arm(sandbox, "duplicate_callback", copies=4)
    number = precreate(merchant, receiver)
    pay(sandbox, number)
    wait_for(lambda: len([d for d in deliveries(sandbox, number) if d["delivered"]]) == 4)
    assert len({v.event_id for v in receiver.verified}) == 1
    arm(sandbox, "late", delay_s=0.5)
    late = precreate(merchant, receiver)
    started = time.monotonic()
    pay(sandbox, late)
    wait_for(lambda: deliveries(sandbox, late))
    assert time.monotonic() - started >= 0.45
    arm(sandbox, "no_callback")
    quiet = precreate(merchant, receiver)
    pay(sandbox, quiet)
    suppressed = requests.get(f"{sandbox.base_url}/_sandbox/deliveries", params={"out_trade_no": quiet}, timeout=10).json()
    assert suppressed["suppressed"][0]["fault"] == "no_callback" and suppressed["attempts"] == []


@pytest.mark.parametrize("fault", ["forged", "tampered"])
def test_spoiled_notifies_fail_the_hub_verifier_then_the_resend_passes(sandbox: AlipaySandbox, merchant: Merchant,
                                                                       receiver: Receiver, fault: str) -> None:
    arm(sandbox, fault)
    number = precreate(merchant, receiver)
    pay(sandbox, number)
    wait_for(lambda: receiver.verified)
    assert len(receiver.rejected) == 1 and "signature" in receiver.rejected[0]

    def recorded() -> list[bool] | None:  # the sandbox records an attempt once the hub has answered it
        delivered = [attempt["delivered"] for attempt in deliveries(sandbox, number)]
        return delivered if len(delivered) >= 2 else None

    assert wait_for(recorded)[:2] == [False, True]


def test_out_of_order_holds_the_payment_notify_behind_the_refund(sandbox: AlipaySandbox, merchant: Merchant,
                                                                 receiver: Receiver) -> None:
    arm(sandbox, "out_of_order", delay_s=10)
    number = precreate(merchant, receiver, amount="5.00")
    pay(sandbox, number)
    time.sleep(0.2)
    assert receiver.verified == []
    merchant.call("alipay.trade.refund", {"out_trade_no": number, "refund_amount": "5.00", "out_request_no": "re_o"})
    wait_for(lambda: len(receiver.verified) == 2)
    assert [v.kind for v in receiver.verified] == ["refund", "payment"]


def test_gateway_faults(sandbox: AlipaySandbox, merchant: Merchant) -> None:
    arm(sandbox, "error_5xx", match="alipay.trade.query")
    assert merchant.post(merchant.params("alipay.trade.query", {"out_trade_no": "x"})).status_code == 502
    arm(sandbox, "system_error")
    assert merchant.call("alipay.trade.query", {"out_trade_no": "x"})["code"] == "20000"
    arm(sandbox, "timeout", delay_s=1.0)
    with pytest.raises(requests.Timeout):
        merchant.post(merchant.params("alipay.trade.query", {"out_trade_no": "x"}), timeout_s=0.3)
    assert requests.post(f"{sandbox.base_url}/_sandbox/faults", json={"fault": "stale"}, timeout=10).status_code == 400
    assert requests.post(f"{sandbox.base_url}/_sandbox/faults", json={"fault": "nope"}, timeout=10).status_code == 400


def test_forgotten_orders_are_not_found_and_leave_the_bill(sandbox: AlipaySandbox, merchant: Merchant) -> None:
    number = precreate(merchant, None)
    pay(sandbox, number)
    assert requests.post(f"{sandbox.base_url}/_sandbox/orders/{number}/forget", timeout=10).status_code == 200
    assert merchant.call("alipay.trade.query", {"out_trade_no": number})["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    assert requests.get(f"{sandbox.base_url}/_sandbox/orders/{number}", timeout=10).status_code == 404
    rows = bill_rows(merchant, today())
    assert number not in {r.object_id for r in rows if isinstance(r, StatementRow)}


def test_key_rotation_keeps_old_signatures_on_resends(receiver: Receiver) -> None:
    box = AlipaySandbox(retry_scale=0.001)  # its own Alipay keys: rotating them must not disturb other tests
    box.start()
    try:
        merchant = register(box.base_url)
        receiver.answers = [b"fail"]
        number = precreate(merchant, receiver)
        pay(box, number)
        wait_for(lambda: receiver.verified)
        old_id = merchant.registration["alipay_key_id"]
        rotated = requests.post(f"{box.base_url}/_sandbox/alipay-keys/rotate", json={"sign_type": "RSA2"},
                                timeout=10).json()
        wait_for(lambda: len(receiver.verified) == 2)  # the re-send still carries the old key's signature
        assert receiver.rejected == [] and rotated["RSA2"]["alipay_key_id"] != old_id
        merchant.alipay_public_key = rotated["RSA2"]["alipay_public_key"]
        assert merchant.call("alipay.trade.query", {"out_trade_no": number})["code"] == "10000"  # new key signs answers
    finally:
        box.stop()


# -- control API ---------------------------------------------------------------------------------------------


def test_control_api_errors(sandbox: AlipaySandbox, merchant: Merchant) -> None:
    base = sandbox.base_url
    assert requests.post(f"{base}/_sandbox/pay", json={"out_trade_no": "att_never"}, timeout=10).status_code == 404
    number = precreate(merchant, None)
    assert pay(sandbox, number, result="maybe").status_code == 400
    assert pay(sandbox, number).status_code == 200
    assert pay(sandbox, number).status_code == 409  # paid already
    ledger = requests.get(f"{base}/_sandbox/ledger", params={"app_id": merchant.app_id}, timeout=10).json()["entries"]
    assert any(e["out_trade_no"] == number and e["amount_fen"] == 8888 for e in ledger)
    for bad in ({"app_id": "x", "pid": "123", "app_public_key": "k"}, {"app_id": "x", "pid": "2088000000000001",
                                                                      "app_public_key": "not a key"}):
        assert requests.post(f"{base}/_sandbox/merchants", json=bad, timeout=10).status_code == 400
    assert requests.post(f"{base}/_sandbox/statement-faults", json={"day": "2024-05-20", "kind": "odd"},
                         timeout=10).status_code == 400


# -- bills ---------------------------------------------------------------------------------------------------


def today() -> str:
    return datetime.now(BEIJING).date().isoformat()


def download(merchant: Merchant, day: str) -> bytes:
    answer = merchant.call("alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": day})
    assert answer["code"] == "10000", answer
    response = requests.get(answer["bill_download_url"], timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/zip"
    return response.content


def bill_rows(merchant: Merchant, day: str) -> list[StatementRow | StatementSummary]:
    return list(parse_trade_bill([download(merchant, day)]))


def test_bill_is_a_zip_of_gbk_csvs_in_alipays_layout(sandbox: AlipaySandbox, receiver: Receiver) -> None:
    merchant = register(sandbox.base_url)
    number = precreate(merchant, receiver, amount="100.00")
    pay(sandbox, number)
    merchant.call("alipay.trade.refund", {"out_trade_no": number, "refund_amount": "10.00", "out_request_no": "re_b"})
    content = download(merchant, today())
    zipped = zipfile.ZipFile(io.BytesIO(content))
    infos = zipped.infolist()
    assert all(not info.flag_bits & 0x800 for info in infos)  # GBK names, no UTF-8 flag
    names = [info.filename.encode("cp437").decode("gbk") for info in infos]
    stem = f"{merchant.pid}0156_{today().replace('-', '')}"
    assert names == [f"{stem}_业务明细.csv", f"{stem}_业务明细(汇总).csv"]
    lines = zipped.read(infos[0]).decode("gbk").split("\r\n")
    assert lines[0] == "#支付宝业务明细查询" and lines[1] == f"#账号：[{merchant.pid}0156]"
    assert lines[4].startswith("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间")
    payment_row, refund_row = lines[5].split(","), lines[6].split(",")
    assert payment_row[1] == f"{number}\t" and payment_row[2] == "交易\t" and payment_row[11] == "100.00"
    assert refund_row[2] == "退款\t" and refund_row[11] == "-10.00" and refund_row[21] == "re_b\t"
    assert lines[8] == "#交易合计：1笔，商家实收共100.00元，商家优惠共0.00元"
    assert lines[9] == "#退款合计：1笔，商家实收退款共-10.00元，商家优惠退款共0.00元"
    summary = zipped.read(infos[1]).decode("gbk")
    assert "合计,,1,1,90.00,90.00" in summary
    *rows, totals = parse_trade_bill([content])  # the hub's parser reads it, totals and all
    assert [(r.kind, r.amount.minor) for r in rows if isinstance(r, StatementRow)] == [("payment", 10000), ("refund", 1000)]
    assert isinstance(totals, StatementSummary) and (totals.count, totals.settlement) == (2, Money(9000 - 54, "CNY"))
    future = (datetime.now(BEIJING) + timedelta(days=2)).date().isoformat()
    assert merchant.call("alipay.data.dataservice.bill.downloadurl.query",
                         {"bill_type": "trade", "bill_date": future})["sub_code"] == "isp.bill_not_exist"


@pytest.mark.parametrize(("kind", "options", "check"), [
    ("drop_row", {}, lambda rows, n: n not in {r.object_id for r in rows}),
    ("extra_row", {"out_trade_no": "att_ghost", "amount": 4321},
     lambda rows, n: any(r.object_id == "att_ghost" and r.amount.minor == 4321 for r in rows)),
    ("amount", {"delta": 7}, lambda rows, n: [r.amount.minor for r in rows if r.object_id == n] == [2007]),
    ("currency", {"currency": "USD"}, lambda rows, n: [r.amount.currency for r in rows if r.object_id == n] == ["USD"]),
    ("status", {"status": "CLOSED"}, lambda rows, n: [r.status for r in rows if r.object_id == n] == ["closed"]),
    ("fee", {"fee": 99}, lambda rows, n: [r.fee.minor for r in rows if r.object_id == n] == [99]),
    ("duplicate_row", {}, lambda rows, n: [r.object_id for r in rows].count(n) == 2),
])
def test_statement_faults(sandbox: AlipaySandbox, kind: str, options: dict[str, Any],
                          check: Callable[[list[StatementRow], str], bool]) -> None:
    merchant = register(sandbox.base_url)
    number = precreate(merchant, None, amount="20.00")
    pay(sandbox, number)
    body = {"day": today(), "kind": kind, "out_trade_no": number, **options}
    assert requests.post(f"{sandbox.base_url}/_sandbox/statement-faults", json=body, timeout=10).status_code == 200
    rows = [r for r in bill_rows(merchant, today()) if isinstance(r, StatementRow)]
    assert check(rows, number), rows


def test_corrupt_statement_fails_to_parse_naming_a_line(sandbox: AlipaySandbox) -> None:
    from chalicelib.domain.errors import ChannelError

    merchant = register(sandbox.base_url)
    pay(sandbox, precreate(merchant, None))
    requests.post(f"{sandbox.base_url}/_sandbox/statement-faults", json={"day": today(), "kind": "corrupt"}, timeout=10)
    with pytest.raises(ChannelError, match=r"业务明细.csv line \d+"):
        bill_rows(merchant, today())
