"""Authorization header, signed messages, pay-signs and the shared SM2 vector."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechatpay_kit import MCHID, MERCHANT_SERIAL, WeChatKit

from chalicelib.channels.wechatpay.signing import (
    SCHEME_RSA,
    SCHEME_SM2,
    MerchantSigner,
    app_pay_sign_message,
    canonical_url,
    format_authorization,
    jsapi_pay_sign_message,
    parse_authorization_header,
    request_message,
)
from chalicelib.channels.wechatpay.verification import verify_signature
from chalicelib.config.secret import Secret
from chalicelib.crypto import rsa
from chalicelib.crypto.sm import sm2_verify
from tests.vectors import load_vectors

VECTORS = load_vectors()
SM2_VECTOR = VECTORS["wechat_sm2_signature"]


def _rsa_signer(kit: WeChatKit) -> MerchantSigner:
    return MerchantSigner(MCHID, MERCHANT_SERIAL, "RSA", Secret(kit.merchant_rsa_pem))


# --- shared vector -------------------------------------------------------------------------------


def test_official_sm2_vector_verifies() -> None:
    key = SM2_VECTOR["public_key_uncompressed_hex"]
    assert verify_signature(key, SCHEME_SM2, SM2_VECTOR["message"].encode(), SM2_VECTOR["signature_b64_der"])


@pytest.mark.parametrize("message", [b"messagf", b"message ", b"Message", b""])
def test_official_sm2_vector_rejects_altered_message(message: bytes) -> None:
    key = SM2_VECTOR["public_key_uncompressed_hex"]
    assert not verify_signature(key, SCHEME_SM2, message, SM2_VECTOR["signature_b64_der"])


def test_official_sm2_vector_rejects_altered_signature() -> None:
    der = bytearray(base64.b64decode(SM2_VECTOR["signature_b64_der"]))
    der[-1] ^= 0x01
    key = SM2_VECTOR["public_key_uncompressed_hex"]
    assert not verify_signature(key, SCHEME_SM2, b"message", base64.b64encode(bytes(der)).decode())


def test_sm2_key_refused_for_rsa_scheme_and_vice_versa(kit: WeChatKit) -> None:
    key = SM2_VECTOR["public_key_uncompressed_hex"]
    assert not verify_signature(key, SCHEME_RSA, b"message", SM2_VECTOR["signature_b64_der"])
    signature = kit.platform_rsa.sign(b"x")
    assert not verify_signature(kit.platform_rsa.public_text, SCHEME_SM2, b"x", signature)
    assert verify_signature(kit.platform_rsa.public_text, SCHEME_RSA, b"x", signature)


# --- request signing -----------------------------------------------------------------------------


def test_request_message_has_five_lines_each_ending_in_newline() -> None:
    body = b'{"mchid":"1900000109","amount":{"total":1}}'
    message = request_message("post", "https://api.mch.weixin.qq.com/v3/pay/transactions/jsapi", 1554208460, "N1", body)
    assert message == b"POST\n/v3/pay/transactions/jsapi\n1554208460\nN1\n" + body + b"\n"
    get = request_message("GET", "http://127.0.0.1:8101/v3/certificates?algorithm_type=SM2", "1", "n", b"")
    assert get == b"GET\n/v3/certificates?algorithm_type=SM2\n1\nn\n\n"


def test_canonical_url_keeps_query_and_percent_encoding_as_sent() -> None:
    url = "https://h/v3/pay/transactions/out-trade-no/a%2Fb?mchid=1900000109&x=%E4%B8%AD"
    assert canonical_url(url) == "/v3/pay/transactions/out-trade-no/a%2Fb?mchid=1900000109&x=%E4%B8%AD"
    assert canonical_url("https://h") == "/"


def test_rsa_authorization_header_format_and_signature(kit: WeChatKit) -> None:
    url, body = "https://api.test.invalid/v3/pay/transactions/out-trade-no/A1?mchid=1900000109", b""
    header = _rsa_signer(kit).authorization("GET", url, body, timestamp=1700000000, nonce="ABC")
    assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="ABC",timestamp="1700000000",'
                             f'serial_no="{MERCHANT_SERIAL}",signature="')
    fields = parse_authorization_header(header)
    signature = base64.b64decode(fields["signature"])
    public = kit.merchant_rsa.public_key()
    expected = b"GET\n/v3/pay/transactions/out-trade-no/A1?mchid=1900000109\n1700000000\nABC\n\n"
    assert rsa.verify_sha256(public, expected, signature)
    # The query is part of what is signed: without it the signature does not verify.
    assert not rsa.verify_sha256(public, expected.replace(b"?mchid=1900000109", b""), signature)


def test_signature_covers_exact_body_bytes(kit: WeChatKit) -> None:
    body = b'{"a": 1}'
    header = _rsa_signer(kit).authorization("POST", "https://h/v3/x", body, timestamp=1, nonce="n")
    signature = base64.b64decode(parse_authorization_header(header)["signature"])
    public = kit.merchant_rsa.public_key()
    assert rsa.verify_sha256(public, b"POST\n/v3/x\n1\nn\n" + body + b"\n", signature)
    assert not rsa.verify_sha256(public, b'POST\n/v3/x\n1\nn\n{"a":1}\n', signature)  # whitespace matters


def test_sm2_authorization_header(kit: WeChatKit) -> None:
    signer = MerchantSigner(MCHID, MERCHANT_SERIAL, "SM2", Secret(kit.merchant_sm2_private), kit.merchant_sm2_public)
    header = signer.authorization("POST", "https://h/v3/x?y=1", b"{}", timestamp=5, nonce="n")
    fields = parse_authorization_header(header)
    assert fields["scheme"] == "WECHATPAY2-SM2-WITH-SM3"
    der = base64.b64decode(fields["signature"])
    assert sm2_verify(kit.merchant_sm2_public, b"POST\n/v3/x?y=1\n5\nn\n{}\n", der)
    assert not sm2_verify(kit.merchant_sm2_public, b"POST\n/v3/x\n5\nn\n{}\n", der)


def test_parse_accepts_any_field_order() -> None:
    header = 'WECHATPAY2-SHA256-RSA2048 signature="c2ln",timestamp="1",serial_no="S",nonce_str="N",mchid="M"'
    assert parse_authorization_header(header) == {
        "scheme": SCHEME_RSA, "signature": "c2ln", "timestamp": "1", "serial_no": "S", "nonce_str": "N", "mchid": "M"}


@pytest.mark.parametrize("header", [
    'WECHATPAY2-SHA256-RSA2048 mchid="M",nonce_str="N",timestamp="1",serial_no="S"',  # no signature
    'WECHATPAY2-SHA256-RSA2048 mchid="M",mchid="M",nonce_str="N",timestamp="1",serial_no="S",signature="x"',
    'WECHATPAY2-SHA256-RSA mchid="M",nonce_str="N",timestamp="1",serial_no="S",signature="x"',  # unknown scheme
    'Bearer abc',
    'WECHATPAY2-SHA256-RSA2048 mchid=M,nonce_str="N",timestamp="1",serial_no="S",signature="x"',  # unquoted
    '',
])
def test_parse_rejects_malformed_headers(header: str) -> None:
    with pytest.raises(ValueError):
        parse_authorization_header(header)


@given(st.dictionaries(st.sampled_from(["mchid", "nonce_str", "timestamp", "serial_no", "signature"]),
                       st.from_regex(r"[A-Za-z0-9+/=_-]{0,40}", fullmatch=True), min_size=5, max_size=5),
       st.sampled_from([SCHEME_RSA, SCHEME_SM2]))
def test_format_then_parse_round_trips(fields: dict[str, str], scheme: str) -> None:
    assert parse_authorization_header(format_authorization(scheme, fields)) == {"scheme": scheme, **fields}


# --- client pay-signs ----------------------------------------------------------------------------

APP_ID, TS, NONCE, PREPAY = "wx2421b1c4370ec43b", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", \
    "wx201410272009395522657a690389285100"


def test_jsapi_and_app_messages_differ_only_in_line_four() -> None:
    jsapi = jsapi_pay_sign_message(APP_ID, TS, NONCE, PREPAY)
    app = app_pay_sign_message(APP_ID, TS, NONCE, PREPAY)
    assert jsapi == f"{APP_ID}\n{TS}\n{NONCE}\nprepay_id={PREPAY}\n".encode()
    assert app == f"{APP_ID}\n{TS}\n{NONCE}\n{PREPAY}\n".encode()


def test_app_style_pay_sign_does_not_verify_as_jsapi(kit: WeChatKit) -> None:
    signer = _rsa_signer(kit)
    public_pem = kit.merchant_rsa.public_key()
    app_sign = base64.b64decode(signer.sign(app_pay_sign_message(APP_ID, TS, NONCE, PREPAY)))
    jsapi_sign = base64.b64decode(signer.sign(jsapi_pay_sign_message(APP_ID, TS, NONCE, PREPAY)))
    assert rsa.verify_sha256(public_pem, jsapi_pay_sign_message(APP_ID, TS, NONCE, PREPAY), jsapi_sign)
    assert not rsa.verify_sha256(public_pem, jsapi_pay_sign_message(APP_ID, TS, NONCE, PREPAY), app_sign)
    assert not rsa.verify_sha256(public_pem, app_pay_sign_message(APP_ID, TS, NONCE, PREPAY), jsapi_sign)
