"""UnionPay ACP pieces that need no network: the signing rule, orderId mapping, wire forms, amounts, codes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st
from unionpay_kit import make_kit, private_pem

from chalicelib.channels.base import PaymentOutcome, RefundOutcome
from chalicelib.channels.unionpay.order_ids import BadOrderId, from_order_id, to_order_id
from chalicelib.channels.unionpay.signing import digest_hex, filter_blank, sign_fields, signing_string
from chalicelib.channels.unionpay.states import (
    Answer,
    classify,
    fen_to_money,
    money_to_fen,
    month_day_time,
    payment_outcome,
    refund_outcome,
)
from chalicelib.channels.unionpay.wire import MalformedMessage, decode_answer, decode_form, encode_form
from chalicelib.config.secret import Secret
from chalicelib.domain.money import Money

# -- signing (docs/channels/unionpay.md#signing) -------------------------------------------------------------


def test_filter_blank_drops_blank_values_and_trims_the_rest():
    assert filter_blank({"a": " 1 ", "b": "", "c": "   ", "d": "x"}) == {"a": "1", "d": "x"}


def test_signing_string_is_sorted_raw_pairs_without_signature():
    fields = {"txnAmt": "100", "backUrl": "https://h/cb?a=1&b=2", "signature": "zzz", "merId": "7"}
    assert signing_string(fields) == "backUrl=https://h/cb?a=1&b=2&merId=7&txnAmt=100"


def test_signature_is_rsa_sha256_over_the_sha256_hex_text():
    kit = make_kit()
    signed = sign_fields({"merId": "777", "orderId": "attZ0abc12345", "blank": " ", "txnAmt": " 1 "},
                         Secret(private_pem(kit.merchant_key)), kit.merchant_cert_id)
    assert "blank" not in signed and signed["txnAmt"] == "1"
    assert (signed["version"], signed["signMethod"], signed["certId"]) == ("5.1.0", "01", kit.merchant_cert_id)
    # Rebuild independently: lowercase hex of SHA-256 of the sorted string, and that hex is what RSA signs.
    text = "&".join(f"{k}={signed[k]}" for k in sorted(signed) if k != "signature")
    hex_digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest_hex(signed) == hex_digest.encode()
    kit.merchant_key.public_key().verify(base64.b64decode(signed["signature"]), hex_digest.encode(),
                                         padding.PKCS1v15(), hashes.SHA256())


def test_cert_id_is_decimal():
    kit = make_kit()
    assert kit.merchant_cert_id.isdigit()
    assert kit.chain.signer.serial == str(int(kit.chain.signer.serial))


# -- orderId mapping --------------------------------------------------------------------------------------------

hub_ids = st.from_regex(r"\A[A-Za-z0-9_]{8,19}\Z", fullmatch=True)


@given(hub_ids)
def test_order_id_mapping_round_trips_and_is_acp_shaped(hub_id: str):
    order_id = to_order_id(hub_id)
    assert order_id.isalnum() and 8 <= len(order_id) <= 40
    assert from_order_id(order_id) == hub_id


def test_hub_attempt_ids_map_with_one_extra_character():
    assert to_order_id("att_k3qzv7x2m4n5p6r7s8t9u0w1") == "attZ0k3qzv7x2m4n5p6r7s8t9u0w1"
    assert from_order_id("reZ0abcdefgh") == "re_abcdefgh"
    assert to_order_id("Zed_1234") == "ZZedZ01234"


@pytest.mark.parametrize("order_id", ["attZ1abcdefg", "short", "att-abcdefgh", "a" * 41, "attZ0abcdefZ"])
def test_foreign_order_ids_are_refused(order_id: str):
    with pytest.raises(BadOrderId):
        from_order_id(order_id)


def test_ids_too_long_for_acp_are_refused():
    with pytest.raises(BadOrderId):
        to_order_id("att_" + "Z" * 18)  # every Z doubles: 4 + 1 + 36 > 40


# -- wire forms ---------------------------------------------------------------------------------------------------


def test_answers_split_on_ampersands_outside_braces_only():
    body = b"respCode=00&customerInfo={phoneNo=138&smsCode=1}&signPubKeyCert=-----BEGIN==&tn=123"
    assert decode_answer(body) == {"respCode": "00", "customerInfo": "{phoneNo=138&smsCode=1}",
                                   "signPubKeyCert": "-----BEGIN==", "tn": "123"}


@pytest.mark.parametrize("body", [b"", b"respCode=00&respCode=01", b"noequals&x=1", b"\xff\xfe=1"])
def test_malformed_answers_are_refused(body: bytes):
    with pytest.raises(MalformedMessage):
        decode_answer(body)


def test_forms_round_trip_with_plus_slash_equals_and_chinese():
    fields = {"signature": "ab+/cd==", "respMsg": "成功 ok", "blank": ""}
    assert decode_form(encode_form(fields)) == fields
    with pytest.raises(MalformedMessage):
        decode_form(b"a=1&a=2")


# -- amounts --------------------------------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=999_999_999_999))
def test_fen_strings_round_trip(fen: int):
    wire = money_to_fen(Money(fen, "CNY"))
    assert wire == str(fen) and "." not in wire
    assert fen_to_money(wire) == Money(fen, "CNY")


@pytest.mark.parametrize("text", ["", "01", "-1", "1.00", " 1", "+1", "1e3", "1000000000000"])
def test_malformed_amounts_are_refused(text: str):
    with pytest.raises(ValueError):
        fen_to_money(text)


def test_non_cny_and_zero_amounts_are_refused_on_the_way_out():
    with pytest.raises(ValueError):
        money_to_fen(Money(100, "USD"))
    with pytest.raises(ValueError):
        money_to_fen(Money(0, "CNY"))


def test_unknown_currency_codes_are_refused():
    assert fen_to_money("5", "840") == Money(5, "USD")
    with pytest.raises(ValueError):
        fen_to_money("5", "999")


# -- codes (docs/channels/unionpay.md#response-codes) ---------------------------------------------------------------


@pytest.mark.parametrize("code", [f"{n:02d}" for n in range(100)])
def test_every_numeric_code_maps_to_exactly_one_outcome(code: str):
    expected = (PaymentOutcome.SUCCEEDED if code == "00" else
                PaymentOutcome.PENDING if code in ("03", "04", "05") else PaymentOutcome.FAILED)
    assert payment_outcome(code) is expected
    refund_expected = {PaymentOutcome.SUCCEEDED: RefundOutcome.SUCCEEDED, PaymentOutcome.PENDING: RefundOutcome.PROCESSING,
                       PaymentOutcome.FAILED: RefundOutcome.FAILED}[expected]
    assert refund_outcome(code) is refund_expected


@given(st.text(max_size=4).filter(lambda text: not (len(text) == 2 and text.isascii() and text.isdigit())))
def test_unreadable_codes_are_pending_never_success_or_failure(code: str):
    assert payment_outcome(code) is PaymentOutcome.PENDING
    assert refund_outcome(code) is RefundOutcome.PROCESSING
    assert classify(code) is Answer.UNKNOWN


def test_answer_classes():
    assert [classify(c) for c in ("00", "04", "12", "34", "11", "30", "61", "A6")] == [
        Answer.ACCEPTED, Answer.UNKNOWN, Answer.DUPLICATE, Answer.NOT_FOUND, Answer.FORMAT, Answer.REFUSED,
        Answer.REFUSED, Answer.UNKNOWN]


def test_trace_time_takes_the_nearest_year():
    from datetime import datetime

    from chalicelib.channels.unionpay.states import BEIJING

    near = datetime(2025, 1, 1, 0, 5, tzinfo=BEIJING)
    assert month_day_time("1231235959", near).year == 2024
    assert month_day_time("0101000100", near).year == 2025
    with pytest.raises(ValueError):
        month_day_time("1332000000", near)
