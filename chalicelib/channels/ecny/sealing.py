"""Sensitive fields sealed with SM4-GCM under the account's data key (数字信封 of the modelled gateway).

A sealed field is ``{"kid": key id, "iv": base64 12 bytes, "ct": base64 ciphertext||tag}``; the associated
data is ``<merchant_id>|<out_order_no>|<field name>``, so a sealed value cannot be moved to another order,
merchant or field without failing authentication. Used for ``order_info`` (the e-CNY cashier token) and
``payer_wallet`` (the payer's wallet id).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from chalicelib.channels.ecny.credentials import ECNYCredentials
from chalicelib.crypto.aead import DecryptionFailed, sm4_gcm_decrypt

_IV_BYTES = 12


class SealError(ValueError):
    """A sealed field is malformed, names an unknown key, or fails authentication."""


def associated_data(merchant_id: str, out_order_no: str, field: str) -> bytes:
    return f"{merchant_id}|{out_order_no}|{field}".encode()


def unseal(credentials: ECNYCredentials, sealed: Any, *, out_order_no: str, field: str) -> str:
    if not isinstance(sealed, Mapping):
        raise SealError(f"{field} is not a sealed object")
    key_id, iv_b64, ct_b64 = sealed.get("kid"), sealed.get("iv"), sealed.get("ct")
    if not isinstance(key_id, str) or not isinstance(iv_b64, str) or not isinstance(ct_b64, str):
        raise SealError(f"{field} lacks kid, iv or ct")
    key = credentials.data_key(key_id)
    if key is None:
        raise SealError(f"{field} is sealed under an unknown data key")
    try:
        iv = base64.b64decode(iv_b64, validate=True)
        ciphertext = base64.b64decode(ct_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SealError(f"{field} is not base64") from None
    if len(iv) != _IV_BYTES:
        raise SealError(f"{field} iv must be {_IV_BYTES} bytes")
    try:
        plaintext = sm4_gcm_decrypt(key, iv, ciphertext, associated_data(credentials.merchant_id, out_order_no, field))
        return plaintext.decode("utf-8")
    except (DecryptionFailed, UnicodeDecodeError):
        raise SealError(f"{field} failed SM4-GCM authentication") from None


def masked_wallet(wallet_id: str) -> str:
    """Keep the last four digits, enough for support, nothing more."""
    return "*" * max(len(wallet_id) - 4, 0) + wallet_id[-4:]
