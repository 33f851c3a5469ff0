"""One e-CNY gateway account's identifiers and key material, read from a ``ChannelAccount`` in one place.

Settings (strings): ``merchant_id`` (the bank's merchant number), ``merchant_key_serial`` (serial the bank
registered our SM2 public key under) and ``merchant_sm2_public_key`` (SM2 signing computes Z from the public point).
Secrets: ``merchant_private_key`` (SM2 scalar hex), ``bank_public_keys`` (serial -> SM2 public key hex, several
during a rotation) and ``data_keys`` (key id -> 32 hex chars: the SM4 keys sealing sensitive fields).
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.secret import Secret
from chalicelib.domain.value_class import value_class

_DATA_KEY_HEX_LEN = 32


@value_class
class ECNYCredentials:
    merchant_id: str
    merchant_key_serial: str
    merchant_public_key: str
    api_base_url: str
    merchant_private_key: Secret
    bank_public_keys: Mapping[str, Secret]
    data_keys: Mapping[str, Secret]

    @classmethod
    def from_account(cls, account: ChannelAccount) -> ECNYCredentials:
        data_keys = account.secrets.get_map("data_keys")
        for key_id, key in data_keys.items():
            text = key.reveal()
            if len(text) != _DATA_KEY_HEX_LEN or any(c not in "0123456789abcdefABCDEF" for c in text):
                raise ValueError(f"channel account {account.account_id}: data key {key_id} must be 32 hex characters")
        return cls(
            merchant_id=account.setting("merchant_id"),
            merchant_key_serial=account.setting("merchant_key_serial"),
            merchant_public_key=account.setting("merchant_sm2_public_key"),
            api_base_url=account.config.api_base_url.rstrip("/"),
            merchant_private_key=account.secrets.get("merchant_private_key"),
            bank_public_keys=account.secrets.get_map("bank_public_keys"),
            data_keys=data_keys,
        )

    def data_key(self, key_id: str) -> bytes | None:
        key = self.data_keys.get(key_id)
        return bytes.fromhex(key.reveal()) if key is not None else None
