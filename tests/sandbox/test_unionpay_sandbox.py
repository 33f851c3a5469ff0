"""The UnionPay ACP sandbox over real HTTP on 127.0.0.1.

The merchant side here signs and reads messages with helpers written from docs/channels/unionpay.md#wire-rules (not the hub's
adapter); the sandbox's notifications and statements are then checked with the HUB's own verifier and parser.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chalicelib.channels.base import InboundCallback, NotificationKind, PaymentOutcome, StatementKind
from chalicelib.channels.unionpay import UnionPayAdapter
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.errors import CallbackRejected, ChannelError
from chalicelib.domain.money import Money
from sandbox.unionpay import UnionPaySandbox

BEIJING = timezone(timedelta(hours=8))
WAIT_S = 5.0
DEBIT, CHALLENGE_CREDIT, PLAIN_CREDIT, DECLINED = ("6217000000000000012", "6258000000000022", "6225880000000035",
                                                  "6217000000000000046")
PHONES = {DEBIT: "13800138000", CHALLENGE_CREDIT: "13900139000", PLAIN_CREDIT: "13700137000", DECLINED: "13600136000"}


def wait_for(predicate: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s")


# -- the merchant, as the protocol describes it ------------------------------------------------------------------


def digest_hex(fields: dict[str, str]) -> bytes:
    text = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "signature")
    return hashlib.sha256(text.encode()).hexdigest().encode()


def read_answer(body: bytes) -> dict[str, str]:
    out, depth, start, text = {}, 0, 0, body.decode()
    for i, ch in enumerate(text + "&"):
        depth += 1 if ch == "{" else -1 if ch == "}" else 0
        if ch == "&" and depth == 0:
            key, _, value = text[start:i].partition("=")
            out[key] = value
            start = i + 1
    return out


@dataclass
class Merchant:
    base_url: str
    merchant_id: str
    key: rsa.RSAPrivateKey
    registration: dict[str, Any] = field(default_factory=dict)

    @property
    def cert_id(self) -> str:
        return self.registration["cert_id"]

    def signed(self, fields: dict[str, str], *, key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
        out = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "certId": self.cert_id, "accessType": "0",
               "merId": self.merchant_id, **fields}
        out["signature"] = base64.b64encode((key or self.key).sign(digest_hex(out), padding.PKCS1v15(),
                                                                   hashes.SHA256())).decode()
        return out

    def post(self, path: str, fields: dict[str, str], **kw: Any) -> requests.Response:
        return requests.post(f"{self.base_url}{path}", data=urlencode(fields), timeout=kw.pop("timeout", 10),
                             headers={"Content-Type": "application/x-www-form-urlencoded"}, **kw)

    def call(self, path: str, fields: dict[str, str]) -> dict[str, str]:
        response = self.post(path, self.signed(fields))
        assert response.status_code == 200, response.text
        return read_answer(response.content)

    def encrypt(self, text: str) -> str:
        cert = x509.load_pem_x509_certificate(self.registration["encrypt_cert"].encode())
        return base64.b64encode(cert.public_key().encrypt(text.encode(), padding.PKCS1v15())).decode()

    def card_fields(self, number: str, *, sms: str | None = None, cvn2: str | None = None, phone: str | None = None,
                    expired: str = "2912") -> dict[str, str]:
        sealed = "&".join(f"{k}={v}" for k, v in (("phoneNo", phone or PHONES.get(number, "13500135000")),
                                                   ("cvn2", cvn2), ("expired", expired)) if v)
        plain = f"smsCode={sms}&" if sms else ""
        info = base64.b64encode(("{" + plain + "encryptedInfo=" + self.encrypt(sealed) + "}").encode()).decode()
        return {"accNo": self.encrypt(number), "encryptCertId": self.registration["encrypt_cert_id"], "customerInfo": info}

    def hub_account(self, environment: str = "production") -> ChannelAccount:
        reg = self.registration
        config = ChannelAccountConfig(account_id="unionpay-sbx", channel="unionpay", methods=("unionpay.gateway",),
                                      api_base_url=self.base_url,
                                      settings={"merchant_id": self.merchant_id, "cert_id": self.cert_id,
                                                "environment": environment})
        private_pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        return ChannelAccount(config, ChannelSecrets({
            "merchant_private_key": private_pem, "encrypt_cert": reg["encrypt_cert"],
            "middle_certs": {reg["middle_serial"]: reg["middle_cert"]}, "root_certs": {reg["root_serial"]: reg["root_cert"]}}))


class Receiver:
    """The merchant's backUrl: verifies each notify with the hub's verifier and answers 200 only when valid."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.verdicts: list[bool] = []
        self.fail_next = 0
        self.account: ChannelAccount | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = receiver.accept(body)
                self.send_response(200 if ok else 400)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if ok else b"no")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"

    def accept(self, body: bytes) -> bool:
        fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
        self.received.append(fields)
        if self.fail_next:
            self.fail_next -= 1
            self.verdicts.append(False)
            return False
        assert self.account is not None
        try:
            UnionPayAdapter(None, clock=lambda: datetime.now(UTC)).verify_and_parse_notification(  # type: ignore[arg-type]
                self.account, InboundCallback({}, body, datetime.now(UTC)))
        except CallbackRejected:
            self.verdicts.append(False)
            return False
        self.verdicts.append(True)
        return True

    def for_order(self, order_id: str, txn_type: str = "01") -> list[dict[str, str]]:
        return [f for f in self.received if f.get("orderId") == order_id and f.get("txnType") == txn_type]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[UnionPaySandbox]:
    box = UnionPaySandbox(retry_scale=0.001, refund_settle_s=0.05)
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def merchant(sandbox: UnionPaySandbox) -> Merchant:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    answer = requests.post(f"{sandbox.base_url}/_sandbox/merchants",
                           json={"merchant_id": "777290058110048", "merchant_public_key": public.decode()}, timeout=10)
    assert answer.status_code == 200, answer.text
    return Merchant(sandbox.base_url, "777290058110048", key, answer.json())


