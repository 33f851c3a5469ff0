"""Alipay: an app key pair (RSA2 or SM2) registered at the Alipay sandbox, and the sandbox's Alipay public key."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.crypto.sm import sm2_generate_keypair
from chalicelib.storage import config_repo
from infra.local.provision.http import post_json

ALIPAY_METHODS = ("alipay.page", "alipay.wap", "alipay.qr", "alipay.app")


def provision(sandbox_url: str, *, account_id: str = "alipay-demo", sign_type: str = "RSA2",
              appid: str = "2021004100000001", merchant_id: str = "2088102000000001", priority: int = 100,
              merchant_ids: tuple[str, ...] = (), page_action: str = "redirect_url") -> ChannelAccountConfig:
    """Generate app keys, register them at the sandbox, store the account config and its secrets."""
    config, secrets_document = register(sandbox_url, account_id=account_id, sign_type=sign_type, appid=appid,
                                        merchant_id=merchant_id, priority=priority, merchant_ids=merchant_ids,
                                        page_action=page_action)
    config_repo.put_channel_account(config, secrets_document)
    return config


def register(sandbox_url: str, *, account_id: str, sign_type: str = "RSA2", appid: str = "2021004100000001",
             merchant_id: str = "2088102000000001", priority: int = 100, merchant_ids: tuple[str, ...] = (),
             page_action: str = "redirect_url") -> tuple[ChannelAccountConfig, dict[str, Any]]:
    """What a merchant does in Alipay's console (make an app key pair, upload the public half, copy Alipay's
    public key): returns the account document and its secrets, ready for ``payhub channel put``."""
    settings = {"appid": appid, "merchant_id": merchant_id, "sign_type": sign_type, "page_action": page_action}
    if sign_type == "SM2":
        private_key, public_key = sm2_generate_keypair()
        settings["app_sm2_public_key"] = public_key
    else:
        # Bare base64 PKCS#8 / SubjectPublicKeyInfo: the form Alipay's key tool produces and its console shows.
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_key = base64.b64encode(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())).decode()
        public_key = base64.b64encode(key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    registered = post_json(f"{sandbox_url}/_sandbox/merchants", {
        "app_id": appid, "pid": merchant_id, "sign_type": sign_type, "app_public_key": public_key,
    })
    config = ChannelAccountConfig(
        account_id=account_id, channel="alipay", priority=priority, methods=ALIPAY_METHODS, merchant_ids=merchant_ids,
        currencies=("CNY",), api_base_url=sandbox_url, settings=settings,
    )
    return config, {
        "app_private_key": private_key,
        "alipay_public_keys": {registered["alipay_key_id"]: registered["alipay_public_key"]},
    }
