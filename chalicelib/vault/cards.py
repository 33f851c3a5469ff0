"""Cards in and out of the vault.

A card becomes one ``CARD#<token>`` record in the state table, written by the caller in the same transaction
as the payment and attempt that use it, and deleted (``discard``) in the transaction that makes that attempt
final (``card_records.discard``), since no confirmation can need it after that (its TTL is only the backstop for an
attempt never settled):

  token, merchant_id          ``card_...``; whose card it is
  alg, nonce, ciphertext      number, holder name, phone and id (JSON) under the card's own data key
  encrypted_data_key, kms_key_id   that data key, wrapped by the stage's card-vault KMS key
  brand, last4, exp_month, exp_year, fingerprint   what may be shown (bound into the ciphertext's AAD)

The CVV is never part of it, not even encrypted: it exists only in memory for the call that needs it.
The fingerprint is an HMAC of the number under a KMS HMAC key, scoped to the merchant: the same card gives
the same fingerprint for that merchant, and without KMS nobody can test a guessed number against it.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from functools import cache
from typing import Any

from chalicelib.channels.base import CardDetails
from chalicelib.config.settings import Settings, settings
from chalicelib.domain.cards import brand_of
from chalicelib.domain.clock import iso
from chalicelib.domain.errors import CardUnreadable, InvalidState
from chalicelib.domain.ids import new_id
from chalicelib.domain.value_class import value_class
from chalicelib.storage import records, state_repo
from chalicelib.vault.envelope import cipher_for_setting, open_sealed, seal
from chalicelib.vault.keys import AwsKms, KeyService

RECORD_VERSION = 1
_SECRET_FIELDS = ("number", "holder_name", "phone", "id_type", "id_number")
_SHOWN_FIELDS = ("token", "brand", "last4", "exp_month", "exp_year", "fingerprint")


@value_class
class SealedCard:
    token: str
    item: dict[str, Any]  # the CARD# record, ready for a transaction's put_new

    @property
    def summary(self) -> dict[str, Any]:
        """What may be shown to the merchant (and stored on the payment)."""
        return {name: self.item[name] for name in _SHOWN_FIELDS}


class CardVault:
    def __init__(self, keys: KeyService, config: Settings) -> None:
        self._keys = keys
        self._names = config.names
        self._cipher_setting = config.card_cipher

    def seal(self, card: CardDetails, *, merchant_id: str, now: datetime, keep_until: datetime) -> SealedCard:
        """Encrypt a card for the vault; nothing is written here. ``keep_until``: the record's TTL."""
        cipher = cipher_for_setting(self._cipher_setting)
        token = new_id("card")
        shown = {
            "token": token, "merchant_id": merchant_id, "alg": cipher.name, "brand": brand_of(card.number),
            "last4": card.last4, "exp_month": card.exp_month, "exp_year": card.exp_year,
            "fingerprint": self.fingerprint(card.number, merchant_id=merchant_id),
        }
        data_key = self._keys.generate_data_key(self._names.card_vault_key_alias, cipher.key_bytes,
                                                _context(token, merchant_id))
        secret = json.dumps({name: getattr(card, name) for name in _SECRET_FIELDS}, separators=(",", ":"))
        nonce, ciphertext = seal(cipher, data_key.plaintext, secret.encode(), _aad(shown))
        item = {
            **records.card_key(token), **shown, "record_version": RECORD_VERSION,
            "nonce": _b64(nonce), "ciphertext": _b64(ciphertext),
            "encrypted_data_key": _b64(data_key.encrypted), "kms_key_id": data_key.key_id,
            "created_at": iso(now), "expires_at_epoch": int(keep_until.timestamp()),
        }
        return SealedCard(token, item)

    def open(self, item: dict[str, Any]) -> CardDetails:
        """Decrypt a CARD# record; raises ``CardUnreadable`` if anything in it was altered. No CVV, ever."""
        try:
            shown = {name: item[name] for name in ("token", "merchant_id", "alg", *_SHOWN_FIELDS[1:])}
            nonce, ciphertext = _unb64(item["nonce"]), _unb64(item["ciphertext"])
            wrapped, key_id = _unb64(item["encrypted_data_key"]), str(item["kms_key_id"])
        except (KeyError, ValueError, TypeError):
            raise CardUnreadable("a vaulted card record is incomplete") from None
        key = self._keys.decrypt_data_key(key_id, wrapped, _context(shown["token"], shown["merchant_id"]))
        plain = json.loads(open_sealed(shown["alg"], key, nonce, ciphertext, _aad(shown)))
        return CardDetails(number=plain["number"], exp_month=int(shown["exp_month"]), exp_year=int(shown["exp_year"]),
                           holder_name=plain.get("holder_name"), phone=plain.get("phone"),
                           id_type=plain.get("id_type"), id_number=plain.get("id_number"))

    def load(self, token: str, *, merchant_id: str) -> CardDetails:
        """Read a merchant's vaulted card back (one GetItem, one KMS Decrypt)."""
        item = state_repo.get_item(records.card_key(token))
        if item is None or item.get("merchant_id") != merchant_id:
            raise InvalidState("the card of this payment is no longer held; create a new payment", param="card")
        return self.open(item)

    def fingerprint(self, number: str, *, merchant_id: str) -> str:
        mac = self._keys.mac(self._names.card_fingerprint_key_alias,
                             f"payhub-card-fingerprint:v1:{merchant_id}:{number}".encode())
        return "fp_" + base64.b32encode(mac[:20]).decode().lower()

    def keyed_digest(self, data: bytes) -> str:
        """An HMAC under the fingerprint key, for hashes of data that holds card numbers or SMS codes (a plain
        SHA-256 of a PAN, or of a 6-digit code, is reversed by trying every value)."""
        return self._keys.mac(self._names.card_fingerprint_key_alias, b"payhub-keyed-digest:v1:" + data).hex()


@cache
def vault() -> CardVault:
    return CardVault(AwsKms(), settings())


def _context(token: str, merchant_id: str) -> dict[str, str]:
    """KMS encryption context: the wrapped data key unwraps only for this card of this merchant."""
    return {"purpose": "payhub-card-vault", "card_token": token, "merchant_id": merchant_id}


def _aad(shown: dict[str, Any]) -> bytes:
    return json.dumps({"v": RECORD_VERSION, **shown}, sort_keys=True, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any) -> bytes:
    return base64.b64decode(str(text), validate=True)