@pytest.fixture(scope="module")
def receiver(merchant: Merchant) -> Iterator[Receiver]:
    box = Receiver()
    box.account = merchant.hub_account()
    yield box
    box.server.shutdown()


@pytest.fixture(autouse=True)
def _clean(sandbox: UnionPaySandbox) -> Iterator[None]:
    yield
    requests.delete(f"{sandbox.base_url}/_sandbox/faults", timeout=5)
    requests.delete(f"{sandbox.base_url}/_sandbox/statement-faults", timeout=5)


_counter = iter(range(1, 10**6))


def new_order_id() -> str:
    return f"attZ0sbx{next(_counter):06d}{datetime.now(UTC):%H%M%S%f}"


def now_txn() -> str:
    return datetime.now(BEIJING).strftime("%Y%m%d%H%M%S")


def consume(order_id: str, amount: int, back_url: str, channel_type: str = "08", **more: str) -> dict[str, str]:
    return {"txnType": "01", "txnSubType": "01", "bizType": "000201", "channelType": channel_type, "orderId": order_id,
            "txnTime": now_txn(), "txnAmt": str(amount), "currencyCode": "156", "backUrl": back_url, **more}


def control(sandbox: UnionPaySandbox, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{sandbox.base_url}/_sandbox{path}", timeout=10, **kw)


def app_order(merchant: Merchant, receiver: Receiver, amount: int = 100) -> tuple[str, dict[str, str]]:
    order_id = new_order_id()
    fields = consume(order_id, amount, receiver.url)
    answer = merchant.call("/gateway/api/appTransReq.do", fields)
    assert answer["respCode"] == "00", answer
    return order_id, fields


# -- the gateway checks the hub's signatures ---------------------------------------------------------------------------


def test_answers_are_signed_by_a_unionpay_certificate_the_hub_trusts(merchant, receiver):
    from chalicelib.channels.unionpay.credentials import UnionPayCredentials
    from chalicelib.channels.unionpay.verification import check_signed

    order_id, _ = app_order(merchant, receiver)
    answer = merchant.call("/gateway/api/appTransReq.do", consume(order_id, 1, receiver.url))
    assert answer["respCode"] == "12"  # the same orderId again: duplicate, still a signed answer
    check_signed(answer, UnionPayCredentials.from_account(merchant.hub_account()), datetime.now(UTC))


@pytest.mark.parametrize("spoil", ["unsigned", "forged", "tampered", "unknown_cert", "other_merchant"])
def test_requests_without_a_valid_merchant_signature_are_refused_with_11(merchant, receiver, spoil):
    fields = merchant.signed(consume(new_order_id(), 100, receiver.url))
    if spoil == "unsigned":
        del fields["signature"]
    elif spoil == "forged":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        fields = merchant.signed(consume(new_order_id(), 100, receiver.url), key=other)
    elif spoil == "tampered":
        fields["txnAmt"] = "1"
    elif spoil == "unknown_cert":
        fields["certId"] = "12345"
    else:
        fields["merId"] = "777290058119999"
    answer = read_answer(merchant.post("/gateway/api/appTransReq.do", fields).content)
    assert answer["respCode"] == "11"
    assert "tn" not in answer


def test_malformed_messages_are_refused_with_10(merchant, receiver):
    answer = merchant.call("/gateway/api/appTransReq.do", consume("short", 100, receiver.url))
    assert answer["respCode"] == "10"
    answer = merchant.call("/gateway/api/appTransReq.do", consume(new_order_id(), 100, receiver.url, txnAmt="1.00"))
    assert answer["respCode"] == "10"


# -- QuickPass and gateway ------------------------------------------------------------------------------------------------


def test_quickpass_tn_then_payment_notifies_with_a_signature_the_hub_accepts(sandbox, merchant, receiver):
    order_id, fields = app_order(merchant, receiver, 8888)
    paid = control(sandbox, "POST", "/pay", json={"out_trade_no": order_id})
    assert paid.status_code == 200 and paid.json()["order"]["status"] == "PAID"
    notify = wait_for(lambda: receiver.for_order(order_id))[0]
    assert (notify["respCode"], notify["txnAmt"], notify["merId"], notify["txnTime"]) == (
        "00", "8888", merchant.merchant_id, fields["txnTime"])
    note = UnionPayAdapter(None).verify_and_parse_notification(  # type: ignore[arg-type]
        merchant.hub_account(), InboundCallback({}, urlencode(notify).encode(), datetime.now(UTC)))
    assert note.kind is NotificationKind.PAYMENT and note.object_id == order_id.replace("Z0", "_", 1)
    assert note.payment is not None and note.payment.outcome is PaymentOutcome.SUCCEEDED
    assert note.payment.amount == Money(8888, "CNY")
    query = merchant.call("/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000",
                                                         "orderId": order_id, "txnTime": fields["txnTime"]})
    assert (query["respCode"], query["origRespCode"], query["queryId"]) == ("00", "00", notify["queryId"])


