"""The gateway's SM2 signature rules, key lookup by serial (rotation with overlap) and sealed fields."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from ecny_kit import ATTEMPT, DATA_KEY, DATA_KEY_ID, MERCHANT_ID, NONCE, NOW, NOW_TS, make_kit, seal

from chalicelib.channels.ecny import signing
from chalicelib.channels.ecny.credentials import ECNYCredentials
from chalicelib.channels.ecny.sealing import SealError, masked_wallet, unseal
from chalicelib.crypto.sm import sm2_verify

KIT = make_kit()
BODY = b'{"notify_id":"NT1","merchant_id":"EC4401000000001"}'


def _check(headers: dict[str, str], *, body: bytes = BODY, keys=None, now=NOW) -> str:
    credentials = ECNYCredentials.from_account(KIT.account(bank_keys=keys))
    return signing.check_signed(headers, lambda ts, nonce: signing.notify_message(ts, nonce, body),
                                credentials.bank_public_keys, now)


def test_canonical_strings_are_exactly_as_documented() -> None:
    assert signing.request_message("/ecny/v1/orders", "1716177600", "n0nce", b'{"a":1}') == (
        b'POST\n/ecny/v1/orders\n1716177600\nn0nce\n{"a":1}')
    assert signing.response_message("req", "1716177600", "n0nce", b"{}") == b"RESPONSE\nreq\n1716177600\nn0nce\n{}"
    assert signing.notify_message("1716177600", "n0nce", b"") == b"NOTIFY\n1716177600\nn0nce\n"


def test_a_bank_signature_made_by_the_rules_verifies() -> None:
    assert _check(KIT.notify_headers(BODY)) == KIT.bank.serial


@pytest.mark.parametrize(("header", "value", "reason"), [
    ("x-ecny-timestamp", str(NOW_TS + 1), "signature mismatch"),
    ("x-ecny-nonce", NONCE[::-1], "signature mismatch"),
    ("x-ecny-serial", "FFFFFFFFFFFFFFFFFFFF", "unknown X-ECNY-Serial"),
    ("x-ecny-signature", base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode(), "signature mismatch"),
    ("x-ecny-signature", "not base64!", "not base64"),
    ("x-ecny-nonce", "short", "malformed X-ECNY-Nonce"),
    ("x-ecny-timestamp", "1716177600000", "window"),  # milliseconds are not seconds
])
def test_each_altered_header_is_rejected(header: str, value: str, reason: str) -> None:
    headers = {**KIT.notify_headers(BODY), header: value}
    with pytest.raises(signing.SignatureInvalid, match=reason):
        _check(headers)


@pytest.mark.parametrize("missing", ["x-ecny-timestamp", "x-ecny-nonce", "x-ecny-serial", "x-ecny-signature"])
def test_each_missing_header_is_rejected(missing: str) -> None:
    headers = KIT.notify_headers(BODY)
    del headers[missing]
    with pytest.raises(signing.SignatureInvalid):
        _check(headers)


def test_one_changed_body_byte_is_rejected() -> None:
    with pytest.raises(signing.SignatureInvalid, match="mismatch"):
        _check(KIT.notify_headers(BODY), body=BODY.replace(b"NT1", b"NT2"))


def test_forged_signature_under_the_bank_serial_is_rejected() -> None:
    with pytest.raises(signing.SignatureInvalid, match="mismatch"):
        _check(KIT.notify_headers(BODY, KIT.impostor))


@pytest.mark.parametrize("offset_s", [-301, 301, -3600])
def test_stale_or_future_timestamps_are_rejected(offset_s: int) -> None:
    with pytest.raises(signing.SignatureInvalid, match="window"):
        _check(KIT.notify_headers(BODY, ts=NOW_TS + offset_s))


def test_the_window_is_inclusive_at_300_s() -> None:
    assert _check(KIT.notify_headers(BODY, ts=NOW_TS - 300))


def test_a_response_signature_does_not_pass_as_a_notification() -> None:
    """Same key, same body, another kind of message: the first line of the canonical string differs."""
    headers = KIT.notify_headers(BODY)
    headers["x-ecny-signature"] = KIT.bank.sign(signing.response_message(NONCE, str(NOW_TS), NONCE, BODY))
    with pytest.raises(signing.SignatureInvalid, match="mismatch"):
        _check(headers)


def test_rotation_overlap_both_keys_verify_and_removing_the_old_one_refuses_it() -> None:
    by_old, by_new = KIT.notify_headers(BODY, KIT.bank_old), KIT.notify_headers(BODY, KIT.bank)
    only_old = [KIT.bank_old]
    assert _check(by_old, keys=only_old) == KIT.bank_old.serial  # before the rotation
    with pytest.raises(signing.SignatureInvalid, match="unknown"):
        _check(by_new, keys=only_old)  # the bank switched before we added its new key
    both = [KIT.bank_old, KIT.bank]
    assert _check(by_old, keys=both) == KIT.bank_old.serial  # overlap: either verifies
    assert _check(by_new, keys=both) == KIT.bank.serial
    with pytest.raises(signing.SignatureInvalid, match="unknown"):
        _check(by_old, keys=[KIT.bank])  # old key removed: its signatures are refused


def test_serials_match_case_insensitively() -> None:
    headers = {**KIT.notify_headers(BODY), "x-ecny-serial": KIT.bank.serial.lower()}
    assert _check(headers)


def test_merchant_signer_signs_with_sm2_over_the_exact_message() -> None:
    credentials = ECNYCredentials.from_account(KIT.account())
    message = signing.request_message("/p", "1", "n" * 16, b"body")
    signature = base64.b64decode(signing.sign(credentials.merchant_private_key, credentials.merchant_public_key, message))
    assert sm2_verify(KIT.merchant.public_hex, message, signature)
    assert not sm2_verify(KIT.merchant.public_hex, message + b" ", signature)


# -- sealed fields -----------------------------------------------------------------------------------------


def _unseal(sealed, *, out_order_no=ATTEMPT, field="payer_wallet", data_keys=None) -> str:
    credentials = ECNYCredentials.from_account(KIT.account(data_keys=data_keys))
    return unseal(credentials, sealed, out_order_no=out_order_no, field=field)


def test_sealed_field_opens_under_the_data_key() -> None:
    assert _unseal(seal("0021123456789012")) == "0021123456789012"


@pytest.mark.parametrize("change", ["ct", "iv", "kid", "other_order", "other_field", "other_merchant", "other_key"])
def test_sealed_field_bound_to_key_merchant_order_and_field(change: str) -> None:
    sealed = seal("0021123456789012")
    options = {}
    if change == "ct":
        raw = bytearray(base64.b64decode(sealed["ct"]))
        raw[0] ^= 1
        sealed["ct"] = base64.b64encode(bytes(raw)).decode()
    elif change == "iv":
        sealed["iv"] = base64.b64encode(b"\x02" * 12).decode()
    elif change == "kid":
        sealed["kid"] = "DK99999999"
    elif change == "other_order":
        options["out_order_no"] = "att_other"
    elif change == "other_field":
        options["field"] = "order_info"
    elif change == "other_merchant":
        sealed = seal("0021123456789012", merchant_id=MERCHANT_ID + "9")
    else:
        sealed = seal("0021123456789012", key=bytes(16))
    with pytest.raises(SealError):
        _unseal(sealed, **options)


def test_data_key_rotation_overlap() -> None:
    new_key = bytes(range(16))
    sealed_new = seal("w", kid="DK00000002", key=new_key)
    sealed_old = seal("w")
    both = {DATA_KEY_ID: DATA_KEY, "DK00000002": new_key}
    assert _unseal(sealed_new, data_keys=both) == _unseal(sealed_old, data_keys=both) == "w"
    with pytest.raises(SealError, match="unknown data key"):
        _unseal(sealed_old, data_keys={"DK00000002": new_key})


@pytest.mark.parametrize("sealed", [None, "text", {"kid": DATA_KEY_ID}, {"kid": DATA_KEY_ID, "iv": "!!", "ct": "AA=="},
                                    {"kid": DATA_KEY_ID, "iv": base64.b64encode(b"x" * 8).decode(), "ct": "AAAA"}])
def test_malformed_sealed_fields_are_refused(sealed: object) -> None:
    with pytest.raises(SealError):
        _unseal(sealed)


def test_wallet_ids_are_masked_to_four_digits() -> None:
    assert masked_wallet("0021123456789012") == "************9012"


def test_credentials_refuse_a_malformed_data_key() -> None:
    with pytest.raises(ValueError, match="32 hex"):
        ECNYCredentials.from_account(KIT.account(data_keys={"DK": b"short"}))


def test_nothing_secret_in_credentials_repr() -> None:
    text = repr(ECNYCredentials.from_account(KIT.account()))
    assert KIT.merchant.private_hex not in text and DATA_KEY.hex() not in text


def test_timestamps_compare_against_an_aware_now() -> None:
    naive = (NOW + timedelta(seconds=10)).replace(tzinfo=None)
    assert _check(KIT.notify_headers(BODY), now=naive)


def test_the_hub_sm2_digest_is_gmssls_reference_sm3withsm2() -> None:
    """chalicelib.crypto.sm computes e = SM3(Z || M) with OpenSSL; gmssl's pure-Python path must agree."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from gmssl import sm2

    from chalicelib.crypto.sm import sm2_sign, sm3_message_digest

    message = BODY * 40
    reference = sm2.CryptSM2(private_key=KIT.merchant.private_hex, public_key="")
    reference.public_key = KIT.merchant.public_hex
    assert reference._sm3_z(message) == sm3_message_digest(KIT.merchant.public_hex, message).hex()
    r, s = decode_dss_signature(sm2_sign(KIT.merchant.private_hex, KIT.merchant.public_hex, message))
    assert reference.verify_with_sm3(f"{r:064x}{s:064x}", message)
