"""A merchant's invoicing set-up: who the seller is at the invoice provider and how refunds are reversed.

The document lives in the config table (pk ``INVOICING``, sk the merchant id); the provider credentials (Nuonuo
``app_secret`` and ``access_token``) in Secrets Manager as ``payhub/<stage>/invoicing/<merchant_id>``, under the
stage's key. ``payhub invoicing put`` writes both.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit

from chalicelib.config.settings import SettingsError, settings
from chalicelib.domain.errors import Unprocessable
from chalicelib.domain.value_class import value_class
from chalicelib.invoices import credit_code
from chalicelib.storage import config_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item

PK = "INVOICING"
RED_LETTER_MODES = ("auto", "on_request")


class InvoicingNotConfigured(Unprocessable):
    code = "invoicing_not_configured"


@value_class
class InvoicingSettings:
    merchant_id: str
    provider: str  # "nuonuo"
    api_base_url: str  # https://sdk.nuonuo.com (the sandbox's http://127.0.0.1:... locally)
    app_key: str
    seller_tax_no: str  # the merchant's unified social credit code: Nuonuo's userTax
    seller_name: str
    seller_address: str
    seller_phone: str
    seller_bank_account: str
    drawer: str  # 开票人
    red_letter: str = "auto"  # reverse on refund at once, or wait for the merchant to ask ("on_request")

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> InvoicingSettings:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(document) - names)
        if unknown:
            raise ValueError(f"unknown invoicing fields: {', '.join(unknown)}")
        missing = sorted(n for n in names - {"red_letter"} if not isinstance(document.get(n), str) or not document[n])
        if missing:
            raise ValueError(f"invoicing fields required (non-empty strings): {', '.join(missing)}")
        built = cls(**document)
        if built.provider != "nuonuo":
            raise ValueError("provider: only nuonuo is supported")
        if built.red_letter not in RED_LETTER_MODES:
            raise ValueError(f"red_letter: one of {', '.join(RED_LETTER_MODES)}")
        if (problem := credit_code.problem(built.seller_tax_no)) is not None:
            raise ValueError(f"seller_tax_no: {problem}")
        if urlsplit(built.api_base_url).scheme not in ("https", "http"):
            raise ValueError("api_base_url: an http(s) URL")
        return built

    def document(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def secret_name(merchant_id: str) -> str:
    return f"payhub/{settings().stage}/invoicing/{merchant_id}"


def put(config: InvoicingSettings, secrets: dict[str, str] | None) -> None:
    if secrets is not None:
        missing = [k for k in ("app_secret", "access_token") if not secrets.get(k)]
        if missing:
            raise ValueError(f"invoicing secrets required: {', '.join(missing)}")
        config_repo.put_secret(secret_name(config.merchant_id), {k: secrets[k] for k in ("app_secret", "access_token")})
    client("dynamodb").put_item(TableName=settings().names.config_table, Item=to_item(
        {"pk": PK, "sk": config.merchant_id, "document": json.dumps(config.document(), ensure_ascii=False)}))


def get(merchant_id: str) -> InvoicingSettings:
    item = client("dynamodb").get_item(TableName=settings().names.config_table,
                                       Key=to_item({"pk": PK, "sk": merchant_id})).get("Item")
    if item is None:
        raise InvoicingNotConfigured("this merchant has no invoicing set up (payhub invoicing put)")
    return InvoicingSettings.from_document(json.loads(from_item(item)["document"]))


def secrets_of(merchant_id: str) -> dict[str, str]:
    loaded = config_repo.get_secret(secret_name(merchant_id))
    return {"app_secret": str(loaded["app_secret"]), "access_token": str(loaded["access_token"])}


def bucket() -> str:
    """Where issued invoices' PDFs are kept. Deployed, the stack names it (PAYHUB_INVOICE_BUCKET)."""
    given = os.environ.get("PAYHUB_INVOICE_BUCKET")
    if given:
        return given
    if settings().is_deployed:
        raise SettingsError("PAYHUB_INVOICE_BUCKET is not set: the stack gives it to the functions that keep invoices")
    return settings().names.invoice_bucket