def test_query_needs_the_original_txn_time(merchant, receiver):
    order_id, _ = app_order(merchant, receiver)
    query = merchant.call("/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000",
                                                         "orderId": order_id, "txnTime": "20200101000000"})
    assert query["respCode"] == "34"


def test_the_gateway_form_opens_the_cashier_and_pay_works_with_or_without_the_browser(sandbox, merchant, receiver):
    order_id = new_order_id()
    form = merchant.signed(consume(order_id, 500, receiver.url, channel_type="07", frontUrl="https://shop.example/r"))
    page = merchant.post("/gateway/api/frontTransReq.do", form)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert page.headers["X-Sandbox-OrderId"] == order_id
    paid = control(sandbox, "POST", "/pay", json={"out_trade_no": order_id})
    assert paid.json()["order"]["status"] == "PAID"
    wait_for(lambda: receiver.for_order(order_id))
    # Without the browser: /_sandbox/pay submits the form itself, given the fields or the whole action.
    other, another = new_order_id(), new_order_id()
    form = merchant.signed(consume(other, 600, receiver.url, channel_type="07"))
    paid = control(sandbox, "POST", "/pay", json={"out_trade_no": other, "form": form})
    assert paid.status_code == 200 and paid.json()["order"]["status"] == "PAID"
    action = {"type": "form_post", "url": "ignored", "fields": merchant.signed(consume(another, 650, receiver.url,
                                                                                       channel_type="07"))}
    assert control(sandbox, "POST", "/pay", json={"out_trade_no": another, "action": action}).status_code == 200
    # And through the cashier page's own button, which returns the browser to frontUrl with signed fields.
    third = new_order_id()
    merchant.post("/gateway/api/frontTransReq.do", merchant.signed(consume(third, 700, receiver.url, channel_type="07",
                                                                            frontUrl="https://shop.example/r")))
    back = requests.post(f"{sandbox.base_url}/_sandbox/cashier/{merchant.merchant_id}/{third}", data={"result": "success"},
                         timeout=10)
    assert "https://shop.example/r" in back.text and "signature" in back.text


