"""Encrypt one card's secret fields with its data key: AES-256-GCM, or SM4-GCM where national cryptography is
required (chosen by the ``card_cipher`` setting; every record names its own algorithm, so switching the setting
never strands older cards). The associated data binds the ciphertext to its record: copy a blob onto another
card, or edit the record's brand, last4 or expiry, and decryption fails."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from chalicelib.crypto.aead import (
    DecryptionFailed,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from chalicelib.domain.errors import CardUnreadable
from chalicelib.domain.value_class import value_class

NONCE_BYTES = 12  # 96-bit GCM nonces, random: one data key encrypts exactly one message


@value_class
class Cipher:
    name: str  # as stored on the record
    key_bytes: int
    encrypt: Callable[[bytes, bytes, bytes, bytes], bytes]
    decrypt: Callable[[bytes, bytes, bytes, bytes], bytes]


CIPHERS: dict[str, Cipher] = {
    "aes-256-gcm": Cipher("AES-256-GCM", 32, aes_gcm_encrypt, aes_gcm_decrypt),
    "sm4-gcm": Cipher("SM4-GCM", 16, sm4_gcm_encrypt, sm4_gcm_decrypt),
}
_BY_NAME = {cipher.name: cipher for cipher in CIPHERS.values()}


def cipher_for_setting(setting: str) -> Cipher:
    try:
        return CIPHERS[setting.lower()]
    except KeyError as exc:
        raise ValueError(f"card_cipher must be one of {sorted(CIPHERS)}") from exc


def seal(cipher: Cipher, key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """Returns (nonce, ciphertext || tag)."""
    if len(key) != cipher.key_bytes:
        raise ValueError(f"{cipher.name} needs a {cipher.key_bytes}-byte key")
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce, cipher.encrypt(key, nonce, plaintext, aad)


def open_sealed(algorithm: str, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    cipher = _BY_NAME.get(algorithm)
    if cipher is None or len(key) != cipher.key_bytes or len(nonce) != NONCE_BYTES:
        raise CardUnreadable("a vaulted card names an unknown algorithm or malformed key material")
    try:
        return cipher.decrypt(key, nonce, ciphertext, aad)
    except DecryptionFailed:
        raise CardUnreadable("a vaulted card failed authentication") from None
