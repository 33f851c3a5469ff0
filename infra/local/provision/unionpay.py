"""UnionPay: a merchant RSA key registered at the sandbox (which issues the merchant certificate and tells its
certId), plus the sandbox's middle/root certificates and encryption certificate stored as the account's trust
anchors. The sandbox made its own root -> middle -> signing hierarchy with ``cryptography`` when it started."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.storage import config_repo
from infra.local.provision.http import post_json

UNIONPAY_METHODS = ("unionpay.gateway", "unionpay.quickpass", "unionpay.card")


def provision(sandbox_url: str, *, account_id: str = "unionpay-demo", merchant_id: str = "777290058110048",
              environment: str = "test", priority: int = 100, merchant_ids: tuple[str, ...] = (),
              fee_rate_bps: int = 55) -> ChannelAccountConfig:
    """Generate the merchant key, register it, store config + secrets. Provisioning the same account again
    registers a new merchant certificate (the old one keeps working at the sandbox) and replaces the key."""
    config, secrets_document = register(sandbox_url, account_id=account_id, merchant_id=merchant_id,
                                        environment=environment, priority=priority, merchant_ids=merchant_ids,
                                        fee_rate_bps=fee_rate_bps)
    config_repo.put_channel_account(config, secrets_document)
    return config


def register(sandbox_url: str, *, account_id: str, merchant_id: str = "777290058110048", environment: str = "test",
             priority: int = 100, merchant_ids: tuple[str, ...] = (),
             fee_rate_bps: int = 55) -> tuple[ChannelAccountConfig, dict[str, Any]]:
    """What a merchant does with UnionPay (make a key, get its certificate, download UnionPay's middle, root and
    encryption certificates): returns the account document and its secrets, ready for ``payhub channel put``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    registered = post_json(f"{sandbox_url}/_sandbox/merchants", {
        "merchant_id": merchant_id, "merchant_public_key": public_pem, "fee_rate_bps": fee_rate_bps})
    # fee_rate_bps: the account's fee schedule, which reconciliation checks statement fees against.
    settings = {"merchant_id": merchant_id, "cert_id": registered["cert_id"], "environment": environment,
                "fee_rate_bps": str(fee_rate_bps)}
    config = ChannelAccountConfig(
        account_id=account_id, channel="unionpay", priority=priority, methods=UNIONPAY_METHODS, currencies=("CNY",),
        merchant_ids=merchant_ids, api_base_url=sandbox_url, settings=settings,
    )
    return config, {
        "merchant_private_key": private_pem,
        "encrypt_cert": registered["encrypt_cert"],
        "middle_certs": {registered["middle_serial"]: registered["middle_cert"]},
        "root_certs": {registered["root_serial"]: registered["root_cert"]},
    }