def test_a_gateway_form_with_a_bad_signature_shows_an_error_page(merchant, receiver):
    form = merchant.signed(consume(new_order_id(), 500, receiver.url, channel_type="07"))
    form["txnAmt"] = "1"
    page = merchant.post("/gateway/api/frontTransReq.do", form)
    assert page.status_code == 400 and page.headers["X-Sandbox-RespCode"] == "11"


def test_pay_control_errors(sandbox, merchant, receiver):
    assert control(sandbox, "POST", "/pay", json={"out_trade_no": "att_nosuchorder"}).status_code == 404
    order_id, _ = app_order(merchant, receiver)
    assert control(sandbox, "POST", "/pay", json={"out_trade_no": order_id, "result": "maybe"}).status_code == 400
    assert control(sandbox, "POST", "/pay", json={"out_trade_no": order_id}).status_code == 200
    assert control(sandbox, "POST", "/pay", json={"out_trade_no": order_id}).status_code == 409


# -- card: SMS, consume, 3-D Secure ---------------------------------------------------------------------------------------


def sms_then_code(sandbox: Any, merchant: Merchant, number: str, amount: int = 1000, **card: str) -> tuple[str, str, str]:
    order_id, txn = new_order_id(), now_txn()
    answer = merchant.call("/gateway/api/backTransReq.do", {
        "txnType": "77", "txnSubType": "02", "bizType": "000301", "channelType": "07", "orderId": order_id, "txnTime": txn,
        "txnAmt": str(amount), "currencyCode": "156", **merchant.card_fields(number, **card)})
    assert answer["respCode"] == "00", answer
    code = control(sandbox, "GET", f"/sms/{order_id}").json()["code"]
    assert len(code) == 6 and code.isdigit()
    return order_id, txn, code


def card_consume(merchant: Merchant, receiver: Receiver, order_id: str, txn: str, number: str, code: str,
                 amount: int = 1000, **card: str) -> dict[str, str]:
    return merchant.call("/gateway/api/backTransReq.do", {
        "txnType": "01", "txnSubType": "01", "bizType": "000301", "channelType": "07", "orderId": order_id, "txnTime": txn,
        "txnAmt": str(amount), "currencyCode": "156", "backUrl": receiver.url,
        **merchant.card_fields(number, sms=code, **card)})


def test_debit_card_sms_then_consume_pays_and_notifies(sandbox, merchant, receiver):
    order_id, txn, code = sms_then_code(sandbox, merchant, DEBIT)
    query = merchant.call("/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000",
                                                         "orderId": order_id, "txnTime": txn})
    assert (query["txnType"], query["origRespCode"]) == ("77", "00")
    wrong = card_consume(merchant, receiver, order_id, txn, DEBIT, "000000" if code != "000000" else "111111")
    assert wrong["respCode"] == "70"
    answer = card_consume(merchant, receiver, order_id, txn, DEBIT, code)
    assert answer["respCode"] == "00" and "challengeUrl" not in answer
    notify = wait_for(lambda: receiver.for_order(order_id))[0]
    assert notify["accNo"] == "621700*********0012"
    again = card_consume(merchant, receiver, order_id, txn, DEBIT, code)
    assert again["respCode"] == "12"
    shown = control(sandbox, "GET", f"/orders/{order_id}").json()["order"]
    assert shown["card"] == "621700*********0012" and DEBIT not in str(shown)


def test_credit_card_with_challenge_waits_for_the_payer_then_pays(sandbox, merchant, receiver):
    order_id, txn, code = sms_then_code(sandbox, merchant, CHALLENGE_CREDIT, cvn2="123")
    assert control(sandbox, "POST", "/pay", json={"out_trade_no": order_id}).status_code == 409  # SMS step first
    missing_cvn2 = card_consume(merchant, receiver, order_id, txn, CHALLENGE_CREDIT, code)
    assert missing_cvn2["respCode"] == "63"
    answer = card_consume(merchant, receiver, order_id, txn, CHALLENGE_CREDIT, code, cvn2="123")
    assert answer["respCode"] == "00" and "/_sandbox/challenge/" in answer["challengeUrl"]
    page = requests.get(answer["challengeUrl"], timeout=10)
    assert page.status_code == 200 and "6258" in page.text and CHALLENGE_CREDIT not in page.text
    query = merchant.call("/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000",
                                                         "orderId": order_id, "txnTime": txn})
    assert query["origRespCode"] == "05"
    assert receiver.for_order(order_id) == []
    paid = control(sandbox, "POST", "/pay", json={"out_trade_no": order_id})
    assert paid.json()["order"]["status"] == "PAID"
    wait_for(lambda: receiver.for_order(order_id))


