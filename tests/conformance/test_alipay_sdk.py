"""python-alipay-sdk as the client of the Alipay sandbox (RSA2: the SDK has no SM2).

The SDK signs each call, sends it to ``gateway.do`` (as a GET with every parameter in the query string), and
verifies the ``sign`` of each answer over the exact text of its ``*_response`` object; notifications are checked
with ``AliPay.verify``, the call its README gives for the notify_url. Only the gateway host is changed. Alipay's
console shows its public key as bare base64; the SDK wants PEM, so the test frames it, as the SDK's README says.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.alipay.server import AlipaySandbox
from tests.conformance.receiver import Callback, Receiver


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AlipaySandbox]:
    box = AlipaySandbox(retry_scale=0.01)
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    box = Receiver((200, b"success"))  # Alipay re-sends unless the answer is exactly "success"
    yield box
    box.stop()


def pem(bare_base64: str) -> str:
    return f"-----BEGIN PUBLIC KEY-----\n{bare_base64}\n-----END PUBLIC KEY-----\n"


@pytest.fixture
def client(sandbox: AlipaySandbox, receiver: Receiver) -> AliPay:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    app_id = "2021" + "".join(str(secrets.randbelow(10)) for _ in range(12))
    registered = requests.post(f"{sandbox.base_url}/_sandbox/merchants", json={
        "app_id": app_id, "pid": "2088" + "".join(str(secrets.randbelow(10)) for _ in range(12)),
        "app_public_key": public_pem}, timeout=5).json()
    alipay = AliPay(appid=app_id, app_notify_url=f"{receiver.url}/alipay/{app_id}", app_private_key_string=private_pem,
                    alipay_public_key_string=pem(registered["alipay_public_key"]), sign_type="RSA2")
    alipay._gateway = f"{sandbox.base_url}/gateway.do"
    return alipay


def notifies(receiver: Receiver, alipay: AliPay, out_trade_no: str, count: int = 1) -> list[dict[str, str]]:
    def match(callback: Callback) -> bool:
        return callback.path == f"/alipay/{alipay.appid}" and dict(parse_qsl(callback.body.decode()))[
            "out_trade_no"] == out_trade_no
    return [dict(parse_qsl(c.body.decode(), keep_blank_values=True)) for c in receiver.wait_for(match, count=count)]


def verified_by_sdk(alipay: AliPay, form: dict[str, str]) -> bool:
    data = dict(form)
    signature = data.pop("sign")
    return bool(alipay.verify(data, signature))


def test_precreate_scan_pay_query_refund_with_answers_and_notifies_verified_by_the_sdk(
        sandbox: AlipaySandbox, receiver: Receiver, client: AliPay) -> None:
    number = "AP" + secrets.token_hex(8)
    created = client.api_alipay_trade_precreate(subject="绿茶", out_trade_no=number, total_amount="88.88")
    assert created["code"] == "10000" and created["out_trade_no"] == number
    # A precreated trade exists at Alipay only once the payer scans the code, as on the real gateway.
    assert client.api_alipay_trade_query(out_trade_no=number)["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    assert requests.get(created["qr_code"], timeout=5).status_code == 200
    assert client.api_alipay_trade_query(out_trade_no=number)["trade_status"] == "WAIT_BUYER_PAY"

    assert requests.post(f"{sandbox.base_url}/_sandbox/pay", json={"out_trade_no": number}, timeout=5).status_code == 200
    paid = client.api_alipay_trade_query(out_trade_no=number)
    assert paid["trade_status"] == "TRADE_SUCCESS" and paid["total_amount"] == "88.88"
    [notify] = notifies(receiver, client, number)
    assert notify["trade_status"] == "TRADE_SUCCESS" and verified_by_sdk(client, notify)

    refunded = client.api_alipay_trade_refund(refund_amount="8.88", out_trade_no=number, out_request_no="R1")
    assert refunded["code"] == "10000" and refunded["refund_fee"] == "8.88"
    queried = client.api_alipay_trade_fastpay_refund_query(out_request_no="R1", out_trade_no=number)
    assert queried["refund_status"] == "REFUND_SUCCESS" and queried["refund_amount"] == "8.88"
    refund_notify = notifies(receiver, client, number, count=2)[1]
    assert refund_notify["refund_fee"] == "8.88" and verified_by_sdk(client, refund_notify)


def test_a_scanned_unpaid_trade_is_closed(sandbox: AlipaySandbox, receiver: Receiver, client: AliPay) -> None:
    number = "AP" + secrets.token_hex(8)
    created = client.api_alipay_trade_precreate(subject="绿茶", out_trade_no=number, total_amount="1.00")
    requests.get(created["qr_code"], timeout=5).raise_for_status()
    closed = client.api_alipay_trade_close(out_trade_no=number)
    assert closed["code"] == "10000" and closed["out_trade_no"] == number
    assert client.api_alipay_trade_query(out_trade_no=number)["trade_status"] == "TRADE_CLOSED"


def test_a_page_order_string_built_by_the_sdk_opens_the_cashier(sandbox: AlipaySandbox, receiver: Receiver,
                                                                client: AliPay) -> None:
    number = "AP" + secrets.token_hex(8)
    order_string = client.api_alipay_trade_page_pay(subject="茶具", out_trade_no=number, total_amount="19.99",
                                                    return_url="https://shop.example/done")
    page = requests.get(f"{client._gateway}?{order_string}", timeout=5)
    assert page.status_code == 200 and "19.99" in page.text
    done = requests.post(f"{sandbox.base_url}/cashier/{client.appid}/{number}/pay", data={"result": "success"},
                         allow_redirects=False, timeout=5)
    assert done.status_code == 303
    back = dict(parse_qsl(urlsplit(done.headers["Location"]).query))
    assert verified_by_sdk(client, back)  # the synchronous return is signed like a notify
    [notify] = notifies(receiver, client, number)
    assert verified_by_sdk(client, notify)


@pytest.mark.parametrize("fault", ["forged", "tampered"])
def test_the_sdk_refuses_a_spoiled_notify(sandbox: AlipaySandbox, receiver: Receiver, client: AliPay,
                                          fault: str) -> None:
    armed = requests.post(f"{sandbox.base_url}/_sandbox/faults", json={"fault": fault}, timeout=5)
    assert armed.status_code == 200, armed.text
    number = "AP" + secrets.token_hex(8)
    created = client.api_alipay_trade_precreate(subject="绿茶", out_trade_no=number, total_amount="2.00")
    requests.get(created["qr_code"], timeout=5).raise_for_status()
    requests.post(f"{sandbox.base_url}/_sandbox/pay", json={"out_trade_no": number}, timeout=5).raise_for_status()
    [spoiled] = notifies(receiver, client, number)
    assert not verified_by_sdk(client, spoiled)


def test_an_answer_with_a_broken_signature_raises_in_the_sdk(sandbox: AlipaySandbox, client: AliPay) -> None:
    from alipay.exceptions import AliPayValidationError

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    impostor_view = AliPay(appid=client.appid, app_private_key_string=client._app_private_key_string,
                           alipay_public_key_string=other)
    impostor_view._gateway = client._gateway
    with pytest.raises(AliPayValidationError):
        impostor_view.api_alipay_trade_precreate(subject="x", out_trade_no="AP" + secrets.token_hex(8),
                                                 total_amount="1.00")
