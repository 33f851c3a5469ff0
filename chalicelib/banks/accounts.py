"""Our accounts at banks: a small typed configuration in the config table, the keys in Secrets Manager.

  BANK_ACCOUNT#<reserve_id> / CONFIG   the account's document (what ``BankAccountConfig`` holds)
  payhub/<stage>/banks/<reserve_id>     its secrets: our SM2 private key, the SM4 key, the bank's SM2 public key

Secrets are ``Secret`` values once loaded, so neither a log line nor an error can show them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from chalicelib.banks.base import BankAccountRef, BankAdapter
from chalicelib.config.secret import Secret
from chalicelib.config.settings import settings
from chalicelib.domain.errors import NotFound
from chalicelib.domain.money import known_currencies
from chalicelib.domain.value_class import value_class
from chalicelib.storage import config_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item

_SK = "CONFIG"
_RESERVE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SECRET_NAMES = ("our_private_key", "sm4_key", "bank_public_key")


def _pk(reserve_id: str) -> str:
    return f"BANK_ACCOUNT#{reserve_id}"


@value_class
class BankAccountConfig:
    """The non-secret part of one of our bank accounts. ``branch_no`` (分行号) and ``bus_mod`` (业务模式) are
    what CMB asks for beside the account number; another bank may leave them empty."""

    reserve_id: str
    bank: str
    api_base_url: str
    uid: str  # our user id at the bank's direct-connect service
    account_no: str
    account_name: str
    currencies: tuple[str, ...]
    our_public_key: str  # our SM2 public key (x||y hex): not secret, needed beside the private key to sign
    branch_no: str = ""
    bus_mod: str = ""

    def __post_init__(self) -> None:
        if not _RESERVE_ID.match(self.reserve_id):
            raise ValueError("reserve_id must be 1-63 lower-case letters, digits or '-'")
        for name in ("bank", "api_base_url", "uid", "account_no", "account_name", "our_public_key"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} is required (non-empty string)")
        if not self.api_base_url.startswith(("https://", "http://")):
            raise ValueError("api_base_url must be an http(s) URL")
        if not self.currencies:
            raise ValueError("currencies must name at least one currency")
        known_currencies(tuple(self.currencies))

    def ref(self) -> BankAccountRef:
        return BankAccountRef(reserve_id=self.reserve_id, bank=self.bank, account_no=self.account_no,
                              account_name=self.account_name)

    def to_document(self) -> dict[str, Any]:
        document = asdict(self)
        document["currencies"] = list(self.currencies)
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> BankAccountConfig:
        fields = dict(document)
        fields["currencies"] = tuple(fields.get("currencies") or ())
        return cls(**fields)


@value_class
class BankSecrets:
    our_private_key: Secret
    sm4_key: Secret
    bank_public_key: Secret


@value_class
class BankAccount:
    config: BankAccountConfig
    secrets: BankSecrets


def put_bank_account(config: BankAccountConfig, secrets: Mapping[str, str]) -> None:
    """Store the secrets, then the document (a document never points at missing secrets)."""
    missing = [name for name in _SECRET_NAMES if not isinstance(secrets.get(name), str) or not secrets[name]]
    if missing:
        raise ValueError(f"bank account secrets missing: {', '.join(missing)}")  # names only, never values
    config_repo.put_secret(settings().names.bank_secret(config.reserve_id), {n: secrets[n] for n in _SECRET_NAMES})
    client("dynamodb").put_item(TableName=settings().names.config_table, Item=to_item({
        "pk": _pk(config.reserve_id), "sk": _SK, "document": json.dumps(config.to_document(), ensure_ascii=False),
        "bank": config.bank,
    }))


def bank_account_config(reserve_id: str) -> BankAccountConfig | None:
    """The account's document alone, without its keys (what may be sent from it, in which currencies)."""
    item = client("dynamodb").get_item(TableName=settings().names.config_table,
                                       Key=to_item({"pk": _pk(reserve_id), "sk": _SK})).get("Item")
    return BankAccountConfig.from_document(json.loads(from_item(item)["document"])) if item else None


def bank_account(reserve_id: str) -> BankAccount | None:
    """The account and its secrets, or None when no such account is configured."""
    item = client("dynamodb").get_item(TableName=settings().names.config_table,
                                       Key=to_item({"pk": _pk(reserve_id), "sk": _SK})).get("Item")
    if not item:
        return None
    config = BankAccountConfig.from_document(json.loads(from_item(item)["document"]))
    values = config_repo.get_secret(settings().names.bank_secret(reserve_id))
    missing = [name for name in _SECRET_NAMES if not isinstance(values.get(name), str)]
    if missing:
        raise KeyError(f"bank account {reserve_id} secrets missing: {', '.join(missing)}")
    return BankAccount(config, BankSecrets(*(Secret(values[name]) for name in _SECRET_NAMES)))


def bank_for(reserve_id: str) -> tuple[BankAdapter, BankAccountRef]:
    """The adapter and the account a reserve is reached through (what the payout worker sends with)."""
    found = bank_account(reserve_id)
    if found is None:
        raise NotFound(f"no bank account is configured for reserve {reserve_id}", param="reserve_id")
    from chalicelib.banks.registry import adapter_for

    return adapter_for(found.config.bank), found.config.ref()


def reserve_ids() -> list[str]:
    """Every reserve with a bank account configured (one filtered Scan of the small config table)."""
    found: list[str] = []
    for page in client("dynamodb").get_paginator("scan").paginate(
        TableName=settings().names.config_table, FilterExpression="begins_with(pk, :pk) AND sk = :sk",
        ExpressionAttributeValues={":pk": {"S": "BANK_ACCOUNT#"}, ":sk": {"S": _SK}}, ProjectionExpression="pk",
    ):
        found += [str(item["pk"]["S"]).removeprefix("BANK_ACCOUNT#") for item in page.get("Items", [])]
    return sorted(found)


def channel_paying_accounts(reserve_id: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The channels' own bank accounts that settle into ``reserve_id`` -> (their channel account, its currencies):
    a channel account's settings name them (``settlement_account_no``, ``reserve_id``). A credit from one of them
    is the channel settling, never a payer's transfer."""
    return {str(config.settings["settlement_account_no"]): (config.account_id, tuple(config.currencies))
            for config in config_repo.list_channel_accounts()
            if config.settings.get("reserve_id") == reserve_id and config.settings.get("settlement_account_no")}