def test_the_challenge_page_itself_completes_the_payment(sandbox, merchant, receiver):
    order_id, txn, code = sms_then_code(sandbox, merchant, CHALLENGE_CREDIT, cvn2="123")
    answer = card_consume(merchant, receiver, order_id, txn, CHALLENGE_CREDIT, code, cvn2="123")
    done = requests.post(answer["challengeUrl"], data={"result": "fail"}, timeout=10)
    assert done.status_code == 200
    query = merchant.call("/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000",
                                                         "orderId": order_id, "txnTime": txn})
    assert query["origRespCode"] == "72"


def test_an_authentication_still_open_at_pay_timeout_fails(sandbox, merchant, receiver):
    order_id, txn = new_order_id(), now_txn()
    past = (datetime.now(BEIJING) - timedelta(seconds=1)).strftime("%Y%m%d%H%M%S")
    merchant.call("/gateway/api/backTransReq.do", {
        "txnType": "77", "txnSubType": "02", "bizType": "000301", "channelType": "07", "orderId": order_id, "txnTime": txn,
        "txnAmt": "100", "currencyCode": "156", "payTimeout": past, **merchant.card_fields(CHALLENGE_CREDIT, cvn2="123")})
    code = control(sandbox, "GET", f"/sms/{order_id}").json()["code"]
    assert card_consume(merchant, receiver, order_id, txn, CHALLENGE_CREDIT, code, amount=100, cvn2="123")["respCode"] == "00"
    query = merchant.call("/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000",
                                                         "orderId": order_id, "txnTime": txn})
    assert query["origRespCode"] == "06"
    assert control(sandbox, "POST", "/pay", json={"out_trade_no": order_id}).status_code == 409


def test_declined_and_unknown_cards(sandbox, merchant, receiver):
    order_id, txn, code = sms_then_code(sandbox, merchant, DECLINED)
    assert card_consume(merchant, receiver, order_id, txn, DECLINED, code)["respCode"] == "61"
    answer = merchant.call("/gateway/api/backTransReq.do", {
        "txnType": "77", "txnSubType": "02", "bizType": "000301", "channelType": "07", "orderId": new_order_id(),
        "txnTime": now_txn(), "txnAmt": "100", "currencyCode": "156", **merchant.card_fields("4111111111111111")})
    assert answer["respCode"] == "60"
    wrong_phone = merchant.call("/gateway/api/backTransReq.do", {
        "txnType": "77", "txnSubType": "02", "bizType": "000301", "channelType": "07", "orderId": new_order_id(),
        "txnTime": now_txn(), "txnAmt": "100", "currencyCode": "156", **merchant.card_fields(DEBIT, phone="13000000000")})
    assert wrong_phone["respCode"] == "62"


def test_the_sms_code_is_used_up_after_five_wrong_tries(sandbox, merchant, receiver):
    order_id, txn, code = sms_then_code(sandbox, merchant, DEBIT)
    wrong = "000000" if code != "000000" else "111111"
    codes = [card_consume(merchant, receiver, order_id, txn, DEBIT, wrong)["respCode"] for _ in range(5)]
    assert codes == ["70", "70", "70", "70", "71"]


def test_test_cards_are_listed(sandbox):
    listed = control(sandbox, "GET", "/cards").json()["cards"]
    assert {c["behaviour"] for c in listed} == {"pay", "challenge", "decline"}


# -- refunds ------------------------------------------------------------------------------------------------------------------


def paid_app_order(sandbox: Any, merchant: Merchant, receiver: Receiver, amount: int = 1000) -> tuple[str, str]:
    order_id, _ = app_order(merchant, receiver, amount)
    control(sandbox, "POST", "/pay", json={"out_trade_no": order_id})
    notify = wait_for(lambda: receiver.for_order(order_id))[0]
    return order_id, notify["queryId"]


