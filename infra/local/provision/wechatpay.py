"""WeChat Pay: merchant keys (RSA or SM2) and an APIv3 key, registered at the WeChat Pay sandbox."""

from __future__ import annotations

import secrets
import string
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.crypto.sm import sm2_generate_keypair
from chalicelib.storage import config_repo
from infra.local.provision.http import post_json

WECHAT_METHODS = ("wechat.jsapi", "wechat.miniprogram", "wechat.native", "wechat.h5", "wechat.app")


def provision(sandbox_url: str, *, account_id: str = "wechat-demo", sign_type: str = "RSA",
              mchid: str = "1900000109", appid: str = "wx8888888888888888", priority: int = 100,
              merchant_ids: tuple[str, ...] = (), fee_rate_bps: int = 60) -> ChannelAccountConfig:
    """Generate merchant keys, register them at the sandbox, store the account config and its secrets."""
    config, secrets_document = register(sandbox_url, account_id=account_id, sign_type=sign_type, mchid=mchid,
                                        appid=appid, priority=priority, merchant_ids=merchant_ids,
                                        fee_rate_bps=fee_rate_bps)
    config_repo.put_channel_account(config, secrets_document)
    return config


def register(sandbox_url: str, *, account_id: str, sign_type: str = "RSA", mchid: str = "1900000109",
             appid: str = "wx8888888888888888", priority: int = 100, merchant_ids: tuple[str, ...] = (),
             fee_rate_bps: int = 60) -> tuple[ChannelAccountConfig, dict[str, Any]]:
    """What a merchant does in WeChat's console (make keys, upload the public one, read WeChat's key back):
    returns the account document and its secrets, ready for ``payhub channel put``."""
    apiv3_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    serial_no = secrets.token_hex(20).upper()
    # fee_rate_bps: the account's fee schedule (WeChat's common 0.60 %), which reconciliation checks fees against.
    settings = {"mchid": mchid, "appid": appid, "merchant_serial_no": serial_no, "sign_type": sign_type,
                "fee_rate_bps": str(fee_rate_bps)}
    if sign_type == "SM2":
        private_key, public_key = sm2_generate_keypair()
        settings["merchant_sm2_public_key"] = public_key
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
        public_key = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    registered = post_json(f"{sandbox_url}/_sandbox/merchants", {
        "mchid": mchid, "appids": [appid], "merchant_serial_no": serial_no, "sign_type": sign_type,
        "merchant_public_key": public_key, "apiv3_key": apiv3_key, "fee_rate_bps": fee_rate_bps,
    })
    settings["public_key_id"] = registered["public_key_id"]
    # The web authorisation for JSAPI (open.weixin.qq.com, api.weixin.qq.com) is played by the same sandbox.
    settings.update({"oauth_base_url": sandbox_url, "sns_api_base_url": sandbox_url})
    config = ChannelAccountConfig(
        account_id=account_id, channel="wechatpay", priority=priority, methods=WECHAT_METHODS, merchant_ids=merchant_ids,
        currencies=("CNY",), api_base_url=sandbox_url, settings=settings,
    )
    return config, {
        "merchant_private_key": private_key, "apiv3_key": apiv3_key,
        "app_secret": registered["app_secrets"][appid],
        "platform_keys": {registered["public_key_id"]: registered["platform_public_key"],
                          registered["platform_serial"]: registered["platform_public_key"]},
    }
