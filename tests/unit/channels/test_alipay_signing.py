"""Alipay's signature rules: the canonical string, key forms, RSA2/SM2, and the two real Alipay-signed samples."""

from __future__ import annotations

import base64

import pytest
from alipay_kit import AlipayKit, canonical, der_b64, make_kit

from chalicelib.channels.alipay import signing
from chalicelib.channels.alipay.signing import NotifyRule
from chalicelib.config.secret import Secret
from tests.vectors import load_vectors

VECTORS = load_vectors()
TRADE = VECTORS["alipay_trade_notify_2019"]
GATEWAY = VECTORS["alipay_servicemarket_notify_2019"]


@pytest.fixture(scope="module")
def kit() -> AlipayKit:
    return make_kit()


def keys(**named: str) -> dict[str, Secret]:
    return {name: Secret(text) for name, text in named.items()}


def test_canonical_string_sorts_drops_sign_and_empty_values_keeps_raw_values() -> None:
    params = {"method": "alipay.trade.query", "app_id": "2021", "sign": "x", "sign_type": "RSA2", "notify_url": "",
              "biz_content": '{"out_trade_no":"a&b=c"}', "charset": "utf-8"}
    assert signing.sign_content(params) == (b'app_id=2021&biz_content={"out_trade_no":"a&b=c"}&charset=utf-8'
                                            b"&method=alipay.trade.query&sign_type=RSA2")
    assert signing.notify_content(params, NotifyRule.V1) == (b'app_id=2021&biz_content={"out_trade_no":"a&b=c"}'
                                                             b"&charset=utf-8&method=alipay.trade.query")
    assert signing.sign_content({"b": "中文", "a": "1"}) == "a=1&b=中文".encode()


# -- the channel's own signed samples ------------------------------------------------------------------------


def test_real_trade_notify_verifies_under_v1_only() -> None:
    public = keys(alipay=TRADE["alipay_public_key_b64"])  # bare base64, as Alipay's console shows it
    assert signing.verify_notify("RSA2", public, TRADE["form"]) is NotifyRule.V1
    signature = TRADE["form"]["sign"]
    assert signing.verify_with_any("RSA2", public, signing.notify_content(TRADE["form"], NotifyRule.V2), signature) is None


def test_real_gateway_message_verifies_under_v2_only() -> None:
    public = keys(alipay=GATEWAY["alipay_public_key_pem"])
    assert signing.verify_notify("RSA2", public, GATEWAY["form"]) is NotifyRule.V2
    signature = GATEWAY["form"]["sign"]
    assert signing.verify_with_any("RSA2", public, signing.notify_content(GATEWAY["form"], NotifyRule.V1), signature) is None


@pytest.mark.parametrize("sample", [TRADE, GATEWAY], ids=["trade_notify", "gateway_message"])
def test_each_signed_field_of_a_real_sample_is_covered(sample: dict) -> None:
    public = keys(alipay=sample.get("alipay_public_key_pem") or sample["alipay_public_key_b64"])
    signed_fields = [k for k in sample["form"] if k != "sign" and not (k == "sign_type" and sample is TRADE)]
    for name in signed_fields:
        altered = dict(sample["form"])
        altered[name] = altered[name] + "0"
        assert signing.verify_notify("RSA2", public, altered) is None, name
        removed = {k: v for k, v in sample["form"].items() if k != name}
        assert signing.verify_notify("RSA2", public, removed) is None, name
    added = {**sample["form"], "extra": "1"}
    assert signing.verify_notify("RSA2", public, added) is None


def test_a_real_sample_fails_with_another_key_or_algorithm(kit: AlipayKit) -> None:
    assert signing.verify_notify("RSA2", keys(other=kit.alipay_rsa.public_text), TRADE["form"]) is None
    assert signing.verify_notify("SM2", keys(alipay=TRADE["alipay_public_key_b64"]), TRADE["form"]) is None
    assert signing.verify_notify("RSA2", keys(alipay=TRADE["alipay_public_key_b64"]),
                                 {**TRADE["form"], "sign": "not base64!"}) is None


# -- keys and algorithms -------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["pkcs8_b64", "pkcs1_b64", "pem"])
def test_app_private_key_in_any_console_form_signs_rsa2(kit: AlipayKit, form: str) -> None:
    signature = signing.sign("RSA2", Secret(kit.app_private_key_text(form)), b"app_id=1&method=m")
    assert signing.verify("RSA2", der_b64(kit.app_rsa.public_key()), b"app_id=1&method=m", signature)
    assert not signing.verify("RSA2", der_b64(kit.app_rsa.public_key()), b"app_id=1&method=n", signature)


def test_sm2_signatures_are_der_sm3withsm2_and_keys_may_be_hex_or_der(kit: AlipayKit) -> None:
    message = canonical({"a": "1", "b": "2"}, ("sign",))
    signature = kit.alipay_sm2.sign(message)
    assert signing.verify("SM2", kit.alipay_sm2.public_text, message, signature)
    assert signing.verify("SM2", "04" + kit.alipay_sm2.public_text.upper(), message, signature)
    # The same point as X.509 SubjectPublicKeyInfo (id-ecPublicKey, SM2 curve), base64: Alipay's console form.
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004") + bytes.fromhex(
        kit.alipay_sm2.public_text)
    assert signing.verify("SM2", base64.b64encode(spki).decode(), message, signature)
    assert not signing.verify("SM2", kit.alipay_sm2.public_text, message + b"x", signature)
    assert not signing.verify("RSA2", kit.alipay_sm2.public_text, message, signature)  # wrong key form for RSA2
    ours = signing.sign("SM2", Secret(kit.app_sm2_private), message, app_sm2_public_key=kit.app_sm2_public)
    assert signing.verify("SM2", kit.app_sm2_public, message, ours)


def test_sm2_signing_needs_the_public_point(kit: AlipayKit) -> None:
    with pytest.raises(ValueError, match="app_sm2_public_key"):
        signing.sign("SM2", Secret(kit.app_sm2_private), b"x")
    with pytest.raises(ValueError, match="sign_type"):
        signing.sign("RSA", Secret(kit.app_private_key_text()), b"x")


def test_rotation_overlap_any_listed_key_verifies(kit: AlipayKit) -> None:
    message = b"a=1"
    old_signature, new_signature = kit.alipay_rsa_old.sign(message), kit.alipay_rsa.sign(message)
    both = keys(new=kit.alipay_rsa.public_text, old=kit.alipay_rsa_old.public_text)
    assert signing.verify_with_any("RSA2", both, message, old_signature) == "old"
    assert signing.verify_with_any("RSA2", both, message, new_signature) == "new"
    only_new = keys(new=kit.alipay_rsa.public_text)
    assert signing.verify_with_any("RSA2", only_new, message, old_signature) is None
    broken = keys(bad="not a key", new=kit.alipay_rsa.public_text)  # a bad entry does not stop the others
    assert signing.verify_with_any("RSA2", broken, message, new_signature) == "new"