def refund(merchant: Merchant, receiver: Receiver, orig_query_id: str, amount: int) -> tuple[str, str, dict[str, str]]:
    refund_id, txn = new_order_id().replace("att", "re", 1), now_txn()
    answer = merchant.call("/gateway/api/backTransReq.do", {
        "txnType": "04", "txnSubType": "00", "bizType": "000201", "channelType": "07", "orderId": refund_id, "txnTime": txn,
        "txnAmt": str(amount), "currencyCode": "156", "origQryId": orig_query_id, "backUrl": receiver.url})
    return refund_id, txn, answer


def test_refund_is_accepted_then_notified_and_queryable(sandbox, merchant, receiver):
    _, query_id = paid_app_order(sandbox, merchant, receiver)
    refund_id, txn, answer = refund(merchant, receiver, query_id, 300)
    assert answer["respCode"] == "00"
    notify = wait_for(lambda: receiver.for_order(refund_id, "04"))[0]
    assert (notify["origQryId"], notify["txnAmt"]) == (query_id, "300")
    query = merchant.call("/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000",
                                                         "orderId": refund_id, "txnTime": txn})
    assert (query["txnType"], query["origRespCode"]) == ("04", "00")
    assert refund(merchant, receiver, query_id, 701)[2]["respCode"] == "30"  # more than is left
    assert refund(merchant, receiver, "123", 1)[2]["respCode"] == "35"


# -- faults -------------------------------------------------------------------------------------------------------------------


def arm(sandbox: UnionPaySandbox, **fault: Any) -> None:
    response = control(sandbox, "POST", "/faults", json=fault)
    assert response.status_code == 200, response.text


def test_error_5xx_timeout_and_resp_code_faults(sandbox, merchant, receiver):
    arm(sandbox, fault="error_5xx", path_prefix="/gateway/api/appTransReq.do")
    refused = merchant.post("/gateway/api/appTransReq.do", merchant.signed(consume(new_order_id(), 1, receiver.url)))
    assert refused.status_code == 503
    arm(sandbox, fault="timeout", delay_s=1.0)
    order_id = new_order_id()
    with pytest.raises(requests.Timeout):
        merchant.post("/gateway/api/appTransReq.do", merchant.signed(consume(order_id, 1, receiver.url)), timeout=0.3)
    assert wait_for(lambda: control(sandbox, "GET", f"/orders/{order_id}").status_code == 200)  # the work was done
    arm(sandbox, fault="resp_code", code="04")
    assert merchant.call("/gateway/api/appTransReq.do", consume(new_order_id(), 1, receiver.url))["respCode"] == "04"
    assert control(sandbox, "POST", "/faults", json={"fault": "stale"}).status_code == 400


def delivered(sandbox: UnionPaySandbox, order_id: str) -> list[dict[str, Any]]:
    return control(sandbox, "GET", "/deliveries", params={"out_trade_no": order_id}).json()["attempts"]


@pytest.mark.parametrize("fault", ["forged", "tampered", "forged_callback"])
def test_spoiled_notifies_are_rejected_by_the_hub_and_the_resend_is_good(sandbox, merchant, receiver, fault):
    arm(sandbox, fault=fault)
    order_id, _ = paid_app_order(sandbox, merchant, receiver)
    attempts = wait_for(lambda: len(delivered(sandbox, order_id)) >= 2 and delivered(sandbox, order_id))
    assert [a["status_code"] for a in attempts[:2]] == [400, 200]


def test_duplicate_late_and_no_callback(sandbox, merchant, receiver):
    arm(sandbox, fault="duplicate_callback", copies=3)
    order_id, _ = paid_app_order(sandbox, merchant, receiver)
    wait_for(lambda: len(receiver.for_order(order_id)) == 3)
    arm(sandbox, fault="no_callback")
    silent, _ = app_order(merchant, receiver)
    control(sandbox, "POST", "/pay", json={"out_trade_no": silent})
    suppressed = control(sandbox, "GET", "/deliveries", params={"out_trade_no": silent}).json()["suppressed"]
    assert len(suppressed) == 1 and receiver.for_order(silent) == []
    arm(sandbox, fault="late", delay_s=0.4)
    late, _ = app_order(merchant, receiver)
    control(sandbox, "POST", "/pay", json={"out_trade_no": late})
    assert receiver.for_order(late) == []
    wait_for(lambda: receiver.for_order(late))


