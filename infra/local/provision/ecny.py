"""e-CNY: a merchant SM2 key registered at the partner-bank gateway sandbox, which answers with its own
public key (by serial) and the SM4 data key that seals sensitive fields."""

from __future__ import annotations

import secrets
from typing import Any

from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.crypto.sm import sm2_generate_keypair
from chalicelib.storage import config_repo
from infra.local.provision.http import post_json

ECNY_METHODS = ("ecny.wallet",)


def provision(sandbox_url: str, *, account_id: str = "ecny-demo", merchant_id: str = "EC4401000000001",
              priority: int = 100, fee_rate_bps: int = 0,
              merchant_ids: tuple[str, ...] = ()) -> ChannelAccountConfig:
    """Generate the merchant key, register it at the sandbox, store the account config and its secrets."""
    config, secrets_document = register(sandbox_url, account_id=account_id, merchant_id=merchant_id, priority=priority,
                                        fee_rate_bps=fee_rate_bps, merchant_ids=merchant_ids)
    config_repo.put_channel_account(config, secrets_document)
    return config


def register(sandbox_url: str, *, account_id: str, merchant_id: str = "EC4401000000001", priority: int = 100,
             fee_rate_bps: int = 0,
             merchant_ids: tuple[str, ...] = ()) -> tuple[ChannelAccountConfig, dict[str, Any]]:
    """What onboarding at the bank amounts to (make a key pair, hand over the public half, receive the bank's
    key and the data key): returns the account document and its secrets, ready for ``payhub channel put``."""
    private_key, public_key = sm2_generate_keypair()
    key_serial = secrets.token_hex(10).upper()
    registered = post_json(f"{sandbox_url}/_sandbox/merchants", {
        "merchant_id": merchant_id, "merchant_key_serial": key_serial, "merchant_public_key": public_key,
        "fee_rate_bps": fee_rate_bps,
    })
    config = ChannelAccountConfig(
        account_id=account_id, channel="ecny", priority=priority, methods=ECNY_METHODS, merchant_ids=merchant_ids,
        currencies=("CNY",), api_base_url=sandbox_url, settings={
            "merchant_id": merchant_id, "merchant_key_serial": key_serial, "merchant_sm2_public_key": public_key,
        },
    )
    return config, {
        "merchant_private_key": private_key,
        "bank_public_keys": {registered["bank_key_serial"]: registered["bank_public_key"]},
        "data_keys": {registered["data_key_id"]: registered["data_key"]},
    }
