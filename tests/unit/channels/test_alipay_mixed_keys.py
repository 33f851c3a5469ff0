"""An Alipay account whose public keys mix SM2 and RSA2 (a migration between the two, or a pasted key of the
wrong kind): a key of the other type is skipped, never a crash, and a set where no key verifies refuses.

The RSA2 side uses Alipay's own signed notify (tests/fixtures/real_channel_samples.json); the SM2 key is the
SubjectPublicKeyInfo form Alipay's console shows (id-ecPublicKey on the SM2 curve), which ``cryptography``
cannot load as a key at all.
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
from alipay_kit import NOW, AlipayKit, canonical, make_kit

from chalicelib.channels.alipay import AlipayAdapter, signing
from chalicelib.channels.alipay.signing import NotifyRule
from chalicelib.channels.base import InboundCallback, NotificationKind
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.config.secret import Secret
from chalicelib.domain.errors import CallbackRejected
from tests.vectors import load_vectors

TRADE = load_vectors()["alipay_trade_notify_2019"]
SM2_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004")


@pytest.fixture(scope="module")
def kit() -> AlipayKit:
    return make_kit()


def sm2_console_key(kit: AlipayKit) -> str:
    return base64.b64encode(SM2_SPKI_PREFIX + bytes.fromhex(kit.alipay_sm2.public_text)).decode()


def sm2_pem_key(kit: AlipayKit) -> str:
    body = sm2_console_key(kit)
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN PUBLIC KEY-----\n{lines}\n-----END PUBLIC KEY-----\n"


def secrets(**named: str) -> dict[str, Secret]:
    return {name: Secret(text) for name, text in named.items()}


def test_an_sm2_key_cannot_be_loaded_as_an_rsa_key_and_is_not_one(kit: AlipayKit) -> None:
    assert not signing.verify("RSA2", sm2_console_key(kit), b"x", base64.b64encode(b"x" * 256).decode())
    assert not signing.verify("RSA2", sm2_pem_key(kit), b"x", base64.b64encode(b"x" * 256).decode())


@pytest.mark.parametrize("sm2_form", ["console_b64", "pem", "hex"])
def test_a_real_rsa2_notify_verifies_when_an_sm2_key_comes_first(kit: AlipayKit, sm2_form: str) -> None:
    sm2 = {"console_b64": sm2_console_key(kit), "pem": sm2_pem_key(kit), "hex": kit.alipay_sm2.public_text}[sm2_form]
    keys = secrets(a_sm2=sm2, b_rsa=TRADE["alipay_public_key_b64"])
    assert list(keys) == ["a_sm2", "b_rsa"]  # the SM2 key is tried first
    assert signing.verify_notify("RSA2", keys, TRADE["form"]) is NotifyRule.V1
    message = signing.notify_content(TRADE["form"], NotifyRule.V1)
    assert signing.verify_with_any("RSA2", keys, message, TRADE["form"]["sign"]) == "b_rsa"


def test_an_altered_real_notify_is_refused_by_a_mixed_set(kit: AlipayKit) -> None:
    keys = secrets(sm2=sm2_console_key(kit), rsa=TRADE["alipay_public_key_b64"])
    assert signing.verify_notify("RSA2", keys, {**TRADE["form"], "total_amount": "100.00"}) is None


def test_a_set_where_no_key_fits_refuses_without_crashing(kit: AlipayKit) -> None:
    keys = secrets(sm2=sm2_console_key(kit), sm2_pem=sm2_pem_key(kit), other_rsa=kit.alipay_rsa.public_text,
                   junk="not a key")
    assert signing.verify_notify("RSA2", keys, TRADE["form"]) is None


def test_an_sm2_signature_verifies_when_rsa_keys_come_first(kit: AlipayKit) -> None:
    message = canonical({"app_id": "2021", "out_trade_no": "att_1"}, ("sign",))
    signature = kit.alipay_sm2.sign(message)
    keys = secrets(a_rsa=TRADE["alipay_public_key_b64"], b_rsa_pem=kit.alipay_rsa.public_text,
                   c_sm2=sm2_console_key(kit))
    assert signing.verify_with_any("SM2", keys, message, signature) == "c_sm2"
    assert signing.verify_with_any("SM2", keys, message + b"x", signature) is None
    assert signing.verify_with_any("SM2", secrets(a_rsa=TRADE["alipay_public_key_b64"]), message, signature) is None


def test_the_sm2_console_key_in_pem_armour_verifies_sm2(kit: AlipayKit) -> None:
    message = b"a=1&b=2"
    assert signing.verify("SM2", sm2_pem_key(kit), message, kit.alipay_sm2.sign(message))


def test_the_real_notify_is_accepted_whole_by_an_account_with_a_mixed_key_set(kit: AlipayKit) -> None:
    config = ChannelAccountConfig(account_id="alipay-mixed", channel="alipay", methods=("alipay.page",),
                                  api_base_url="https://openapi.alipay.com",
                                  settings={"appid": "2019073166072302", "merchant_id": "2088531891668739",
                                            "sign_type": "RSA2"})
    account = ChannelAccount(config, ChannelSecrets({"app_private_key": "unused", "alipay_public_keys": {
        "sm2-2024": sm2_console_key(kit), "rsa-2019": TRADE["alipay_public_key_b64"]}}))
    adapter = AlipayAdapter(transport=None)  # type: ignore[arg-type]  # notifies never touch the network
    callback = InboundCallback(headers={}, body=urlencode(TRADE["form"]).encode(), received_at=NOW)
    notification = adapter.verify_and_parse_notification(account, callback)
    assert notification.kind is NotificationKind.PAYMENT
    forged = InboundCallback(headers={}, body=urlencode({**TRADE["form"], "trade_status": "TRADE_FINISHED"}).encode(),
                             received_at=NOW)
    with pytest.raises(CallbackRejected, match="does not verify"):
        adapter.verify_and_parse_notification(account, forged)