def test_notifies_are_resent_until_answered_200(sandbox, merchant, receiver):
    receiver.fail_next = 2
    order_id, _ = paid_app_order(sandbox, merchant, receiver)
    attempts = wait_for(lambda: len(delivered(sandbox, order_id)) >= 3 and delivered(sandbox, order_id))
    assert [a["status_code"] for a in attempts[:3]] == [400, 400, 200]


def test_out_of_order_sends_the_refund_notify_before_the_payment_notify(sandbox, merchant, receiver):
    arm(sandbox, fault="out_of_order", delay_s=5)
    order_id, _ = app_order(merchant, receiver, 1000)
    control(sandbox, "POST", "/pay", json={"out_trade_no": order_id})
    query_id = control(sandbox, "GET", f"/orders/{order_id}").json()["order"]["query_id"]
    refund_id, _, _ = refund(merchant, receiver, query_id, 100)
    wait_for(lambda: receiver.for_order(order_id))
    order = [f.get("orderId") for f in receiver.received if f.get("orderId") in (order_id, refund_id)]
    assert order[:2] == [refund_id, order_id]


def test_forget_makes_the_order_unknown(sandbox, merchant, receiver):
    order_id, fields = app_order(merchant, receiver)
    control(sandbox, "POST", "/pay", json={"out_trade_no": order_id})
    assert control(sandbox, "POST", f"/orders/{order_id}/forget").status_code == 200
    query = merchant.call("/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000",
                                                         "orderId": order_id, "txnTime": fields["txnTime"]})
    assert query["respCode"] == "34"
    assert control(sandbox, "GET", f"/orders/{order_id}").status_code == 404


# -- statements -------------------------------------------------------------------------------------------------------------


def download(merchant: Merchant, day: str) -> dict[str, str]:
    return merchant.call("/", {"txnType": "76", "txnSubType": "01", "bizType": "000000", "settleDate": day[5:7] + day[8:],
                               "fileType": "00", "txnTime": now_txn()})


def today() -> str:
    return datetime.now(BEIJING).date().isoformat()


def rows_for(merchant: Merchant, day: str) -> list[Any]:
    adapter = UnionPayAdapter(None, clock=lambda: datetime.now(UTC))  # type: ignore[arg-type]
    answer = download(merchant, day)
    assert answer["respCode"] == "00", answer
    data = zlib.decompress(base64.b64decode(answer["fileContent"]))
    return list(adapter.parse_statement(merchant.hub_account(), [data]))


def test_the_statement_is_a_zlib_zip_of_fixed_width_gbk_files_from_the_ledger(sandbox, merchant, receiver):
    order_id, query_id = paid_app_order(sandbox, merchant, receiver, 2345)
    refund_id, _, _ = refund(merchant, receiver, query_id, 345)
    wait_for(lambda: receiver.for_order(refund_id, "04"))
    answer = download(merchant, today())
    assert answer["fileName"].endswith(".zip")
    bundle = zipfile.ZipFile(io.BytesIO(zlib.decompress(base64.b64decode(answer["fileContent"]))))
    stamp = datetime.now(BEIJING).strftime("%y%m%d")
    assert sorted(bundle.namelist()) == [f"INN{stamp}01ZME_{merchant.merchant_id}", f"INN{stamp}01ZM_{merchant.merchant_id}"]
    zm = bundle.read(f"INN{stamp}01ZM_{merchant.merchant_id}")
    line = zm.split(b"\r\n")[0]
    widths = [3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1, 15, 32,
              13, 13, 8, 32, 13, 13, 12, 2, 1, 32, 98]
    assert len(line) == sum(widths) + len(widths) - 1
    assert "沙箱测试商户".encode("gbk") in zm
    rows = {(r.kind, r.object_id): r for r in rows_for(merchant, today())}
    payment = rows[(StatementKind.PAYMENT, order_id.replace("Z0", "_", 1))]
    assert (payment.amount, payment.channel_ref, payment.status) == (Money(2345, "CNY"), query_id, "succeeded")
    assert payment.fee == Money(13, "CNY")  # 0.55 % of 23.45, rounded half up
    refunded = rows[(StatementKind.REFUND, refund_id.replace("Z0", "_", 1))]
    assert refunded.amount == Money(345, "CNY") and refunded.attempt_id == order_id.replace("Z0", "_", 1)


