"""Invoices as the merchant API sees them: request one for paid orders, read it, ask for a reversal.

Requesting records everything before any provider call (docs/invoices.md#at-most-once): one transaction
writes the invoice with its provider serial number (the Nuonuo ``orderNo`` every send and query will use), the
merchant's invoice number claim, the serial's lookup, the invoiced amount of each payment (conditional on the
version read, so two requests can never both take the same money) and the command for the invoice worker.
"""

from __future__ import annotations

import base64
import secrets
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.errors import Conflict, InvalidState, NotFound, Unprocessable
from chalicelib.domain.ids import new_id
from chalicelib.domain.models import Merchant
from chalicelib.domain.states import PaymentState
from chalicelib.invoices import amounts, config, files, records
from chalicelib.storage import outbox, state_repo
from chalicelib.storage.transaction import Transaction, TransactionConflict

if TYPE_CHECKING:  # the API's request models: the invoice worker, which reverses through new_serial, parses no bodies
    from chalicelib.invoices.inputs import CreateInvoiceInput, ReverseInvoiceInput
    from chalicelib.storage.idempotency import RequestOrigin

TOPIC = "invoices"


class InvoiceExceedsPaid(Unprocessable):
    code = "invoice_exceeds_paid"


class DuplicateMerchantInvoiceNo(Conflict):
    code = "duplicate_merchant_invoice_no"


def new_serial(prefix: str) -> str:
    """20 characters, as Nuonuo's orderNo allows: a prefix and random base32."""
    return prefix + base64.b32encode(secrets.token_bytes(15)).decode()[: 20 - len(prefix)]


def available(payment_id: str) -> tuple[int, int]:
    """What of a payment may still be invoiced (paid, less refunded or being refunded, less invoiced), and the
    version of its invoiced record (0: none yet)."""
    payment = state_repo.get_payment(payment_id)
    assert payment is not None
    invoiced = state_repo.get_item(records.invoiced_key(payment_id)) or {}
    paid = payment.amount_captured - payment.amount_refunded - payment.amount_refund_pending
    return paid - int(invoiced.get("net", 0)), int(invoiced.get("version", 0))


def create_invoice(merchant: Merchant, body: CreateInvoiceInput, origin: RequestOrigin | None) -> dict[str, Any]:
    body.check()
    settings = config.get(merchant.merchant_id)
    claim = state_repo.get_item(records.number_key(merchant.merchant_id, body.merchant_invoice_no))
    if claim is not None:
        return _same_request(merchant, claim, origin)
    for n, payment_id in enumerate(body.payment_ids):
        payment = state_repo.get_payment(payment_id)
        if payment is None or payment.merchant_id != merchant.merchant_id:
            raise NotFound(f"payment_ids[{n}]: no payment {payment_id}", param=f"payment_ids.{n}")
        if payment.status is not PaymentState.SUCCEEDED:
            raise InvalidState(f"payment_ids[{n}]: payment {payment_id} is {payment.status}, not paid",
                               param=f"payment_ids.{n}")
        if payment.currency != "CNY":
            raise Unprocessable(f"payment_ids[{n}]: a fapiao is in CNY; {payment_id} is {payment.currency}",
                                param=f"payment_ids.{n}")
    lines = [amounts.line(item.amount, Decimal(item.tax_rate)) for item in body.lines]
    total = amounts.totals(lines)
    room = {payment_id: available(payment_id) for payment_id in body.payment_ids}
    if total.amount > sum(free for free, _ in room.values()):
        raise InvoiceExceedsPaid(
            f"lines add up to {total.amount} fen, more than the payments' {sum(f for f, _ in room.values())} fen "
            "paid and not refunded or already invoiced", param="lines")
    # The invoice takes from the payments in the order given.
    allocations: dict[str, int] = {}
    left = total.amount
    for payment_id, (free, _) in room.items():
        take = min(left, max(free, 0))
        if take:
            allocations[payment_id] = take
            left -= take
    invoice_id, serial = new_id("inv"), new_serial("PH")
    now = iso(utcnow())
    item = {
        **records.invoice_key(invoice_id), "invoice_id": invoice_id, "merchant_id": merchant.merchant_id,
        "merchant_invoice_no": body.merchant_invoice_no, "kind": body.kind, "payment_ids": body.payment_ids,
        "allocations": allocations, "buyer": body.buyer.model_dump(exclude_none=True), "remark": body.remark,
        "lines": [{"description": given.description, "tax_code": given.tax_code, "tax_rate": given.tax_rate,
                   "unit": given.unit, "amount": made.amount, "tax": made.tax, "amount_without_tax": made.without_tax,
                   "amount_reversed": 0, "tax_reversed": 0}
                  for given, made in zip(body.lines, lines, strict=True)],
        "amount": total.amount, "tax": total.tax, "status": "pending", "version": 1, "serial_no": serial,
        "submit_attempts": 0, "amount_reversed": 0, "amount_reversing": 0, "amount_reversal_due": 0,
        "red_letter": settings.red_letter, "created_at": now, "updated_at": now,
        "request_key": origin.idempotency_key if origin else None, "request_hash": origin.fingerprint if origin else None,
    }
    tx = Transaction()
    table = state_repo.state_table()
    tx.put_new("invoice", table, item)
    tx.put_new("number", table, {**records.number_key(merchant.merchant_id, body.merchant_invoice_no),
                                 "invoice_id": invoice_id, "request_hash": item["request_hash"]})
    tx.put_new("serial", table, {**records.serial_key(serial), "invoice_id": invoice_id, "kind": "blue"})
    for payment_id, take in allocations.items():
        _, version = room[payment_id]
        tx.update(f"invoiced:{payment_id}", table, records.invoiced_key(payment_id),
                  {"version": version + 1, "updated_at": now}, add_values={"net": take},
                  condition="attribute_not_exists(pk) OR #version = :v", condition_values={":v": version})
        tx.put_new(f"allocation:{payment_id}", table, {**records.allocation_key(payment_id, invoice_id),
                                                       "invoice_id": invoice_id, "net": take, "created_at": now})
    events = [outbox.add_command(tx, topic=TOPIC, object_id=invoice_id, command="invoice.issue", now=now,
                                 body={"command": "invoice.issue", "invoice_id": invoice_id})]
    try:
        tx.commit()
    except TransactionConflict as conflict:
        if "number" in conflict.failed_labels:
            found = state_repo.get_item(records.number_key(merchant.merchant_id, body.merchant_invoice_no))
            if found is not None:
                return _same_request(merchant, found, origin)
        raise Conflict("another invoice took part of these payments at the same time; send the request again",
                       param="payment_ids") from conflict
    outbox.publish_after_commit(events)
    return view(item)


