"""An in-memory KMS with the behaviour the vault relies on: data keys wrapped under a master key with the
encryption context bound in (a wrong context or a tampered blob does not unwrap), and HMAC keys that MAC."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.domain.errors import CardUnreadable
from chalicelib.vault.keys import DataKey


class FakeKms:
    def __init__(self) -> None:
        self._wrapping: dict[str, bytes] = {}
        self._hmac: dict[str, bytes] = {}
        self.calls: list[str] = []

    def _wrapping_key(self, key_id: str) -> bytes:
        return self._wrapping.setdefault(key_id, AESGCM.generate_key(bit_length=256))

    @staticmethod
    def _aad(key_id: str, context: Mapping[str, str]) -> bytes:
        return json.dumps([key_id, dict(sorted(context.items()))]).encode()

    def generate_data_key(self, key_id: str, size_bytes: int, context: Mapping[str, str]) -> DataKey:
        self.calls.append("GenerateDataKey")
        plaintext = secrets.token_bytes(size_bytes)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + AESGCM(self._wrapping_key(key_id)).encrypt(nonce, plaintext, self._aad(key_id, context))
        return DataKey(plaintext, wrapped, f"arn:fake:kms:{key_id}")

    def decrypt_data_key(self, key_id: str, encrypted: bytes, context: Mapping[str, str]) -> bytes:
        self.calls.append("Decrypt")
        alias = key_id.removeprefix("arn:fake:kms:")
        try:
            return AESGCM(self._wrapping_key(alias)).decrypt(encrypted[:12], encrypted[12:], self._aad(alias, context))
        except InvalidTag:
            raise CardUnreadable("a vaulted card's data key does not unwrap") from None

    def mac(self, key_id: str, message: bytes) -> bytes:
        self.calls.append("GenerateMac")
        key = self._hmac.setdefault(key_id, secrets.token_bytes(32))
        return hmac.new(key, message, hashlib.sha256).digest()