def test_statement_faults_change_the_file(sandbox, merchant, receiver):
    day = today()
    orders = [paid_app_order(sandbox, merchant, receiver, 1000 + n)[0] for n in range(6)]
    hub = [o.replace("Z0", "_", 1) for o in orders]
    for fault in ({"kind": "drop_row", "out_trade_no": hub[0]}, {"kind": "amount", "out_trade_no": hub[1], "delta": 7},
                  {"kind": "currency", "out_trade_no": hub[2], "currency": "USD"},
                  {"kind": "status", "out_trade_no": hub[3], "status": "failed"},
                  {"kind": "fee", "out_trade_no": hub[4], "fee": 99}, {"kind": "duplicate_row", "out_trade_no": hub[5]},
                  {"kind": "extra_row", "out_trade_no": "att_neverheardof0001", "amount": 4242}):
        assert control(sandbox, "POST", "/statement-faults", json={"day": day, **fault}).status_code == 200
    rows = rows_for(merchant, day)
    by_id: dict[str, list[Any]] = {}
    for row in rows:
        by_id.setdefault(row.object_id, []).append(row)
    assert hub[0] not in by_id
    assert by_id[hub[1]][0].amount == Money(1008, "CNY")
    assert by_id[hub[2]][0].amount.currency == "USD"
    assert by_id[hub[3]][0].status == "failed"
    assert by_id[hub[4]][0].fee == Money(99, "CNY")
    assert len(by_id[hub[5]]) == 2
    assert by_id["att_neverheardof0001"][0].amount == Money(4242, "CNY")
    refund_id, _, _ = refund(merchant, receiver, control(sandbox, "GET", f"/orders/{orders[1]}").json()["order"]["query_id"], 8)
    wait_for(lambda: receiver.for_order(refund_id, "04"))
    control(sandbox, "POST", "/statement-faults", json={"day": day, "kind": "status", "out_refund_no": refund_id,
                                                        "status": "PROCESSING"})
    refund_row = next(r for r in rows_for(merchant, day) if r.object_id == refund_id.replace("Z0", "_", 1))
    assert (refund_row.kind, refund_row.status, refund_row.attempt_id) == (StatementKind.REFUND, "processing", hub[1])
    control(sandbox, "POST", "/statement-faults", json={"day": day, "kind": "corrupt", "merchant_id": "777290058119999"})
    assert rows_for(merchant, day)  # another merchant's fault leaves this file alone
    control(sandbox, "POST", "/statement-faults", json={"day": day, "kind": "corrupt"})
    with pytest.raises(ChannelError, match="line 2"):
        rows_for(merchant, day)
    assert control(sandbox, "POST", "/statement-faults", json={"day": day, "kind": "status", "out_trade_no": "x",
                                                                "status": "weird"}).status_code == 400


def test_forgotten_orders_leave_the_statement_and_a_missing_file_is_98(sandbox, merchant, receiver):
    order_id, _ = paid_app_order(sandbox, merchant, receiver, 777)
    control(sandbox, "POST", f"/orders/{order_id}/forget")
    assert order_id.replace("Z0", "_", 1) not in {r.object_id for r in rows_for(merchant, today())}
    arm(sandbox, fault="file_not_ready")
    assert download(merchant, today())["respCode"] == "98"


def test_registration_is_validated(sandbox):
    assert control(sandbox, "POST", "/merchants", json={"merchant_id": "1", "merchant_public_key": "x"}).status_code == 400
    assert control(sandbox, "POST", "/merchants", json={"merchant_id": "777290058110048",
                                                         "merchant_public_key": "not a key"}).status_code == 400


def test_a_renewed_signing_certificate_still_verifies_with_the_same_anchors(sandbox, merchant, receiver):
    before = control(sandbox, "GET", "/certs").json()["sign_cert"]
    after = control(sandbox, "POST", "/signing-cert/rotate", json={}).json()
    assert after["sign_cert"] != before and after["middle_cert"] == merchant.registration["middle_cert"]
    order_id, _ = paid_app_order(sandbox, merchant, receiver)
    assert receiver.verdicts[-1] is True and receiver.for_order(order_id)[0]["signPubKeyCert"] == after["sign_cert"]
