"""AEAD ciphers used by channels: AES-256-GCM and SM4-GCM (ciphertext || 16-byte tag)."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.crypto.sm import sm3_digest

_TAG_BYTES = 16


class DecryptionFailed(Exception):
    """Wrong key or tampered ciphertext/nonce/associated data."""


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext_and_tag: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, ciphertext_and_tag, aad)
    except InvalidTag as exc:
        raise DecryptionFailed("AES-GCM authentication failed") from exc


def sm4_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    body = encryptor.update(plaintext) + encryptor.finalize()
    return body + encryptor.tag


def sm4_gcm_decrypt(key: bytes, nonce: bytes, ciphertext_and_tag: bytes, aad: bytes) -> bytes:
    if len(ciphertext_and_tag) < _TAG_BYTES:
        raise DecryptionFailed("SM4-GCM ciphertext shorter than its tag")
    body, tag = ciphertext_and_tag[:-_TAG_BYTES], ciphertext_and_tag[-_TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    try:
        return decryptor.update(body) + decryptor.finalize()
    except InvalidTag as exc:
        raise DecryptionFailed("SM4-GCM authentication failed") from exc


def sm4_key_from_secret(secret: bytes) -> bytes:
    """WeChat's SM4 key derivation: the first 16 bytes of SM3(secret)."""
    return sm3_digest(secret)[:16]
