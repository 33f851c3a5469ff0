"""wechatpayv3 (the community SDK most Python merchants use for WeChat Pay API v3) as the client of the sandbox.

The SDK signs every request, verifies every answer's signature (it refuses an answer without
``Wechatpay-Signature-Type``), and verifies and decrypts callbacks itself. Two ways to start it: with the WeChat
Pay public key (public-key mode) or with nothing but the APIv3 key, fetching and decrypting the platform
certificates from ``GET /v3/certificates`` (certificate mode). The only thing changed in the SDK is its gateway
host, which it hard-codes: the requests it builds and the checks it makes are its own.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import requests
import wechatpayv3.core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import WeChatPay, WeChatPayType

from sandbox.wechatpay import WeChatPaySandbox
from tests.conformance.receiver import Callback, Receiver

APPID = "wx2421b1c4370ec43b"


def sdk_client(gateway: str, *, mchid: str, private_key_pem: str, serial_no: str, apiv3_key: str, notify_url: str,
               public_key: str | None = None, public_key_id: str | None = None) -> WeChatPay:
    """A ``WeChatPay`` whose ``Core`` talks to ``gateway``. Certificate mode fetches certificates inside the
    constructor, so the gateway must be set before ``_init_certificates`` runs."""

    class SandboxCore(wechatpayv3.core.Core):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            self._gate_way = gateway
            super().__init__(**kwargs)
            self._gate_way = gateway  # Core.__init__ wrote WeChat's host over it

        def _init_certificates(self) -> None:
            self._gate_way = gateway
            super()._init_certificates()

    with mock.patch.object(wechatpayv3.core, "Core", SandboxCore):
        return WeChatPay(wechatpay_type=WeChatPayType.NATIVE, mchid=mchid, private_key=private_key_pem,
                         cert_serial_no=serial_no, appid=APPID, apiv3_key=apiv3_key, notify_url=notify_url,
                         public_key=public_key, public_key_id=public_key_id, timeout=(5, 10))


class Merchant:
    def __init__(self, base_url: str, serial_mode: str) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode()
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.mchid = "19" + "".join(secrets.choice(string.digits) for _ in range(8))
        self.serial_no = secrets.token_hex(20).upper()
        self.apiv3_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        answer = requests.post(f"{base_url}/_sandbox/merchants", json={
            "mchid": self.mchid, "appids": [APPID], "merchant_serial_no": self.serial_no, "sign_type": "RSA",
            "merchant_public_key": public_pem, "apiv3_key": self.apiv3_key, "serial_mode": serial_mode,
        }, timeout=5)
        answer.raise_for_status()
        self.registration: dict[str, Any] = answer.json()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[WeChatPaySandbox]:
    box = WeChatPaySandbox(retry_scale=0.01, refund_settle_s=0.05)
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    box = Receiver((204, b""))
    yield box
    box.stop()


def client_for(sandbox: WeChatPaySandbox, receiver: Receiver, mode: str) -> tuple[WeChatPay, Merchant]:
    merchant = Merchant(sandbox.base_url, "public_key_id" if mode == "public_key" else "platform_serial")
    keys: dict[str, str] = {}
    if mode == "public_key":
        keys = {"public_key": merchant.registration["platform_public_key"],
                "public_key_id": merchant.registration["public_key_id"]}
    client = sdk_client(sandbox.base_url, mchid=merchant.mchid, private_key_pem=merchant.private_key_pem,
                        serial_no=merchant.serial_no, apiv3_key=merchant.apiv3_key,
                        notify_url=f"{receiver.url}/wechat/{merchant.mchid}", **keys)
    return client, merchant


def of(order_no: str, event_type: str) -> Any:
    def match(callback: Callback) -> bool:
        envelope = json.loads(callback.body)
        return bool(callback.path.startswith("/wechat/") and envelope["event_type"] == event_type
                    and order_no in callback.path + json.dumps(envelope))
    return match


def new_no(prefix: str) -> str:
    return prefix + secrets.token_hex(8).upper()


@pytest.mark.parametrize("mode", ["public_key", "certificate"])
def test_create_query_pay_refund_close_with_every_answer_and_callback_verified_by_the_sdk(
        sandbox: WeChatPaySandbox, receiver: Receiver, mode: str) -> None:
    client, merchant = client_for(sandbox, receiver, mode)
    order_no = new_no("WX")

    code, text = client.pay(description="绿茶", out_trade_no=order_no, amount={"total": 888})
    assert code == 200 and json.loads(text)["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    code, text = client.query(out_trade_no=order_no)
    assert code == 200 and json.loads(text)["trade_state"] == "NOTPAY"

    paid = requests.post(f"{sandbox.base_url}/_sandbox/pay", json={"out_trade_no": order_no, "mchid": merchant.mchid},
                         timeout=5)
    assert paid.status_code == 200
    code, text = client.query(out_trade_no=order_no)
    transaction = json.loads(text)
    assert transaction["trade_state"] == "SUCCESS" and transaction["amount"]["total"] == 888
    code, text = client.query(transaction_id=transaction["transaction_id"])
    assert code == 200 and json.loads(text)["out_trade_no"] == order_no

    [callback] = receiver.wait_for(lambda c: c.path == f"/wechat/{merchant.mchid}"
                                   and json.loads(c.body)["event_type"] == "TRANSACTION.SUCCESS")
    verified = client.callback(callback.headers, callback.body)
    assert verified is not None, "the SDK refused the sandbox's payment callback"
    assert verified["resource"]["out_trade_no"] == order_no
    assert verified["resource"]["transaction_id"] == transaction["transaction_id"]

    refund_no = new_no("RF")
    code, text = client.refund(out_refund_no=refund_no, out_trade_no=order_no,
                               amount={"refund": 300, "total": 888, "currency": "CNY"},
                               notify_url=f"{receiver.url}/wechat/{merchant.mchid}/refunds")
    assert code == 200 and json.loads(text)["status"] in ("PROCESSING", "SUCCESS")
    [refund_callback] = receiver.wait_for(lambda c: c.path == f"/wechat/{merchant.mchid}/refunds")
    refund_verified = client.callback(refund_callback.headers, refund_callback.body)
    assert refund_verified is not None and refund_verified["event_type"] == "REFUND.SUCCESS"
    assert refund_verified["resource"]["out_refund_no"] == refund_no
    assert refund_verified["resource"]["refund_status"] == "SUCCESS"
    code, text = client.query_refund(out_refund_no=refund_no)
    assert code == 200 and json.loads(text)["status"] == "SUCCESS"

    unpaid_no = new_no("WX")
    assert client.pay(description="绿茶", out_trade_no=unpaid_no, amount={"total": 100})[0] == 200
    code, text = client.close(out_trade_no=unpaid_no)
    assert (code, text) == (204, b"")
    assert json.loads(client.query(out_trade_no=unpaid_no)[1])["trade_state"] == "CLOSED"


def test_certificate_mode_reads_the_platform_certificate_wechat_signs_with(
        sandbox: WeChatPaySandbox, receiver: Receiver) -> None:
    client, merchant = client_for(sandbox, receiver, "certificate")
    serials = {f"{cert.serial_number:040X}" for cert in client._core._certificates}
    assert serials == {merchant.registration["platform_serial"]}


def test_certificate_mode_follows_a_platform_key_rotation(sandbox: WeChatPaySandbox, receiver: Receiver) -> None:
    client, merchant = client_for(sandbox, receiver, "certificate")
    rotated = requests.post(f"{sandbox.base_url}/_sandbox/platform/rotate", json={"mchid": merchant.mchid}, timeout=5)
    assert rotated.status_code == 200
    # The next answer names a serial the SDK has not seen: it re-reads /v3/certificates and verifies with it.
    order_no = new_no("WX")
    assert client.pay(description="绿茶", out_trade_no=order_no, amount={"total": 100})[0] == 200
    serials = {f"{cert.serial_number:040X}" for cert in client._core._certificates}
    assert serials == {merchant.registration["platform_serial"], rotated.json()["platform_serial"]}


@pytest.mark.parametrize("fault", ["forged_callback", "tampered_callback"])
def test_the_sdk_refuses_a_spoiled_callback(sandbox: WeChatPaySandbox, receiver: Receiver, fault: str) -> None:
    client, merchant = client_for(sandbox, receiver, "public_key")
    order_no = new_no("WX")
    notify_path = f"/wechat/{merchant.mchid}"
    armed = requests.post(f"{sandbox.base_url}/_sandbox/faults", json={"mode": fault, "path_prefix": notify_path},
                          timeout=5)
    assert armed.status_code == 200
    assert client.pay(description="绿茶", out_trade_no=order_no, amount={"total": 100})[0] == 200
    requests.post(f"{sandbox.base_url}/_sandbox/pay", json={"out_trade_no": order_no, "mchid": merchant.mchid},
                  timeout=5).raise_for_status()
    [callback] = receiver.wait_for(lambda c: c.path == notify_path)
    assert client.callback(callback.headers, callback.body) is None


def test_an_answer_signed_by_another_key_is_refused_by_the_sdk(sandbox: WeChatPaySandbox, receiver: Receiver) -> None:
    """The SDK holds the public key it was given; after WeChat rotates, answers verify only with the new one."""
    client, merchant = client_for(sandbox, receiver, "public_key")
    rotated = requests.post(f"{sandbox.base_url}/_sandbox/platform/rotate", json={"mchid": merchant.mchid}, timeout=5)
    assert rotated.status_code == 200
    client._core._public_key_id = rotated.json()["public_key_id"]  # the id moves on, the key the SDK holds does not
    with pytest.raises(Exception, match="failed to verify the signature"):
        client.pay(description="绿茶", out_trade_no=new_no("WX"), amount={"total": 100})
