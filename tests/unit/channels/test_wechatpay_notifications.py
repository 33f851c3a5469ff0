"""Callbacks: verify the exact bytes, then decrypt, then parse; every tampered part is rejected."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from cryptography.x509 import load_pem_x509_certificate
from wechatpay_kit import (
    APIV3_KEY,
    APPID,
    MCHID,
    NOW,
    NOW_TS,
    WeChatKit,
    refund,
    transaction,
)

from chalicelib.channels.base import (
    InboundCallback,
    NotificationKind,
    PaymentOutcome,
    RefundOutcome,
)
from chalicelib.channels.transport import UrllibTransport
from chalicelib.channels.wechatpay import WeChatPayAdapter
from chalicelib.channels.wechatpay.notifications import decrypt_resource
from chalicelib.crypto.aead import DecryptionFailed, sm4_key_from_secret
from chalicelib.domain.errors import CallbackRejected
from chalicelib.domain.money import Money
from tests.vectors import load_vectors

VECTORS = load_vectors()
ADAPTER = WeChatPayAdapter(UrllibTransport(), clock=lambda: NOW)  # callbacks never touch the transport


def _rejects(kit: WeChatKit, callback: InboundCallback, reason: str) -> None:
    with pytest.raises(CallbackRejected) as caught:
        ADAPTER.verify_and_parse_notification(kit.account(), callback)
    message = str(caught.value)
    assert reason in message
    assert APIV3_KEY not in message and "ciphertext" not in message  # no key material, no body


def _payment_callback(kit: WeChatKit, **resource_options: str) -> tuple[bytes, dict[str, str]]:
    body = kit.envelope("TRANSACTION.SUCCESS", kit.resource(transaction(), **resource_options))
    return body, kit.signed_headers(body)


# --- shared vectors ------------------------------------------------------------------------------


def test_official_aes_gcm_certificate_download_decrypts() -> None:
    vector = VECTORS["wechat_aes_gcm_certificate_download"]
    resource = {"algorithm": "AEAD_AES_256_GCM", "nonce": vector["nonce"],
                "associated_data": vector["associated_data"], "ciphertext": vector["ciphertext"]}
    plaintext = decrypt_resource(resource, vector["apiv3_key"])
    assert plaintext.startswith(vector["expected_plaintext_prefix"].encode())
    serial = f"{load_pem_x509_certificate(plaintext).serial_number:X}"
    assert serial == vector["expected_serial_no"] == "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC"


@pytest.mark.parametrize("field", ["nonce", "associated_data", "ciphertext"])
def test_official_aes_gcm_vector_rejects_alteration(field: str) -> None:
    vector = VECTORS["wechat_aes_gcm_certificate_download"]
    resource = {"algorithm": "AEAD_AES_256_GCM", "nonce": vector["nonce"],
                "associated_data": vector["associated_data"], "ciphertext": vector["ciphertext"]}
    if field == "ciphertext":
        sealed = bytearray(base64.b64decode(vector["ciphertext"]))
        sealed[10] ^= 0x01
        resource["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    else:
        resource[field] = resource[field][:-1] + ("x" if resource[field][-1] != "x" else "y")
    with pytest.raises(DecryptionFailed):
        decrypt_resource(resource, vector["apiv3_key"])


def test_official_sm4_gcm_vector_decrypts() -> None:
    vector = VECTORS["wechat_sm4_gcm"]
    assert sm4_key_from_secret(vector["apiv3_key"].encode()).hex() == vector["sm4_key_hex"]
    resource = {"algorithm": "AEAD_SM4_GCM", "nonce": vector["nonce"],
                "associated_data": vector["associated_data"], "ciphertext": vector["ciphertext"]}
    assert decrypt_resource(resource, vector["apiv3_key"]) == vector["plaintext"].encode()
    with pytest.raises(DecryptionFailed):
        decrypt_resource({**resource, "associated_data": "associatedDatA"}, vector["apiv3_key"])


# --- accepted callbacks ----------------------------------------------------------------------------


def test_rsa_payment_callback_accepted(kit: WeChatKit) -> None:
    body, headers = _payment_callback(kit)
    notification = ADAPTER.verify_and_parse_notification(kit.account(), kit.callback(body, headers))
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.event_id == "EV-2018022511223320873"
    assert (notification.channel_merchant_id, notification.channel_app_id) == (MCHID, APPID)
    assert notification.object_id == "att_1217752501201407033233368018"
    assert notification.payment is not None
    assert notification.payment.outcome is PaymentOutcome.SUCCEEDED
    assert notification.payment.amount == Money(100, "CNY")
    assert notification.payment.channel_transaction_id == "1217752501201407033233368018"
    assert notification.payment.paid_at is not None and notification.payment.paid_at.utcoffset() == timedelta(hours=8)


def test_missing_signature_type_header_means_rsa(kit: WeChatKit) -> None:
    body = kit.envelope("TRANSACTION.SUCCESS", kit.resource(transaction()))
    headers = kit.signed_headers(body, with_type=False)
    assert ADAPTER.verify_and_parse_notification(kit.account(), kit.callback(body, headers)).payment is not None
    sm2_headers = kit.signed_headers(body, kit.platform_sm2, with_type=False)
    _rejects(kit, kit.callback(body, sm2_headers), "signature mismatch")


def test_sm2_signed_sm4_encrypted_callback_accepted(kit: WeChatKit) -> None:
    body = kit.envelope("TRANSACTION.SUCCESS", kit.resource(transaction(total=8888), algorithm="AEAD_SM4_GCM"))
    headers = kit.signed_headers(body, kit.platform_sm2)
    assert headers["wechatpay-signature-type"] == "WECHATPAY2-SM2-WITH-SM3"
    notification = ADAPTER.verify_and_parse_notification(kit.account("SM2"), kit.callback(body, headers))
    assert notification.payment is not None and notification.payment.amount == Money(8888, "CNY")


@pytest.mark.parametrize("key_name", ["platform_rsa", "platform_rsa_old", "platform_pubkey_mode"])
def test_every_configured_platform_key_verifies_during_rotation(kit: WeChatKit, key_name: str) -> None:
    body = kit.envelope("TRANSACTION.SUCCESS", kit.resource(transaction()))
    headers = kit.signed_headers(body, getattr(kit, key_name))
    assert ADAPTER.verify_and_parse_notification(kit.account(), kit.callback(body, headers)).event_id


def test_lower_case_certificate_serial_still_found(kit: WeChatKit) -> None:
    body, headers = _payment_callback(kit)
    headers["wechatpay-serial"] = headers["wechatpay-serial"].lower()
    assert ADAPTER.verify_and_parse_notification(kit.account(), kit.callback(body, headers)).event_id


def test_empty_associated_data_is_authenticated_not_skipped(kit: WeChatKit) -> None:
    body, headers = _payment_callback(kit, aad="")
    assert ADAPTER.verify_and_parse_notification(kit.account(), kit.callback(body, headers)).event_id


@pytest.mark.parametrize(("status", "outcome"), [("SUCCESS", RefundOutcome.SUCCEEDED), ("CLOSED", RefundOutcome.FAILED),
                                                 ("ABNORMAL", RefundOutcome.PROCESSING)])
def test_refund_callback(kit: WeChatKit, status: str, outcome: RefundOutcome) -> None:
    body = kit.envelope(f"REFUND.{status}", kit.resource(refund(status), aad="refund"))
    notification = ADAPTER.verify_and_parse_notification(kit.account(), kit.callback(body, kit.signed_headers(body)))
    assert notification.kind is NotificationKind.REFUND
    assert notification.object_id == "rf_1"
    assert notification.channel_app_id is None
    assert notification.refund is not None
    assert notification.refund.outcome is outcome
    assert notification.refund.amount == Money(40, "CNY")


def test_unknown_trade_state_in_callback_is_pending(kit: WeChatKit) -> None:
    body = kit.envelope("TRANSACTION.SUCCESS", kit.resource(transaction("SOMETHING_NEW")))
    notification = ADAPTER.verify_and_parse_notification(kit.account(), kit.callback(body, kit.signed_headers(body)))
    assert notification.payment is not None and notification.payment.outcome is PaymentOutcome.PENDING


# --- rejected callbacks ----------------------------------------------------------------------------


def test_body_byte_changed_rejected(kit: WeChatKit) -> None:
    body, headers = _payment_callback(kit)
    tampered = body.replace(b"EV-2018022511223320873", b"EV-2018022511223320874")
    _rejects(kit, kit.callback(tampered, headers), "signature mismatch")


def test_reserialised_body_rejected(kit: WeChatKit) -> None:
    body, headers = _payment_callback(kit)
    compact = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")).encode()
    _rejects(kit, kit.callback(compact, headers), "signature mismatch")


@pytest.mark.parametrize(("header", "value", "reason"), [
    ("wechatpay-timestamp", str(NOW_TS - 1), "signature mismatch"),
    ("wechatpay-nonce", "5K8264ILTKCH16CQ2502SI8ZNMTM67VT", "signature mismatch"),
    ("wechatpay-serial", "0000000000000000000000000000000000000000", "unknown Wechatpay-Serial"),
    ("wechatpay-signature", base64.b64encode(b"\x00" * 256).decode(), "signature mismatch"),
    ("wechatpay-signature", "not base64!", "signature mismatch"),
    ("wechatpay-signature-type", "HMAC-SHA256", "unsupported Wechatpay-Signature-Type"),
    ("wechatpay-timestamp", "17e8", "timestamp"),
])
def test_tampered_header_rejected(kit: WeChatKit, header: str, value: str, reason: str) -> None:
    body, headers = _payment_callback(kit)
    _rejects(kit, kit.callback(body, {**headers, header: value}), reason)


@pytest.mark.parametrize("header", ["wechatpay-signature", "wechatpay-timestamp", "wechatpay-nonce",
                                    "wechatpay-serial"])
def test_missing_header_rejected(kit: WeChatKit, header: str) -> None:
    body, headers = _payment_callback(kit)
    del headers[header]
    with pytest.raises(CallbackRejected):
        ADAPTER.verify_and_parse_notification(kit.account(), kit.callback(body, headers))


@pytest.mark.parametrize("offset_s", [-600, 600, -300, 300])
def test_timestamp_outside_window_rejected_even_when_signed(kit: WeChatKit, offset_s: int) -> None:
    body = kit.envelope("TRANSACTION.SUCCESS", kit.resource(transaction()))
    headers = kit.signed_headers(body, ts=NOW_TS + offset_s)  # correctly signed, wrong time
    _rejects(kit, kit.callback(body, headers), "timestamp")


@pytest.mark.parametrize("offset_s", [-299, 299])
def test_timestamp_just_inside_window_accepted(kit: WeChatKit, offset_s: int) -> None:
    body = kit.envelope("TRANSACTION.SUCCESS", kit.resource(transaction()))
    headers = kit.signed_headers(body, ts=NOW_TS + offset_s)
    assert ADAPTER.verify_and_parse_notification(kit.account(), kit.callback(body, headers)).event_id


def test_window_measured_from_received_at(kit: WeChatKit) -> None:
    body, headers = _payment_callback(kit)
    _rejects(kit, kit.callback(body, headers, received_at=NOW + timedelta(seconds=301)), "timestamp")


def test_signature_probe_rejected(kit: WeChatKit) -> None:
    body, headers = _payment_callback(kit)
    headers["wechatpay-signature"] = "WECHATPAY/SIGNTEST/" + headers["wechatpay-signature"]
    _rejects(kit, kit.callback(body, headers), "signature probe")


def _resign_with(kit: WeChatKit, mutate: str) -> tuple[bytes, dict[str, str]]:
    """Tamper with the resource, then sign the result: only the AEAD check can catch it."""
    resource = kit.resource(transaction())
    if mutate == "ciphertext":
        sealed = bytearray(base64.b64decode(resource["ciphertext"]))
        sealed[3] ^= 0x80
        resource["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    elif mutate == "associated_data":
        resource["associated_data"] = "transactioN"
    elif mutate == "nonce":
        resource["nonce"] = "fdasflkja485"
    elif mutate == "algorithm":
        resource["algorithm"] = "AEAD_SM4_GCM"
    body = kit.envelope("TRANSACTION.SUCCESS", resource)
    return body, kit.signed_headers(body)


@pytest.mark.parametrize("mutate", ["ciphertext", "associated_data", "nonce", "algorithm"])
def test_tampered_resource_rejected_after_valid_signature(kit: WeChatKit, mutate: str) -> None:
    body, headers = _resign_with(kit, mutate)
    _rejects(kit, kit.callback(body, headers), "decryption failed")


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"id":"EV-1","event_type":"TRANSACTION.SUCCESS"}', "lacks id or resource"),
    (b'{"id":"EV-1","event_type":"MCHTRANSFER.BILL.FINISHED","resource":{}}', "unsupported event_type"),
])
def test_bad_envelope_rejected_after_valid_signature(kit: WeChatKit, body: bytes, reason: str) -> None:
    _rejects(kit, kit.callback(body, kit.signed_headers(body)), reason)


def test_wrong_apiv3_key_rejected(kit: WeChatKit) -> None:
    body, headers = _payment_callback(kit)
    account = kit.account(apiv3_key="X" * 32)  # a misconfigured account: right signature, wrong AEAD key
    with pytest.raises(CallbackRejected, match="decryption failed"):
        ADAPTER.verify_and_parse_notification(account, kit.callback(body, headers))


# --- acknowledgement -----------------------------------------------------------------------------


def test_acknowledge() -> None:
    ok = ADAPTER.acknowledge(True)
    assert (ok.status, ok.body) == (204, b"")
    failed = ADAPTER.acknowledge(False)
    assert failed.status >= 400
    assert json.loads(failed.body)["code"] == "FAIL"
