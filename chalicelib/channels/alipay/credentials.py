"""One Alipay account's identifiers and key material, read from a ``ChannelAccount`` in one place.

Settings (strings): ``appid`` (the Open Platform app id), ``merchant_id`` (the PID, 2088..., which notifies carry
as ``seller_id``), ``sign_type`` ("RSA2" | "SM2"), in SM2 mode ``app_sm2_public_key``, and optionally
``page_action`` ("redirect_url" | "form_post": how alipay.page / alipay.wap hand the signed order to the browser).
Secrets: ``app_private_key`` and ``alipay_public_keys`` (label -> Alipay public key; several during a rotation,
tried in turn because Alipay's signatures name no key).
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.channels.alipay import signing
from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.secret import Secret
from chalicelib.domain.value_class import value_class

PAGE_ACTIONS = frozenset({"redirect_url", "form_post"})
GATEWAY_PATH = "/gateway.do"


@value_class
class AlipayCredentials:
    app_id: str
    merchant_id: str
    sign_type: str
    gateway_url: str
    app_private_key: Secret
    alipay_public_keys: Mapping[str, Secret]
    app_sm2_public_key: str | None = None
    page_action: str = "redirect_url"

    @classmethod
    def from_account(cls, account: ChannelAccount) -> AlipayCredentials:
        settings = account.config.settings
        sign_type = settings.get("sign_type", "RSA2").upper()
        if sign_type not in signing.SIGN_TYPES:
            raise ValueError(f"channel account {account.account_id}: sign_type must be RSA2 or SM2")
        sm2_public = settings.get("app_sm2_public_key") or None
        if sign_type == "SM2" and not sm2_public:
            raise ValueError(f"channel account {account.account_id}: SM2 mode needs app_sm2_public_key")
        page_action = settings.get("page_action", "redirect_url")
        if page_action not in PAGE_ACTIONS:
            raise ValueError(f"channel account {account.account_id}: page_action must be redirect_url or form_post")
        base = account.config.api_base_url.rstrip("/")
        return cls(
            app_id=account.setting("appid"),
            merchant_id=account.setting("merchant_id"),
            sign_type=sign_type,
            # A base URL that already names the gateway (".../gateway.do") is taken as it is.
            gateway_url=base if base.endswith(".do") else base + GATEWAY_PATH,
            app_private_key=account.secrets.get("app_private_key"),
            alipay_public_keys=account.secrets.get_map("alipay_public_keys"),
            app_sm2_public_key=sm2_public,
            page_action=page_action,
        )

    def sign(self, message: bytes) -> str:
        return signing.sign(self.sign_type, self.app_private_key, message, app_sm2_public_key=self.app_sm2_public_key)
