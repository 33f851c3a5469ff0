"""End-to-end checks of the WeChat Pay v3 sandbox over real HTTP on 127.0.0.1.

The signing and verifying helpers here are written from docs/channels/wechatpay.md on purpose: the tests check the
sandbox against the protocol, not against the hub's adapter.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.crypto.aead import aes_gcm_decrypt, sm4_gcm_decrypt, sm4_key_from_secret
from chalicelib.crypto.rsa import load_public_key, sign_sha256, verify_sha256
from chalicelib.crypto.sm import sm2_generate_keypair, sm2_sign, sm2_verify
from sandbox.wechatpay import WeChatPaySandbox

BEIJING = timezone(timedelta(hours=8))
WAIT_S = 3.0
APPID = "wx2421b1c4370ec43b"


def wait_for(predicate: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s")


# -- a merchant, as the protocol describes it ----------------------------------------------------------------


@dataclass
class Merchant:
    base_url: str
    mchid: str
    sign_type: str
    serial_no: str
    apiv3_key: str
    rsa_private: rsa.RSAPrivateKey | None = None
    sm2_private_hex: str = ""
    sm2_public_hex: str = ""
    platform_key: str = ""
    wechatpay_serial: str = ""
    registration: dict[str, Any] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return "WECHATPAY2-SHA256-RSA2048" if self.sign_type == "RSA" else "WECHATPAY2-SM2-WITH-SM3"

    def public_key_text(self) -> str:
        if self.rsa_private is not None:
            return self.rsa_private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return self.sm2_public_hex

    def sign(self, message: bytes) -> str:
        if self.rsa_private is not None:
            return base64.b64encode(sign_sha256(self.rsa_private, message)).decode()
        return base64.b64encode(sm2_sign(self.sm2_private_hex, self.sm2_public_hex, message)).decode()

    def authorization(self, method: str, target: str, body: bytes, *, timestamp: int | None = None,
                      serial_no: str | None = None, signer: Callable[[bytes], str] | None = None) -> str:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16)
        message = f"{method}\n{target}\n{ts}\n{nonce}\n".encode() + body + b"\n"
        signature = (signer or self.sign)(message)
        return (f'{self.scheme} mchid="{self.mchid}",nonce_str="{nonce}",signature="{signature}",'
                f'timestamp="{ts}",serial_no="{serial_no or self.serial_no}"')

    def call(self, method: str, target: str, payload: Any = None, *, timeout_s: float = 5.0,
             headers: dict[str, str] | None = None, **auth_overrides: Any) -> requests.Response:
        body = b"" if payload is None else json.dumps(payload).encode()
        all_headers = {"Accept": "application/json", "Content-Type": "application/json",
                       "User-Agent": "sandbox-tests", "Authorization": self.authorization(method, target, body,
                                                                                          **auth_overrides)}
        all_headers.update(headers or {})
        return requests.request(method, self.base_url + target, data=body, headers=all_headers, timeout=timeout_s)

    def verify(self, timestamp: str, nonce: str, body: bytes, signature_b64: str) -> bool:
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = base64.b64decode(signature_b64)
        if self.sign_type == "RSA":
            return verify_sha256(load_public_key(self.platform_key), message, signature)
        return sm2_verify(self.platform_key, message, signature)

    def verify_response(self, response: requests.Response) -> bool:
        h = response.headers
        assert h["Wechatpay-Serial"] == self.wechatpay_serial
        assert abs(int(h["Wechatpay-Timestamp"]) - time.time()) < 300
        return self.verify(h["Wechatpay-Timestamp"], h["Wechatpay-Nonce"], response.content, h["Wechatpay-Signature"])

    def decrypt(self, resource: dict[str, str]) -> dict[str, Any]:
        key = self.apiv3_key.encode()
        sealed = base64.b64decode(resource["ciphertext"])
        nonce, aad = resource["nonce"].encode(), resource["associated_data"].encode()
        if resource["algorithm"] == "AEAD_SM4_GCM":
            plain = sm4_gcm_decrypt(sm4_key_from_secret(key), nonce, sealed, aad)
        else:
            assert resource["algorithm"] == "AEAD_AES_256_GCM"
            plain = aes_gcm_decrypt(key, nonce, sealed, aad)
        return json.loads(plain)  # type: ignore[no-any-return]

    def order_body(self, out_trade_no: str, notify_url: str, total: int = 100, **extra: Any) -> dict[str, Any]:
        return {"appid": APPID, "mchid": self.mchid, "description": "测试商品", "out_trade_no": out_trade_no,
                "notify_url": notify_url, "amount": {"total": total, "currency": "CNY"}, **extra}

    def jsapi(self, out_trade_no: str, notify_url: str, total: int = 100) -> requests.Response:
        body = self.order_body(out_trade_no, notify_url, total, payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"})
        return self.call("POST", "/v3/pay/transactions/jsapi", body)

    def query(self, out_trade_no: str) -> requests.Response:
        return self.call("GET", f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={self.mchid}")

    def refund(self, out_trade_no: str, out_refund_no: str, refund: int, total: int = 100,
               notify_url: str | None = None) -> requests.Response:
        body: dict[str, Any] = {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
                                "amount": {"refund": refund, "total": total, "currency": "CNY"}}
        if notify_url:
            body["notify_url"] = notify_url
        return self.call("POST", "/v3/refund/domestic/refunds", body)


# -- a tiny notify_url ---------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at_s: float

    def envelope(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver:
    """Records every callback; ``status_for(n)`` decides the answer to the n-th one (0-based)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status_for: Callable[[int, Received], int] = lambda n, r: 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                item = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with receiver._lock:
                    index = len(receiver.received)
                    receiver.received.append(item)
                status = receiver.status_for(index, item)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None  # keep test output quiet; the sandbox logs its own side

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self, event_type: str | None = None) -> list[Received]:
        with self._lock:
            items = list(self.received)
        return [r for r in items if event_type is None or r.envelope()["event_type"] == event_type]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[WeChatPaySandbox]:
    box = WeChatPaySandbox(retry_scale=0.01, refund_settle_s=0.05)
    box.start("127.0.0.1", 0)
    yield box
    box.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def register(sandbox: WeChatPaySandbox, sign_type: str = "RSA", mchid: str = "1900000109",
             serial_mode: str | None = None) -> Merchant:
    merchant = Merchant(sandbox.base_url, mchid, sign_type, secrets.token_hex(20).upper(), secrets.token_hex(16))
    if sign_type == "RSA":
        merchant.rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        merchant.sm2_private_hex, merchant.sm2_public_hex = sm2_generate_keypair()
    body: dict[str, Any] = {"mchid": mchid, "appids": [APPID], "merchant_serial_no": merchant.serial_no,
                            "sign_type": sign_type, "merchant_public_key": merchant.public_key_text(),
                            "apiv3_key": merchant.apiv3_key}
    if serial_mode:
        body["serial_mode"] = serial_mode
    answer = requests.post(f"{sandbox.base_url}/_sandbox/merchants", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    merchant.registration = answer.json()
    merchant.platform_key = merchant.registration["platform_public_key"]
    merchant.wechatpay_serial = merchant.registration["wechatpay_serial"]
    return merchant


@pytest.fixture
def merchant(sandbox: WeChatPaySandbox) -> Merchant:
    return register(sandbox)


def control(sandbox: WeChatPaySandbox, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, sandbox.base_url + path, json=body, timeout=5)


def pay(sandbox: WeChatPaySandbox, out_trade_no: str, **extra: Any) -> dict[str, Any]:
    answer = control(sandbox, "POST", "/_sandbox/pay", {"out_trade_no": out_trade_no, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()["order"]  # type: ignore[no-any-return]


def arm(sandbox: WeChatPaySandbox, mode: str, **options: Any) -> None:
    answer = control(sandbox, "POST", "/_sandbox/faults", {"mode": mode, **options})
    assert answer.status_code == 200, answer.text


def verifies(merchant: Merchant, item: Received) -> bool:
    h = item.headers
    return merchant.verify(h["wechatpay-timestamp"], h["wechatpay-nonce"], item.body, h["wechatpay-signature"])


# -- authentication ------------------------------------------------------------------------------------------


def test_unsigned_request_is_401_and_the_error_is_signed(merchant: Merchant) -> None:
    answer = requests.get(f"{merchant.base_url}/v3/pay/transactions/out-trade-no/X123456?mchid={merchant.mchid}",
                          timeout=5)
    assert answer.status_code == 401
    assert answer.json()["code"] == "SIGN_ERROR"
    assert merchant.verify_response(answer)


@pytest.mark.parametrize("overrides", [
    pytest.param({"signer": lambda message: base64.b64encode(b"\x00" * 256).decode()}, id="garbage-signature"),
    # Timestamps are taken when the test runs, not when it is collected: the whole suite takes minutes.
    pytest.param({"timestamp": lambda: int(time.time()) - 600}, id="stale-timestamp"),
    pytest.param({"timestamp": lambda: int(time.time()) + 600}, id="future-timestamp"),
    pytest.param({"serial_no": "0123456789ABCDEF"}, id="wrong-serial"),
])
def test_badly_signed_requests_are_401(merchant: Merchant, overrides: dict[str, Any]) -> None:
    overrides = {name: value() if name == "timestamp" else value for name, value in overrides.items()}
    answer = merchant.call("GET", f"/v3/pay/transactions/out-trade-no/X123456?mchid={merchant.mchid}", **overrides)
    assert answer.status_code == 401
    assert answer.json()["code"] == "SIGN_ERROR"


def test_signature_covers_the_exact_body_bytes(merchant: Merchant, receiver: Receiver) -> None:
    body = merchant.order_body("ORDER000001", receiver.url, payer={"openid": "o1"})
    signed = json.dumps(body).encode()
    sent = json.dumps(body, indent=1).encode()  # same JSON, different bytes
    headers = {"Authorization": merchant.authorization("POST", "/v3/pay/transactions/jsapi", signed),
               "Content-Type": "application/json"}
    answer = requests.post(f"{merchant.base_url}/v3/pay/transactions/jsapi", data=sent, headers=headers, timeout=5)
    assert answer.status_code == 401


def test_unknown_merchant_is_401(sandbox: WeChatPaySandbox, merchant: Merchant) -> None:
    merchant.mchid = "1900009999"
    assert merchant.call("GET", "/v3/pay/transactions/out-trade-no/X123456?mchid=1900009999").status_code == 401


# -- orders --------------------------------------------------------------------------------------------------


def test_signed_create_returns_a_verifiable_answer(merchant: Merchant, receiver: Receiver) -> None:
    answer = merchant.jsapi("ORDER000001", receiver.url)
    assert answer.status_code == 200, answer.text
    assert answer.json()["prepay_id"].startswith("wx")
    assert merchant.verify_response(answer)
    queried = merchant.query("ORDER000001")
    assert queried.status_code == 200 and merchant.verify_response(queried)
    assert queried.json()["trade_state"] == "NOTPAY"
    assert queried.json()["amount"]["total"] == 100


def test_each_product_answers_its_own_field(merchant: Merchant, receiver: Receiver) -> None:
    app = merchant.call("POST", "/v3/pay/transactions/app", merchant.order_body("APP0000001", receiver.url))
    native = merchant.call("POST", "/v3/pay/transactions/native", merchant.order_body("NAT0000001", receiver.url))
    h5 = merchant.call("POST", "/v3/pay/transactions/h5", merchant.order_body(
        "H5X0000001", receiver.url, scene_info={"payer_client_ip": "1.2.3.4", "h5_info": {"type": "Wap"}}))
    assert "prepay_id" in app.json()
    assert native.json()["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert h5.json()["h5_url"].startswith("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=")
    assert merchant.query("H5X0000001").json()["trade_type"] == "MWEB"


@pytest.mark.parametrize(("product", "change"), [
    ("jsapi", {}),  # no payer.openid
    ("h5", {"scene_info": {"h5_info": {"type": "Wap"}}}),  # no payer_client_ip
    ("native", {"appid": "wx0000000000000000"}),  # appid not bound to the mchid
    ("native", {"amount": {"total": 0, "currency": "CNY"}}),
    ("native", {"amount": {"total": 1.5, "currency": "CNY"}}),
    ("native", {"amount": {"total": 100, "currency": "USD"}}),
    ("native", {"mchid": "1900000999"}),  # body mchid differs from the signer
    ("native", {"out_trade_no": "no"}),
])
def test_invalid_orders_are_param_errors(merchant: Merchant, receiver: Receiver, product: str,
                                         change: dict[str, Any]) -> None:
    body = {**merchant.order_body("ORDER000001", receiver.url), **change}
    answer = merchant.call("POST", f"/v3/pay/transactions/{product}", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "PARAM_ERROR"
    assert merchant.verify_response(answer)


def test_out_trade_no_is_unique_per_merchant(sandbox: WeChatPaySandbox, merchant: Merchant,
                                             receiver: Receiver) -> None:
    first = merchant.jsapi("ORDER000001", receiver.url)
    assert merchant.jsapi("ORDER000001", receiver.url).json() == first.json()  # a retry gets the same prepay_id
    reused = merchant.jsapi("ORDER000001", receiver.url, total=200)
    assert (reused.status_code, reused.json()["code"]) == (400, "INVALID_REQUEST")
    pay(sandbox, "ORDER000001")
    paid = merchant.jsapi("ORDER000001", receiver.url)
    assert (paid.status_code, paid.json()["code"]) == (403, "ORDERPAID")
    closing = merchant.call("POST", "/v3/pay/transactions/out-trade-no/ORDER000001/close", {"mchid": merchant.mchid})
    assert (closing.status_code, closing.json()["code"]) == (403, "ORDERPAID")


def test_query_of_unknown_order_is_404(merchant: Merchant) -> None:
    answer = merchant.query("NOSUCH0001")
    assert (answer.status_code, answer.json()["code"]) == (404, "ORDER_NOT_EXIST")


def test_userpaying_then_close(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    merchant.jsapi("ORDER000001", receiver.url)
    assert control(sandbox, "POST", "/_sandbox/userpaying", {"out_trade_no": "ORDER000001"}).status_code == 200
    assert merchant.query("ORDER000001").json()["trade_state"] == "USERPAYING"
    closing = merchant.call("POST", "/v3/pay/transactions/out-trade-no/ORDER000001/close", {"mchid": merchant.mchid})
    assert closing.status_code == 204 and closing.content == b""
    assert merchant.verify_response(closing)  # an empty body signs as "ts\nnonce\n\n"
    assert merchant.query("ORDER000001").json()["trade_state"] == "CLOSED"
    assert control(sandbox, "POST", "/_sandbox/pay", {"out_trade_no": "ORDER000001"}).status_code == 409
    recreate = merchant.jsapi("ORDER000001", receiver.url)
    assert recreate.json()["code"] == "ORDER_CLOSED"


def test_failed_payment_is_payerror_without_callback(sandbox: WeChatPaySandbox, merchant: Merchant,
                                                     receiver: Receiver) -> None:
    merchant.jsapi("ORDER000001", receiver.url)
    assert pay(sandbox, "ORDER000001", result="fail")["trade_state"] == "PAYERROR"
    assert merchant.query("ORDER000001").json()["trade_state"] == "PAYERROR"
    time.sleep(0.2)
    assert receiver.events() == []


def test_expired_order_reads_closed(merchant: Merchant, receiver: Receiver) -> None:
    expire = (datetime.now(BEIJING) + timedelta(seconds=1)).isoformat(timespec="seconds")
    body = merchant.order_body("ORDER000001", receiver.url, time_expire=expire)
    assert merchant.call("POST", "/v3/pay/transactions/native", body).status_code == 200
    wait_for(lambda: merchant.query("ORDER000001").json()["trade_state"] == "CLOSED")


# -- payment callbacks ---------------------------------------------------------------------------------------


def test_pay_sends_a_signed_encrypted_callback(sandbox: WeChatPaySandbox, merchant: Merchant,
                                               receiver: Receiver) -> None:
    merchant.jsapi("ORDER000001", receiver.url + "/notify/wechat", total=888)
    pay(sandbox, "ORDER000001")
    item = wait_for(lambda: receiver.events())[0]
    assert item.path == "/notify/wechat"
    assert item.headers["wechatpay-serial"] == merchant.registration["public_key_id"]
    assert item.headers["wechatpay-signature-type"] == "WECHATPAY2-SHA256-RSA2048"
    assert verifies(merchant, item)
    envelope = item.envelope()
    assert envelope["id"].startswith("EV-") and envelope["event_type"] == "TRANSACTION.SUCCESS"
    assert envelope["resource_type"] == "encrypt-resource"
    assert len(envelope["resource"]["nonce"]) == 12 and envelope["resource"]["original_type"] == "transaction"
    transaction = merchant.decrypt(envelope["resource"])
    assert transaction["trade_state"] == "SUCCESS"
    assert transaction["amount"] == {"total": 888, "payer_total": 888, "currency": "CNY", "payer_currency": "CNY"}
    assert (transaction["mchid"], transaction["appid"]) == (merchant.mchid, APPID)
    assert transaction["success_time"].endswith("+08:00")
    queried = merchant.query("ORDER000001").json()
    assert queried["transaction_id"] == transaction["transaction_id"]
    by_id = merchant.call("GET", f"/v3/pay/transactions/id/{queried['transaction_id']}?mchid={merchant.mchid}")
    assert by_id.json()["out_trade_no"] == "ORDER000001"
    attempts = control(sandbox, "GET", "/_sandbox/deliveries").json()["attempts"]
    assert [(a["attempt"], a["delivered"], a["status_code"]) for a in attempts] == [(1, True, 200)]


def test_platform_serial_mode(sandbox: WeChatPaySandbox, receiver: Receiver) -> None:
    merchant = register(sandbox, serial_mode="platform_serial")
    answer = merchant.jsapi("ORDER000001", receiver.url)
    assert answer.headers["Wechatpay-Serial"] == merchant.registration["platform_serial"]
    assert merchant.verify_response(answer)


@pytest.mark.parametrize("sign_type", ["RSA", "SM2"])
def test_every_signed_answer_names_its_signature_type(sandbox: WeChatPaySandbox, receiver: Receiver,
                                                      sign_type: str) -> None:
    merchant = register(sandbox, sign_type)
    for answer in (merchant.jsapi("ORDER000001", receiver.url), merchant.query("ORDER000001"),
                   merchant.query("NO_SUCH_ORDER")):
        assert answer.headers["Wechatpay-Signature-Type"] == merchant.scheme
        assert merchant.verify_response(answer)


def test_platform_certificates_are_sealed_for_the_merchant_and_carry_the_signing_key(
        sandbox: WeChatPaySandbox, receiver: Receiver) -> None:
    from cryptography import x509

    merchant = register(sandbox, serial_mode="platform_serial")
    answer = merchant.call("GET", "/v3/certificates")
    assert answer.status_code == 200 and merchant.verify_response(answer)
    [entry] = answer.json()["data"]
    assert entry["serial_no"] == merchant.registration["platform_serial"]
    assert entry["effective_time"].endswith("+08:00") and entry["expire_time"].endswith("+08:00")
    sealed = entry["encrypt_certificate"]
    assert (sealed["algorithm"], sealed["associated_data"]) == ("AEAD_AES_256_GCM", "certificate")
    pem = aes_gcm_decrypt(merchant.apiv3_key.encode(), sealed["nonce"].encode(), base64.b64decode(sealed["ciphertext"]),
                          b"certificate")
    certificate = x509.load_pem_x509_certificate(pem)
    assert f"{certificate.serial_number:040X}" == entry["serial_no"]
    # The certificate's key is the one answers are signed with.
    platform_pem = certificate.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert platform_pem == merchant.platform_key
    rotated = control(sandbox, "POST", "/_sandbox/platform/rotate", {"mchid": merchant.mchid}).json()
    listed = merchant.call("GET", "/v3/certificates?algorithm_type=RSA").json()["data"]
    assert [e["serial_no"] for e in listed] == [rotated["platform_serial"], merchant.registration["platform_serial"]]
    refused = merchant.call("GET", "/v3/certificates?algorithm_type=SM2")
    assert refused.status_code == 400 and refused.json()["code"] == "PARAM_ERROR"


def test_failed_deliveries_are_retried_on_the_scaled_schedule(sandbox: WeChatPaySandbox, merchant: Merchant,
                                                              receiver: Receiver) -> None:
    receiver.status_for = lambda n, r: 500 if n < 2 else 204
    merchant.jsapi("ORDER000001", receiver.url)
    pay(sandbox, "ORDER000001")
    wait_for(lambda: len(receiver.events()) == 3)
    items = receiver.events()
    assert len({i.envelope()["id"] for i in items}) == 1  # the same event, re-sent
    assert all(verifies(merchant, i) for i in items)
    gaps = [b.at_s - a.at_s for a, b in zip(items, items[1:])]
    assert all(gap >= 0.12 for gap in gaps)  # 15 s * 0.01

    def attempts() -> list[dict[str, Any]]:
        return control(sandbox, "GET", "/_sandbox/deliveries").json()["attempts"]  # type: ignore[no-any-return]

    wait_for(lambda: any(a["delivered"] for a in attempts()))
    assert [(a["attempt"], a["status_code"]) for a in attempts()] == [(1, 500), (2, 500), (3, 204)]


# -- SM2 -----------------------------------------------------------------------------------------------------


def test_sm2_merchant_end_to_end(sandbox: WeChatPaySandbox, receiver: Receiver) -> None:
    merchant = register(sandbox, sign_type="SM2", mchid="1900000200")
    assert len(merchant.platform_key) == 128  # hex x||y
    answer = merchant.jsapi("SMORDER001", receiver.url, total=321)
    assert answer.status_code == 200, answer.text
    assert merchant.verify_response(answer)
    rsa_signed = register(sandbox, sign_type="RSA", mchid="1900000201")
    rsa_signed.mchid, rsa_signed.serial_no = merchant.mchid, merchant.serial_no
    assert rsa_signed.query("SMORDER001").status_code == 401  # RSA scheme for an SM2 merchant
    pay(sandbox, "SMORDER001")
    item = wait_for(lambda: receiver.events())[0]
    assert item.headers["wechatpay-signature-type"] == "WECHATPAY2-SM2-WITH-SM3"
    assert verifies(merchant, item)
    resource = item.envelope()["resource"]
    assert resource["algorithm"] == "AEAD_SM4_GCM"
    assert merchant.decrypt(resource)["amount"]["total"] == 321
    merchant.refund("SMORDER001", "SMREFUND01", 21, total=321)
    refund_item = wait_for(lambda: receiver.events("REFUND.SUCCESS"))[0]
    assert verifies(merchant, refund_item)
    assert merchant.decrypt(refund_item.envelope()["resource"])["refund_status"] == "SUCCESS"


# -- refunds -------------------------------------------------------------------------------------------------


def test_refund_lifecycle(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    merchant.jsapi("ORDER000001", receiver.url)
    unpaid = merchant.refund("ORDER000001", "REFUND0001", 10)
    assert (unpaid.status_code, unpaid.json()["code"]) == (400, "INVALID_REQUEST")
    pay(sandbox, "ORDER000001")
    first = merchant.refund("ORDER000001", "REFUND0001", 30)
    assert first.status_code == 200 and merchant.verify_response(first)
    assert first.json()["status"] == "PROCESSING"
    assert merchant.refund("ORDER000001", "REFUND0001", 30).json()["refund_id"] == first.json()["refund_id"]
    reused = merchant.refund("ORDER000001", "REFUND0001", 31)
    assert reused.json()["code"] == "INVALID_REQUEST"
    assert merchant.query("ORDER000001").json()["trade_state"] == "REFUND"
    over = merchant.refund("ORDER000001", "REFUND0002", 71)
    assert (over.status_code, over.json()["code"]) == (400, "INVALID_REQUEST")
    assert merchant.refund("ORDER000001", "REFUND0003", 70).status_code == 200  # exactly the rest is fine
    wrong_total = merchant.refund("ORDER000001", "REFUND0004", 1, total=99)
    assert wrong_total.status_code == 400
    done = wait_for(lambda: merchant.call("GET", "/v3/refund/domestic/refunds/REFUND0001").json()
                    if merchant.call("GET", "/v3/refund/domestic/refunds/REFUND0001").json()["status"] == "SUCCESS"
                    else None)
    assert done["amount"]["refund"] == 30 and "success_time" in done
    items = wait_for(lambda: len(receiver.events("REFUND.SUCCESS")) == 2 and receiver.events("REFUND.SUCCESS"))
    notices = sorted((merchant.decrypt(i.envelope()["resource"]) for i in items), key=lambda n: n["out_refund_no"])
    assert [(n["out_refund_no"], n["amount"]["refund"], n["refund_status"]) for n in notices] == [
        ("REFUND0001", 30, "SUCCESS"), ("REFUND0003", 70, "SUCCESS")]
    assert all(verifies(merchant, i) for i in items)
    missing = merchant.call("GET", "/v3/refund/domestic/refunds/NOSUCH0001")
    assert (missing.status_code, missing.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    shown = control(sandbox, "GET", "/_sandbox/orders/ORDER000001").json()
    assert shown["refunded_fen"] == 100 and len(shown["refunds"]) == 2
    ledger = control(sandbox, "GET", f"/_sandbox/ledger?mchid={merchant.mchid}").json()["entries"]
    assert [(e["kind"], e["amount_fen"], e["credit_account"]) for e in ledger] == [
        ("payment", 100, f"merchant:{merchant.mchid}"),
        ("refund", 30, "payer:oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("refund", 70, "payer:oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")]


# -- faults --------------------------------------------------------------------------------------------------


def test_timeout_fault_answers_late_but_does_the_work(sandbox: WeChatPaySandbox, merchant: Merchant,
                                                      receiver: Receiver) -> None:
    arm(sandbox, "timeout", delay_s=1.0, path_prefix="/v3/pay/transactions/jsapi")
    with pytest.raises(requests.exceptions.ReadTimeout):
        merchant.call("POST", "/v3/pay/transactions/jsapi",
                      merchant.order_body("ORDER000001", receiver.url, payer={"openid": "o1"}), timeout_s=0.3)
    assert merchant.query("ORDER000001").json()["trade_state"] == "NOTPAY"  # the query path was not armed
    assert control(sandbox, "GET", "/_sandbox/faults").json()["faults"] == []  # consumed


def test_error_5xx_fault_fires_count_times(sandbox: WeChatPaySandbox, merchant: Merchant) -> None:
    arm(sandbox, "error_5xx", count=2)
    for _ in range(2):
        answer = merchant.query("ORDER000001")
        assert (answer.status_code, answer.json()["code"]) == (500, "SYSTEM_ERROR")
        assert merchant.verify_response(answer)
    assert merchant.query("ORDER000001").status_code == 404


def test_fault_path_prefix_and_clear(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    arm(sandbox, "error_5xx", path_prefix="/v3/refund/")
    assert merchant.jsapi("ORDER000001", receiver.url).status_code == 200
    assert control(sandbox, "DELETE", "/_sandbox/faults").status_code == 200
    assert merchant.refund("ORDER000001", "REFUND0001", 1).status_code == 400  # cleared: a normal answer
    assert control(sandbox, "POST", "/_sandbox/faults", {"mode": "nonsense"}).status_code == 400


def test_duplicate_callback(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    arm(sandbox, "duplicate_callback", copies=3)
    merchant.jsapi("ORDER000001", receiver.url)
    pay(sandbox, "ORDER000001")
    items = wait_for(lambda: len(receiver.events()) == 3 and receiver.events())
    assert len({i.envelope()["id"] for i in items}) == 1
    assert all(verifies(merchant, i) for i in items)


def test_late_callback(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    arm(sandbox, "late_callback", delay_s=0.6)
    merchant.jsapi("ORDER000001", receiver.url)
    paid_at = time.monotonic()
    pay(sandbox, "ORDER000001")
    time.sleep(0.3)
    assert receiver.events() == []
    item = wait_for(lambda: receiver.events())[0]
    assert item.at_s - paid_at >= 0.6


def test_out_of_order_delivers_the_refund_first(sandbox: WeChatPaySandbox, merchant: Merchant,
                                                receiver: Receiver) -> None:
    arm(sandbox, "out_of_order")
    merchant.jsapi("ORDER000001", receiver.url)
    pay(sandbox, "ORDER000001")
    time.sleep(0.2)
    assert receiver.events() == []  # the payment callback is held back
    merchant.refund("ORDER000001", "REFUND0001", 40)
    items = wait_for(lambda: len(receiver.events()) == 2 and receiver.events())
    assert [i.envelope()["event_type"] for i in items] == ["REFUND.SUCCESS", "TRANSACTION.SUCCESS"]
    assert all(verifies(merchant, i) for i in items)


def test_forged_callback_then_a_genuine_retry(sandbox: WeChatPaySandbox, merchant: Merchant,
                                              receiver: Receiver) -> None:
    receiver.status_for = lambda n, item: 200 if verifies(merchant, item) else 401
    arm(sandbox, "forged_callback")
    merchant.jsapi("ORDER000001", receiver.url)
    pay(sandbox, "ORDER000001")
    first, second = wait_for(lambda: len(receiver.events()) == 2 and receiver.events())
    assert first.headers["wechatpay-serial"] == merchant.wechatpay_serial  # claims to be the platform key
    assert not verifies(merchant, first)
    assert verifies(merchant, second)


def test_tampered_callback(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    arm(sandbox, "tampered_callback")
    merchant.jsapi("ORDER000001", receiver.url)
    pay(sandbox, "ORDER000001")
    item = wait_for(lambda: receiver.events())[0]
    assert not verifies(merchant, item)
    assert merchant.decrypt(item.envelope()["resource"])["out_trade_no"] == "ORDER000001"  # only the bytes differ


def test_stale_callback(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    arm(sandbox, "stale_callback")
    merchant.jsapi("ORDER000001", receiver.url)
    pay(sandbox, "ORDER000001")
    item = wait_for(lambda: receiver.events())[0]
    assert verifies(merchant, item)  # a valid signature...
    assert time.time() - int(item.headers["wechatpay-timestamp"]) >= 590  # ...over a timestamp 10 minutes old


def test_no_callback(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    arm(sandbox, "no_callback")
    merchant.jsapi("ORDER000001", receiver.url)
    pay(sandbox, "ORDER000001")
    time.sleep(0.3)
    assert receiver.events() == []
    assert merchant.query("ORDER000001").json()["trade_state"] == "SUCCESS"  # the money moved anyway
    suppressed = control(sandbox, "GET", "/_sandbox/deliveries").json()["suppressed"]
    assert [(s["event_type"], s["fault"]) for s in suppressed] == [("TRANSACTION.SUCCESS", "no_callback")]


# -- bills ---------------------------------------------------------------------------------------------------


def parse_bill(text: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line]
    header = lines[0].split(",")
    summary_index = next(i for i, line in enumerate(lines) if line.startswith("总交易单数"))
    strip = lambda cell: cell[1:] if cell.startswith("`") else cell  # noqa: E731
    rows = [dict(zip(header, (strip(c) for c in line.split(",")), strict=True)) for line in lines[1:summary_index]]
    summary = dict(zip(lines[summary_index].split(","), (strip(c) for c in lines[summary_index + 1].split(",")),
                       strict=True))
    assert all(cell.startswith("`") for line in lines[1:summary_index] for cell in line.split(","))
    return rows, summary


def test_trade_bill_download(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> None:
    merchant.jsapi("ORDER000001", receiver.url, total=10000)
    merchant.jsapi("ORDER000002", receiver.url, total=1)
    pay(sandbox, "ORDER000001")
    pay(sandbox, "ORDER000002")
    merchant.refund("ORDER000001", "REFUND0001", 2550, total=10000)
    today = datetime.now(BEIJING).date().isoformat()

    listing = merchant.call("GET", f"/v3/bill/tradebill?bill_date={today}&bill_type=ALL")
    assert listing.status_code == 200 and merchant.verify_response(listing)
    info = listing.json()
    assert info["hash_type"] == "SHA1"
    target = info["download_url"].removeprefix(merchant.base_url)
    download = merchant.call("GET", target)
    assert download.status_code == 200
    assert "Wechatpay-Signature" not in download.headers  # bill files are not signed; the hash protects them
    assert hashlib.sha1(download.content).hexdigest() == info["hash_value"]

    rows, summary = parse_bill(download.content.decode("utf-8"))
    by_state = {(r["交易状态"], r["商户订单号"]): r for r in rows}
    paid = by_state[("SUCCESS", "ORDER000001")]
    assert (paid["应结订单金额"], paid["订单金额"]) == ("100.00", "100.00")
    assert (paid["手续费"], paid["费率"]) == ("0.60000", "0.60%")
    assert paid["商户号"] == merchant.mchid and paid["公众账号ID"] == APPID and paid["特约商户号"] == "0"
    assert by_state[("SUCCESS", "ORDER000002")]["手续费"] == "0.00006"
    refund = by_state[("REFUND", "ORDER000001")]
    assert (refund["退款金额"], refund["商户退款单号"], refund["手续费"]) == ("25.50", "REFUND0001", "-0.15300")
    assert summary == {"总交易单数": "3", "应结订单总金额": "100.01", "退款总金额": "25.50", "充值券退款总金额": "0.00",
                       "手续费总金额": "0.44706", "订单总金额": "100.01", "申请退款总金额": "25.50"}

    gz = merchant.call("GET", f"/v3/bill/tradebill?bill_date={today}&bill_type=SUCCESS&tar_type=GZIP").json()
    packed = merchant.call("GET", gz["download_url"].removeprefix(merchant.base_url)).content
    assert hashlib.sha1(packed).hexdigest() == gz["hash_value"]
    success_rows, success_summary = parse_bill(gzip.decompress(packed).decode("utf-8"))
    assert len(success_rows) == 2 and "退款金额" not in success_rows[0]
    assert success_summary["应结订单总金额"] == "100.01"

    empty = merchant.call("GET", "/v3/bill/tradebill?bill_date=2001-01-01&bill_type=ALL")
    assert (empty.status_code, empty.json()["code"]) == (400, "NO_STATEMENT_EXIST")
