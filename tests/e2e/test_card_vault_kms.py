"""The card vault on KMS over the real boto3 wire (moto server): keys as bootstrapped from infra/resources.py,
envelope round trip under both ciphers, GenerateMac fingerprints, and KMS refusing a moved data key."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.channels.base import CardDetails
from chalicelib.config.settings import settings
from chalicelib.domain.errors import CardUnreadable
from chalicelib.storage.aws import client
from chalicelib.vault.cards import CardVault
from chalicelib.vault.keys import AwsKms
from infra.resources import resources

NOW = datetime.now(UTC)
CARD = CardDetails(number="6212345678901265", exp_month=12, exp_year=2031, cvv="123", phone="13800138000")


def vault(cipher: str = "aes-256-gcm") -> CardVault:
    return CardVault(AwsKms(), dataclasses.replace(settings(), card_cipher=cipher))


def test_bootstrap_made_the_stage_keys_as_defined(stack):
    kms = client("kms")
    for spec in resources("local").keys:
        metadata = kms.describe_key(KeyId=spec.alias)["KeyMetadata"]
        assert (metadata["KeySpec"], metadata["KeyUsage"]) == (spec.key_spec, spec.key_usage)
        assert kms.get_key_rotation_status(KeyId=metadata["KeyId"])["KeyRotationEnabled"] is spec.rotation


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "sm4-gcm"])
def test_round_trip_through_kms(stack, cipher: str):
    sealed = vault(cipher).seal(CARD, merchant_id="mch_kms", now=NOW, keep_until=NOW + timedelta(days=1))
    assert sealed.item["kms_key_id"].startswith("arn:aws:kms:")
    assert vault().open(sealed.item) == dataclasses.replace(CARD, cvv=None)


def test_fingerprints_are_kms_hmacs_stable_across_vault_instances(stack):
    first = vault().fingerprint(CARD.number, merchant_id="mch_kms")
    assert vault("sm4-gcm").fingerprint(CARD.number, merchant_id="mch_kms") == first
    assert vault().fingerprint("4111111111111111", merchant_id="mch_kms") != first
    mac = client("kms").generate_mac(KeyId=settings().names.card_fingerprint_key_alias, MacAlgorithm="HMAC_SHA_256",
                                     Message=f"payhub-card-fingerprint:v1:mch_kms:{CARD.number}".encode())["Mac"]
    assert first == "fp_" + base64.b32encode(mac[:20]).decode().lower()


def test_kms_refuses_a_data_key_moved_to_another_card(stack):
    one = vault().seal(CARD, merchant_id="mch_kms", now=NOW, keep_until=NOW)
    two = vault().seal(CARD, merchant_id="mch_kms", now=NOW, keep_until=NOW)
    with pytest.raises(CardUnreadable):
        vault().open({**two.item, "encrypted_data_key": one.item["encrypted_data_key"]})
    with pytest.raises(CardUnreadable):  # same blob, another merchant: the encryption context no longer matches
        vault().open({**one.item, "merchant_id": "mch_other"})
