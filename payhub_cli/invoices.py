"""`payhub invoicing ...` (a merchant's invoice-provider set-up) and `payhub invoice ...` (request, read, fetch
and reverse invoices on a merchant's behalf)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


class InvoiceCliError(Exception):
    """A bad file or argument: one line on stderr, exit 1."""


def _read(path: str) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InvoiceCliError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise InvoiceCliError(f"{path}: expected a JSON object")
    return document


def _merchant(merchant_id: str) -> Any:
    from chalicelib.storage import config_repo

    merchant = config_repo.get_merchant(merchant_id)
    if merchant is None:
        raise InvoiceCliError(f"no merchant {merchant_id}")
    return merchant


def invoicing_put(args: argparse.Namespace) -> dict[str, Any]:
    """FILE: {"settings": {provider, api_base_url, app_key, seller_tax_no, ...}, "secrets": {app_secret,
    access_token} (optional: keeps the current ones)}."""
    from chalicelib.invoices import config
    from chalicelib.service import audit
    from payhub_cli.keys import actor

    _merchant(args.merchant_id)
    document = _read(args.file)
    secrets = document.get("secrets")
    if secrets is not None and not isinstance(secrets, dict):
        raise InvoiceCliError(f"{args.file}: secrets must be an object")
    try:
        settings = config.InvoicingSettings.from_document({**document.get("settings", {}),
                                                           "merchant_id": args.merchant_id})
        before = config.get(args.merchant_id).document()
    except config.InvoicingNotConfigured:
        before = None
    except (ValueError, TypeError) as exc:
        raise InvoiceCliError(f"{args.file}: settings: {exc}") from exc
    config.put(settings, secrets)
    audit.record(actor(), "invoicing.put", args.merchant_id, before={"document": before} if before else None,
                 after={"document": settings.document(), "secrets_updated": secrets is not None})
    return {"merchant_id": args.merchant_id, "provider": settings.provider, "red_letter": settings.red_letter,
            "secrets_updated": secrets is not None}


def invoicing_show(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.invoices import config

    return config.get(args.merchant_id).document()


def invoice_create(args: argparse.Namespace) -> dict[str, Any]:
    """FILE: the body of POST /v1/invoices. Sent again with the same body, it answers the same invoice."""
    from pydantic import ValidationError

    from chalicelib.invoices import service
    from chalicelib.invoices.inputs import CreateInvoiceInput
    from chalicelib.storage import idempotency

    body = _read(args.file)
    try:
        parsed = CreateInvoiceInput.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvoiceCliError(f"{args.file}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    # The fingerprint the API would give the same body: a CLI retry and an API request are the same request.
    origin = idempotency.RequestOrigin("cli", idempotency.request_hash("POST", "/v1/invoices", [{}, body]))
    return service.create_invoice(_merchant(args.merchant_id), parsed, origin)


def _owner(invoice_id: str) -> Any:
    from chalicelib.invoices import records
    from chalicelib.storage import state_repo

    item = state_repo.get_item(records.invoice_key(invoice_id))
    if item is None:
        raise InvoiceCliError(f"no invoice {invoice_id}")
    return _merchant(item["merchant_id"])


def invoice_get(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.invoices import service

    return service.get_invoice(_owner(args.invoice_id), args.invoice_id)


def invoice_pdf(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.invoices import config, records
    from chalicelib.storage import state_repo
    from chalicelib.storage.aws import client

    _owner(args.invoice_id)
    item = state_repo.get_item(records.invoice_key(args.invoice_id)) or {}
    key = item.get("pdf_key")
    if args.reversal:
        red = state_repo.get_item(records.red_key(args.invoice_id, args.reversal)) or {}
        key = red.get("pdf_key")
    if not key:
        raise InvoiceCliError("no PDF yet: the invoice (or reversal) is not issued")
    body = client("s3").get_object(Bucket=config.bucket(), Key=key)["Body"].read()
    Path(args.out).write_bytes(body)
    return {"invoice_id": args.invoice_id, "written": args.out, "bytes": len(body)}


def invoice_reverse(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.invoices import service
    from chalicelib.invoices.inputs import ReverseInvoiceInput

    body = ReverseInvoiceInput(amount=args.amount, reason=args.reason)
    return service.request_reversal(_owner(args.invoice_id), args.invoice_id, body)


def register(groups: Any) -> None:
    invoicing = groups.add_parser("invoicing", help="a merchant's invoice provider set-up").add_subparsers(
        dest="command", required=True)
    put = invoicing.add_parser("put", help="set a merchant's invoicing from a JSON file (settings, secrets)")
    put.add_argument("merchant_id")
    put.add_argument("file")
    put.set_defaults(run=invoicing_put)
    show = invoicing.add_parser("show", help="a merchant's invoicing settings (no secrets)")
    show.add_argument("merchant_id")
    show.set_defaults(run=invoicing_show)

    invoice = groups.add_parser("invoice", help="e-invoices").add_subparsers(dest="command", required=True)
    create = invoice.add_parser("create", help="request an invoice for a merchant's paid payments (JSON file)")
    create.add_argument("merchant_id")
    create.add_argument("file")
    create.set_defaults(run=invoice_create)
    get = invoice.add_parser("get", help="an invoice, with a fresh 15-minute link to its PDF")
    get.add_argument("invoice_id")
    get.set_defaults(run=invoice_get)
    pdf = invoice.add_parser("pdf", help="write an issued invoice's PDF (or a reversal's red invoice) to a file")
    pdf.add_argument("invoice_id")
    pdf.add_argument("--reversal", help="the reversal id (RD...) whose red invoice to write")
    pdf.add_argument("--out", required=True)
    pdf.set_defaults(run=invoice_pdf)
    reverse = invoice.add_parser("reverse", help="reverse an issued invoice by a red invoice (the merchant's request)")
    reverse.add_argument("invoice_id")
    reverse.add_argument("--amount", type=int, help="fen; default: what refunds made due")
    reverse.add_argument("--reason", default="refund",
                         choices=("refund", "sales_return", "billing_error", "service_stopped", "discount"))
    reverse.set_defaults(run=invoice_reverse)