def _same_request(merchant: Merchant, claim: dict[str, Any], origin: RequestOrigin | None) -> dict[str, Any]:
    """The same merchant invoice number again: the same request gets its invoice, another one a 409."""
    if origin is not None and claim.get("request_hash") == origin.fingerprint:
        return get_invoice(merchant, claim["invoice_id"])
    raise DuplicateMerchantInvoiceNo("merchant_invoice_no already names another invoice", param="merchant_invoice_no")


def load(merchant: Merchant, invoice_id: str) -> dict[str, Any]:
    item = state_repo.get_item(records.invoice_key(invoice_id))
    if item is None or item.get("merchant_id") != merchant.merchant_id:
        raise NotFound(f"no invoice {invoice_id}", param="invoice_id")
    return item


def reversals_of(invoice_id: str) -> list[dict[str, Any]]:
    found, _ = state_repo.query("pk = :pk AND begins_with(sk, :red)", {":pk": f"INV#{invoice_id}", ":red": "RED#"})
    return sorted(found, key=lambda red: red["created_at"])


def view(item: dict[str, Any]) -> dict[str, Any]:
    link = files.link(item["pdf_key"]) if item.get("pdf_key") else None
    return records.public(item, reversals_of(item["invoice_id"]), link)


def get_invoice(merchant: Merchant, invoice_id: str) -> dict[str, Any]:
    return view(load(merchant, invoice_id))


def request_reversal(merchant: Merchant, invoice_id: str, body: ReverseInvoiceInput) -> dict[str, Any]:
    """The merchant asks for a red invoice (on_request mode, or to correct an invoice)."""
    from chalicelib.invoices import reversal

    item = load(merchant, invoice_id)
    if item["status"] != "issued":
        raise InvalidState(f"invoice {invoice_id} is {item['status']}: only an issued invoice can be reversed")
    open_amount = int(item["amount"]) - int(item["amount_reversed"]) - int(item["amount_reversing"])
    amount = body.amount if body.amount is not None else int(item.get("amount_reversal_due", 0))
    if amount <= 0:
        raise InvalidState("nothing is due for reversal on this invoice; name an amount", param="amount")
    if amount > open_amount:
        raise Unprocessable(f"amount: at most {open_amount} fen of this invoice is left to reverse", param="amount")
    reversal.start(item, amount, reason=body.reason, refund_id=None)
    return get_invoice(merchant, invoice_id)
