"""The hub's verifiers judge callbacks built here from each channel's published rules, not by the hub or a sandbox.

Every signature below is written out with ``cryptography``, ``hmac``, ``zlib`` and gmssl directly, following the
channel's documentation (restated in docs/conformance.md): no ``chalicelib`` signing, sealing or message-building
helper and no sandbox code is used, so a rule the hub and its sandboxes both got wrong fails here. Keys, accounts
and the plain business fields come from the unit kits (test data, not the hub's code). Each channel: a genuine
callback is accepted and parsed; the same callback with one byte of business data changed is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from gmssl import sm2

from chalicelib.channels.alipay.adapter import AlipayAdapter
from chalicelib.channels.base import InboundCallback
from chalicelib.channels.ecny.adapter import ECNYAdapter
from chalicelib.channels.paypal.adapter import PayPalAdapter
from chalicelib.channels.stripe.adapter import StripeAdapter
from chalicelib.channels.unionpay.adapter import UnionPayAdapter
from chalicelib.channels.wechatpay.adapter import WeChatPayAdapter
from chalicelib.domain.errors import CallbackRejected
from tests.unit.channels import alipay_kit, ecny_kit, paypal_kit, stripe_kit, unionpay_kit, wechatpay_kit


class NoNetwork:
    def send(self, request: Any, *, timeout_s: float = 10.0) -> Any:
        raise AssertionError(f"verifying a callback must not call the channel: {request.url}")


def rsa_sha256_b64(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def notifications(result: Any) -> list[Any]:
    return list(result) if isinstance(result, list | tuple) else [result]


def check(verify: Callable[[InboundCallback], Any], good: InboundCallback, bad: InboundCallback) -> list[Any]:
    parsed = notifications(verify(good))
    with pytest.raises(CallbackRejected):
        verify(bad)
    return parsed


# -- WeChat Pay API v3 -------------------------------------------------------------------------------------------
# Headers Wechatpay-Timestamp/-Nonce/-Signature/-Serial; signature SHA256withRSA over "ts\nnonce\nbody\n";
# resource AEAD_AES_256_GCM under the APIv3 key, nonce and associated_data as given, ciphertext = ct || tag.


def test_wechatpay_transaction_success_built_from_the_documentation() -> None:
    kit = wechatpay_kit.make_kit()
    account = kit.account()
    platform = kit.platform_pubkey_mode
    assert platform.rsa_private is not None
    transaction = {
        "appid": wechatpay_kit.APPID, "mchid": wechatpay_kit.MCHID, "out_trade_no": "att_01HZDOCWECHAT000001",
        "transaction_id": "4200000985202405201234567890", "trade_type": "NATIVE", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "", "success_time": "2024-05-20T12:00:05+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 8888, "payer_total": 8888, "currency": "CNY", "payer_currency": "CNY"},
    }
    nonce = "fdasflkja484"
    sealed = AESGCM(wechatpay_kit.APIV3_KEY.encode()).encrypt(nonce.encode(), json.dumps(transaction).encode(),
                                                              b"transaction")
    envelope = {"id": "EV-2018022511223320873", "create_time": "2024-05-20T12:00:06+08:00",
                "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
                "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                             "ciphertext": base64.b64encode(sealed).decode(), "associated_data": "transaction",
                             "nonce": nonce}}
    body = json.dumps(envelope, ensure_ascii=False).encode()

    def callback(raw: bytes) -> InboundCallback:
        ts, header_nonce = str(wechatpay_kit.NOW_TS), secrets.token_hex(16)
        signature = rsa_sha256_b64(platform.rsa_private, f"{ts}\n{header_nonce}\n".encode() + body + b"\n")
        return InboundCallback(headers={
            "wechatpay-timestamp": ts, "wechatpay-nonce": header_nonce, "wechatpay-signature": signature,
            "wechatpay-serial": platform.serial, "wechatpay-signature-type": "WECHATPAY2-SHA256-RSA2048",
            "content-type": "application/json"}, body=raw, received_at=datetime.fromtimestamp(wechatpay_kit.NOW_TS,
                                                                                                 tz=wechatpay_kit.UTC))

    adapter = WeChatPayAdapter(NoNetwork(), clock=lambda: datetime.fromtimestamp(wechatpay_kit.NOW_TS,
                                                                                 tz=wechatpay_kit.UTC))
    tampered = body.replace("支付成功".encode(), "支付失败".encode(), 1)
    [notification] = check(lambda c: adapter.verify_and_parse_notification(account, c), callback(body),
                           callback(tampered))
    assert notification.object_id == "att_01HZDOCWECHAT000001"


# -- Alipay ------------------------------------------------------------------------------------------------------
# Form POST; sign = RSA2 (SHA256withRSA) over the "k=v" pairs sorted by key, joined with "&", excluding sign and
# sign_type and empty values, on the decoded values.


def test_alipay_trade_notify_built_from_the_documentation() -> None:
    kit = alipay_kit.make_kit()
    account = kit.account()
    key = kit.alipay_rsa.rsa_private
    assert key is not None
    fields = alipay_kit.trade_notify(out_trade_no="att_01HZDOCALIPAY0000001")
    params = {"charset": "utf-8", "sign_type": "RSA2", **fields}
    canonical = "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type") and params[k])
    signed = {**params, "sign": rsa_sha256_b64(key, canonical.encode("utf-8"))}

    def callback(form: dict[str, str]) -> InboundCallback:
        return InboundCallback(headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
                               body=urlencode(form).encode("ascii"), received_at=alipay_kit.NOW)

    adapter = AlipayAdapter(NoNetwork(), clock=lambda: alipay_kit.NOW)
    [notification] = check(lambda c: adapter.verify_and_parse_notification(account, c), callback(signed),
                           callback({**signed, "total_amount": "8.88"}))
    assert notification.object_id == "att_01HZDOCALIPAY0000001"


# -- UnionPay ACP 5.1.0 ------------------------------------------------------------------------------------------
# signMethod 01: SHA-256 of the sorted "k=v&..." string (all fields but signature), as lower-case hex; that hex
# text signed with SHA256withRSA by the key of signPubKeyCert, which must chain to the configured CFCA roots.


def test_unionpay_payment_notify_built_from_the_documentation() -> None:
    kit = unionpay_kit.make_kit()
    account = kit.account()
    fields = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01",
              **unionpay_kit.payment_notify_fields(order_id="attZ0docunionpay00000000001"),
              "signPubKeyCert": kit.chain.signer.pem}
    digest = hashlib.sha256("&".join(f"{k}={fields[k]}" for k in sorted(fields)).encode("utf-8")).hexdigest()
    signed = {**fields, "signature": rsa_sha256_b64(kit.chain.signer.key, digest.encode("ascii"))}

    def callback(form: dict[str, str]) -> InboundCallback:
        return InboundCallback(headers={"content-type": "application/x-www-form-urlencoded"},
                               body=urlencode(form).encode(), received_at=unionpay_kit.NOW)

    adapter = UnionPayAdapter(NoNetwork(), clock=lambda: unionpay_kit.NOW)
    [notification] = check(lambda c: adapter.verify_and_parse_notification(account, c), callback(signed),
                           callback({**signed, "txnAmt": "8887"}))
    assert notification.object_id == "att_docunionpay00000000001"  # ACP order ids spell "_" as "Z0"


# -- e-CNY (modelled partner-bank gateway, docs/channels/ecny.md) --------------------------------------------------
# X-ECNY-Timestamp/-Nonce/-Serial/-Signature; SM3withSM2 (user id 1234567812345678), DER, base64, over
# "NOTIFY\nts\nnonce\n" + body; sensitive fields SM4-GCM under the data key, AAD "merchant|out_order_no|field".


def sm2_der_b64(private_hex: str, public_hex: str, message: bytes) -> str:
    signer = sm2.CryptSM2(private_key=private_hex, public_key=public_hex, mode=1)
    raw = signer.sign_with_sm3(message, secrets.token_hex(32))
    return base64.b64encode(encode_dss_signature(int(raw[:64], 16), int(raw[64:], 16))).decode()


def test_ecny_payment_notify_built_from_the_documentation() -> None:
    kit = ecny_kit.make_kit()
    account = kit.account()
    out_order_no = "att_01hzdocecny000000000000001"
    iv = secrets.token_bytes(12)
    encryptor = Cipher(algorithms.SM4(ecny_kit.DATA_KEY), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(f"{ecny_kit.MERCHANT_ID}|{out_order_no}|payer_wallet".encode())
    sealed = encryptor.update(b"0021123456789012") + encryptor.finalize() + encryptor.tag
    order = {"out_order_no": out_order_no, "order_no": "EO2024052012000012345678", "status": "SUCCESS",
             "amount": "88.88", "currency": "CNY", "subject": "Green tea", "create_time": "20240520115900",
             "offline": False, "refunded_amount": "0.00", "txn_id": "TX" + "1" * 28, "pay_time": "20240520120102",
             "settle_time": "20240520120102",
             "payer_wallet": {"kid": ecny_kit.DATA_KEY_ID, "iv": base64.b64encode(iv).decode(),
                              "ct": base64.b64encode(sealed).decode()}}
    body = json.dumps({"notify_id": "NT202405201201020000000099", "notify_type": "PAYMENT",
                       "merchant_id": ecny_kit.MERCHANT_ID, "create_time": "20240520120102", "data": order},
                      ensure_ascii=False).encode()
    ts, nonce = str(ecny_kit.NOW_TS), secrets.token_hex(16)
    headers = {"content-type": "application/json; charset=utf-8", "x-ecny-timestamp": ts, "x-ecny-nonce": nonce,
               "x-ecny-serial": kit.bank.serial,
               "x-ecny-signature": sm2_der_b64(kit.bank.private_hex, kit.bank.public_hex,
                                               f"NOTIFY\n{ts}\n{nonce}\n".encode() + body)}
    adapter = ECNYAdapter(NoNetwork(), clock=lambda: ecny_kit.NOW)
    parsed = check(lambda c: adapter.verify_and_parse_notification(account, c),
                   InboundCallback(headers=headers, body=body, received_at=ecny_kit.NOW),
                   InboundCallback(headers=headers, body=body.replace(b'"88.88"', b'"88.80"'),
                                   received_at=ecny_kit.NOW))
    assert [n.object_id for n in parsed] == [out_order_no]


# -- Stripe ------------------------------------------------------------------------------------------------------
# Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body" with the endpoint's whsec_ secret>; 300 s tolerance.


def test_stripe_webhook_built_from_the_documentation() -> None:
    account = stripe_kit.make_account()
    event = {"id": "evt_3PDOCSTRIPE0001", "object": "event", "api_version": "2024-06-20",
             "created": stripe_kit.NOW_TS, "livemode": False, "type": "payment_intent.succeeded",
             "data": {"object": {"id": "pi_3PDOCSTRIPE0001", "object": "payment_intent", "amount": 2500,
                                 "amount_received": 2500, "currency": "eur", "status": "succeeded",
                                 "latest_charge": "ch_3PDOCSTRIPE0001",
                                 "metadata": {"attempt_id": "att_01HZDOCSTRIPE0000001"}}},
             "account": stripe_kit.ACCT}
    body = json.dumps(event).encode()
    ts = str(int(datetime.now(stripe_kit.UTC).timestamp()))
    v1 = hmac.new(stripe_kit.WHSEC.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"stripe-signature": f"t={ts},v1={v1}", "content-type": "application/json"}
    now = datetime.now(stripe_kit.UTC)
    adapter = StripeAdapter(NoNetwork())
    parsed = check(lambda c: adapter.verify_and_parse_notification(account, c),
                   InboundCallback(headers=headers, body=body, received_at=now),
                   InboundCallback(headers=headers, body=body.replace(b"2500", b"2501"), received_at=now))
    assert [n.object_id for n in parsed] == ["att_01HZDOCSTRIPE0000001"]


# -- PayPal ------------------------------------------------------------------------------------------------------
# PAYPAL-TRANSMISSION-ID/-TIME/-SIG, PAYPAL-CERT-URL, PAYPAL-AUTH-ALGO SHA256withRSA; the signature covers
# "transmission_id|transmission_time|webhook_id|crc32(body)" (CRC32 as an unsigned decimal) with the key of the
# certificate at PAYPAL-CERT-URL.


def test_paypal_webhook_built_from_the_documentation() -> None:
    kit = paypal_kit.make_kit()
    account = kit.account()
    event = {"id": "WH-DOC-58D329510W468432D-8HN650336L201105X", "event_version": "1.0",
             "create_time": "2024-05-20T04:00:00Z", "resource_type": "capture", "resource_version": "2.0",
             "event_type": "PAYMENT.CAPTURE.COMPLETED", "summary": "Payment completed for $ 25.0 USD",
             "resource": paypal_kit.capture(attempt_id="att_docpaypal0001")}
    body = json.dumps(event).encode()
    transmission_id, sent = "b2384410-f8d2-11eb-8c1d-doc000000001", "2024-05-20T04:00:00Z"
    message = f"{transmission_id}|{sent}|{paypal_kit.WEBHOOK_ID}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()
    headers = {"paypal-transmission-id": transmission_id, "paypal-transmission-time": sent,
               "paypal-transmission-sig": rsa_sha256_b64(kit.current.key, message),
               "paypal-cert-url": paypal_kit.CERT_URL, "paypal-auth-algo": "SHA256withRSA",
               "content-type": "application/json"}
    adapter = PayPalAdapter(NoNetwork(), clock=lambda: paypal_kit.NOW)
    parsed = check(lambda c: adapter.verify_and_parse_notification(account, c),
                   InboundCallback(headers=headers, body=body, received_at=paypal_kit.NOW),
                   InboundCallback(headers=headers, body=body.replace(b"COMPLETED", b"COMPLETEd", 1),
                                   received_at=paypal_kit.NOW))
    assert [n.object_id for n in parsed] == ["att_docpaypal0001"]
