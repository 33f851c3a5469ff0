"""The card vault on an in-memory KMS: round trip under both ciphers, stable merchant-scoped fingerprints, no CVV
and no number in the record, and every kind of tampering refused."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.channels.base import CardDetails
from chalicelib.config.settings import settings
from chalicelib.domain.errors import CardUnreadable
from chalicelib.vault.cards import CardVault
from tests.fakes.kms import FakeKms

NOW = datetime(2025, 3, 1, tzinfo=UTC)
CARD = CardDetails(number="6212345678901265", exp_month=12, exp_year=2031, cvv="123", holder_name="张三",
                   phone="13800138000", id_type="01", id_number="110101199003077777")


def make_vault(cipher: str = "aes-256-gcm", kms: FakeKms | None = None) -> CardVault:
    return CardVault(kms or FakeKms(), dataclasses.replace(settings(), card_cipher=cipher))


def seal(vault: CardVault, card: CardDetails = CARD, merchant_id: str = "mch_1") -> dict[str, Any]:
    return vault.seal(card, merchant_id=merchant_id, now=NOW, keep_until=NOW + timedelta(days=1)).item


@pytest.mark.parametrize(("cipher", "alg", "key_bytes"), [("aes-256-gcm", "AES-256-GCM", 32), ("sm4-gcm", "SM4-GCM", 16)])
def test_round_trip_gives_the_card_back_without_its_cvv(cipher: str, alg: str, key_bytes: int) -> None:
    vault = make_vault(cipher)
    sealed = vault.seal(CARD, merchant_id="mch_1", now=NOW, keep_until=NOW + timedelta(days=1))
    assert sealed.token.startswith("card_") and sealed.item["alg"] == alg
    assert sealed.summary == {"token": sealed.token, "brand": "unionpay", "last4": "1265", "exp_month": 12,
                              "exp_year": 2031, "fingerprint": sealed.item["fingerprint"]}
    opened = vault.open(sealed.item)
    assert opened == dataclasses.replace(CARD, cvv=None)
    # One data key per card, of the cipher's size (SM4 takes 128-bit keys).
    assert len(base64.b64decode(sealed.item["nonce"])) == 12
    assert len(base64.b64decode(sealed.item["ciphertext"])) > key_bytes


def test_the_record_holds_no_number_no_cvv_and_no_personal_data_in_clear() -> None:
    item = seal(make_vault())
    text = json.dumps(item, ensure_ascii=False)
    for secret in (CARD.number, CARD.number[:12], "13800138000", "110101199003077777", "张三"):
        assert secret not in text
    # No field for a CVV, and the CVV as no value (checked on fields: random ciphertext may spell "cVv").
    assert not any("cvv" in name.lower() for name in item) and "123" not in item.values()
    assert item["pk"] == f"CARD#{item['token']}" and item["expires_at_epoch"] == int((NOW + timedelta(days=1)).timestamp())


def test_fingerprint_is_stable_per_card_and_merchant_and_tells_cards_apart() -> None:
    vault = make_vault()
    first, again = seal(vault), seal(vault, dataclasses.replace(CARD, cvv="999", exp_year=2032))
    assert first["token"] != again["token"] and first["ciphertext"] != again["ciphertext"]
    assert first["fingerprint"] == again["fingerprint"]  # same number: same fingerprint, whatever else differs
    other_card = seal(vault, dataclasses.replace(CARD, number="4111111111111111"))
    other_merchant = seal(vault, merchant_id="mch_2")
    assert len({first["fingerprint"], other_card["fingerprint"], other_merchant["fingerprint"]}) == 3
    assert first["fingerprint"].startswith("fp_") and CARD.number not in first["fingerprint"]


def test_the_cipher_setting_picks_new_cards_cipher_and_old_cards_keep_theirs() -> None:
    kms = FakeKms()
    old = seal(make_vault("sm4-gcm", kms))
    assert make_vault("aes-256-gcm", kms).open(old).number == CARD.number
    with pytest.raises(ValueError, match="card_cipher"):
        seal(make_vault("des"))


def _tampered(item: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    return {**item, field: value}


def _flip(b64: str, at: int = 0) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "sm4-gcm"])
@pytest.mark.parametrize(("field", "change"), [
    ("ciphertext", _flip),
    ("ciphertext", lambda v: _flip(v, -1)),  # the tag
    ("nonce", _flip),
    ("encrypted_data_key", _flip),
    ("last4", lambda v: "0000"),
    ("brand", lambda v: "visa"),
    ("exp_year", lambda v: v + 5),
    ("exp_month", lambda v: 1),
    ("fingerprint", lambda v: "fp_" + "a" * 32),
    ("merchant_id", lambda v: "mch_other"),
    ("token", lambda v: "card_other"),
    ("alg", lambda v: "AES-256-GCM" if v == "SM4-GCM" else "SM4-GCM"),
])
def test_any_tampering_is_refused(cipher: str, field: str, change: Any) -> None:
    vault = make_vault(cipher)
    item = seal(vault)
    with pytest.raises(CardUnreadable):
        vault.open(_tampered(item, field, change(item[field])))


def test_a_blob_moved_onto_another_card_does_not_open() -> None:
    vault = make_vault()
    mine, other = seal(vault), seal(vault, dataclasses.replace(CARD, number="4111111111111111"))
    for fields in (("ciphertext", "nonce"), ("encrypted_data_key",), ("ciphertext", "nonce", "encrypted_data_key")):
        with pytest.raises(CardUnreadable):
            vault.open({**mine, **{f: other[f] for f in fields}})


@pytest.mark.parametrize("missing", ["ciphertext", "nonce", "encrypted_data_key", "kms_key_id", "last4", "alg"])
def test_an_incomplete_record_is_refused(missing: str) -> None:
    vault = make_vault()
    item = seal(vault)
    del item[missing]
    with pytest.raises(CardUnreadable):
        vault.open(item)


def test_card_details_never_print_their_secrets() -> None:
    text = repr(CARD) + str(CARD)
    for secret in (CARD.number, "123", "13800138000", "110101199003077777"):
        assert secret not in text


def test_keyed_digest_needs_the_key() -> None:
    kms = FakeKms()
    vault, other = make_vault(kms=kms), make_vault()
    assert vault.keyed_digest(b"x") == vault.keyed_digest(b"x") != vault.keyed_digest(b"y")
    assert vault.keyed_digest(b"x") != other.keyed_digest(b"x")  # another key, another digest
