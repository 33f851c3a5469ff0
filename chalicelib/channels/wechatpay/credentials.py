"""One WeChat Pay account's identifiers and key material, read from a ``ChannelAccount`` in one place.

Settings (strings): ``mchid``, ``appid``, ``merchant_serial_no``, ``sign_type`` ("RSA" | "SM2"),
optional ``public_key_id`` and, in SM2 mode, ``merchant_sm2_public_key`` (SM2 signing computes Z from the public point).
Secrets: ``merchant_private_key``, ``apiv3_key``, ``platform_keys`` (serial-or-public-key-id -> key text).
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.channels.wechatpay.signing import MerchantSigner
from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.secret import Secret
from chalicelib.domain.value_class import value_class

SIGN_TYPES = frozenset({"RSA", "SM2"})
_APIV3_KEY_BYTES = 32


@value_class
class WeChatCredentials:
    """One merchant account's identifiers and keys, as the WeChat Pay client signs and verifies with them."""

    mchid: str
    appid: str
    merchant_serial_no: str
    sign_type: str
    api_base_url: str
    merchant_private_key: Secret
    apiv3_key: Secret
    platform_keys: Mapping[str, Secret]
    public_key_id: str | None = None
    merchant_sm2_public_key: str | None = None

    @classmethod
    def from_account(cls, account: ChannelAccount) -> WeChatCredentials:
        settings = account.config.settings
        sign_type = settings.get("sign_type", "RSA").upper()
        if sign_type not in SIGN_TYPES:
            raise ValueError(f"channel account {account.account_id}: sign_type must be RSA or SM2")
        sm2_public = settings.get("merchant_sm2_public_key")
        if sign_type == "SM2" and not sm2_public:
            raise ValueError(f"channel account {account.account_id}: SM2 mode needs merchant_sm2_public_key")
        apiv3_key = account.secrets.get("apiv3_key")
        # AES-256-GCM uses the key bytes as they are, so any other length is a configuration mistake.
        if len(apiv3_key.reveal().encode()) != _APIV3_KEY_BYTES:
            raise ValueError(f"channel account {account.account_id}: apiv3_key must be 32 ASCII bytes")
        return cls(
            mchid=account.setting("mchid"),
            appid=account.setting("appid"),
            merchant_serial_no=account.setting("merchant_serial_no"),
            sign_type=sign_type,
            api_base_url=account.config.api_base_url.rstrip("/"),
            merchant_private_key=account.secrets.get("merchant_private_key"),
            apiv3_key=apiv3_key,
            platform_keys=account.secrets.get_map("platform_keys"),
            public_key_id=settings.get("public_key_id") or None,
            merchant_sm2_public_key=sm2_public or None,
        )

    def signer(self) -> MerchantSigner:
        return MerchantSigner(
            mchid=self.mchid,
            serial_no=self.merchant_serial_no,
            sign_type=self.sign_type,
            private_key=self.merchant_private_key,
            sm2_public_key_hex=self.merchant_sm2_public_key,
        )
