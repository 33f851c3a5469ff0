"""The key service behind the vault: KMS data keys (envelope encryption) and KMS HMAC (fingerprints).

Key material never leaves KMS except as a data key, which the vault holds for one encryption or decryption
and then drops. ``KeyService`` is the seam; ``AwsKms`` is the real one (moto locally, over the boto3 wire).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import CardUnreadable, CardVaultUnavailable
from chalicelib.domain.value_class import value_class
from chalicelib.storage.aws import client

MAC_ALGORITHM = "HMAC_SHA_256"


@value_class
class DataKey:
    plaintext: bytes = field(repr=False)
    encrypted: bytes  # the data key wrapped by the KMS key: stored next to what it encrypts
    key_id: str  # ARN of the KMS key that wrapped it


class KeyService(Protocol):
    def generate_data_key(self, key_id: str, size_bytes: int, context: Mapping[str, str]) -> DataKey: ...

    def decrypt_data_key(self, key_id: str, encrypted: bytes, context: Mapping[str, str]) -> bytes:
        """Raises ``CardUnreadable`` when the wrapped key or its context was tampered with."""
        ...

    def mac(self, key_id: str, message: bytes) -> bytes: ...


class AwsKms:
    """KMS over boto3. Every failure is wrapped so no request parameter (a card number in a MAC message)
    can travel up inside a botocore error."""

    def generate_data_key(self, key_id: str, size_bytes: int, context: Mapping[str, str]) -> DataKey:
        try:
            answer = client("kms").generate_data_key(KeyId=key_id, NumberOfBytes=size_bytes,
                                                     EncryptionContext=dict(context))
        except (ClientError, BotoCoreError) as exc:
            raise CardVaultUnavailable(f"card vault key service failed: {_code(exc)}") from None
        return DataKey(answer["Plaintext"], answer["CiphertextBlob"], answer["KeyId"])

    def decrypt_data_key(self, key_id: str, encrypted: bytes, context: Mapping[str, str]) -> bytes:
        try:
            answer = client("kms").decrypt(CiphertextBlob=encrypted, KeyId=key_id, EncryptionContext=dict(context))
        except ClientError as exc:
            if _code(exc) in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise CardUnreadable("a vaulted card's data key does not unwrap") from None
            raise CardVaultUnavailable(f"card vault key service failed: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise CardVaultUnavailable(f"card vault key service failed: {_code(exc)}") from None
        plaintext: bytes = answer["Plaintext"]
        return plaintext

    def mac(self, key_id: str, message: bytes) -> bytes:
        try:
            answer = client("kms").generate_mac(KeyId=key_id, Message=message, MacAlgorithm=MAC_ALGORITHM)
        except (ClientError, BotoCoreError) as exc:
            raise CardVaultUnavailable(f"card fingerprint key service failed: {_code(exc)}") from None
        mac: bytes = answer["Mac"]
        return mac


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
