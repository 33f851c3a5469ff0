"""Red-letter reversal (红冲) of issued 数电 invoices: a refund of invoiced money, or the merchant's request.

The rule that decides how much: what is invoiced of a payment (net of reversals) may never exceed what was paid
less what was refunded. When a refund succeeds, the excess is reversed from that payment's invoices, newest
first: at once (merchant setting ``red_letter: auto``) or, with ``on_request``, recorded as due on the invoice
and announced (``invoice.reversal_required``) until the merchant asks (``POST /v1/invoices/{id}/reversals``).

A reversal is recorded (its Nuonuo ``billId``, amounts per line, the payments' invoiced amounts reduced) before
the red-letter confirmation form (红字确认单) is sent; a lost answer is followed by a query by ``billId``. Once the
form needs no confirmation (01) or both sides confirmed it (04), the bureau issues the red invoice, whose number
and PDF the worker then keeps.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.states import RefundState
from chalicelib.invoices import amounts, config, files, records
from chalicelib.invoices.issuing import client_for
from chalicelib.invoices.nuonuo import DUPLICATE, ISSUED, ProviderRefused, ProviderUnknown
from chalicelib.invoices.service import new_serial
from chalicelib.storage import outbox, state_repo
from chalicelib.storage.transaction import Transaction

log = logging.getLogger(__name__)
TOPIC = "invoices"
RED_REASONS = {"refund": "1", "sales_return": "1", "billing_error": "2", "service_stopped": "3", "discount": "4"}
FORM_DONE = ("01", "04")  # 无需确认, 购销双方已确认: the bureau issues the red invoice
FORM_WAITING = ("02", "03")  # waiting for the buyer (or the seller)
CHECK_DELAYS_S = (2, 4, 8, 15, 30, 60, 120, 300)


class StillIssuing(RuntimeError):
    """A refund reached an invoice whose issuing is not settled: the message comes back later."""


def _allocations(payment_id: str) -> list[dict[str, Any]]:
    found, _ = state_repo.query("pk = :pk AND begins_with(sk, :inv)", {":pk": f"INVPAY#{payment_id}", ":inv": "INV#"})
    return sorted(found, key=lambda a: a["created_at"], reverse=True)  # newest first


def on_refund(refund_id: str) -> str:
    refund = state_repo.get_refund(refund_id)
    if refund is None or refund.status is not RefundState.SUCCEEDED:
        return "refund_not_settled"
    payment = state_repo.get_payment(refund.payment_id)
    summary = state_repo.get_item(records.invoiced_key(refund.payment_id))
    if payment is None or summary is None:
        return "not_invoiced"
    excess = int(summary["net"]) - (payment.amount_captured - payment.amount_refunded)
    if excess <= 0:
        return "within_paid"
    settings = config.get(refund.merchant_id)
    done = []
    for allocation in _allocations(refund.payment_id):
        if excess <= 0:
            break
        take = min(excess, int(allocation["net"]))
        if take <= 0:
            continue
        invoice = state_repo.get_item(records.invoice_key(allocation["invoice_id"]))
        assert invoice is not None
        if invoice["status"] in ("pending", "issuing"):
            raise StillIssuing(f"invoice {invoice['invoice_id']} is still {invoice['status']}")
        if invoice["status"] != "issued":
            continue
        if settings.red_letter == "auto":
            summary = state_repo.get_item(records.invoiced_key(refund.payment_id)) or summary
            start(invoice, take, reason="refund", refund_id=refund_id,
                  takes={refund.payment_id: (take, int(summary["version"]))})
        else:
            _mark_due(invoice, take, refund_id)
        done.append(invoice["invoice_id"])
        excess -= take
    return f"reversing {done}" if settings.red_letter == "auto" else f"due {done}"


def _mark_due(invoice: dict[str, Any], due: int, refund_id: str) -> None:
    """Record what is due (the whole excess so far, so a repeated message changes nothing) and tell the merchant."""
    now = iso(utcnow())
    tx = Transaction()
    changes = {"amount_reversal_due": due, "updated_at": now}
    state_repo.guard_version(tx, "invoice", records.invoice_key(invoice["invoice_id"]), status="issued",
                             version=int(invoice["version"]), changes=changes)
    data = {**records.public({**invoice, **changes}, [], None), "refund_id": refund_id}
    events = [outbox.add_event(tx, merchant_id=invoice["merchant_id"], object_id=f"{invoice['invoice_id']}/{refund_id}",
                               event_type="invoice.reversal_required", data=data, now=now)]
    tx.commit()
    outbox.publish_after_commit(events)


def takes_for(invoice: dict[str, Any], amount: int) -> dict[str, tuple[int, int]]:
    """A reversal the merchant asked for comes off the invoice's payments, the last one first."""
    takes: dict[str, tuple[int, int]] = {}
    left = amount
    for payment_id in reversed(list((invoice.get("allocations") or {}).keys())):
        allocation = state_repo.get_item(records.allocation_key(payment_id, invoice["invoice_id"])) or {}
        take = min(left, int(allocation.get("net", 0)))
        if take > 0:
            summary = state_repo.get_item(records.invoiced_key(payment_id)) or {}
            takes[payment_id] = (take, int(summary.get("version", 0)))
            left -= take
    return takes


def start(invoice: dict[str, Any], amount: int, *, reason: str, refund_id: str | None,
          takes: dict[str, tuple[int, int]] | None = None) -> str:
    """Record a reversal of ``amount`` fen, split over the invoice's lines, and hand it to the worker."""
    takes = takes if takes is not None else takes_for(invoice, amount)
    lines = invoice["lines"]
    remaining = [int(line["amount"]) - int(line["amount_reversed"]) for line in lines]
    shares = amounts.split(amount, remaining)
    red_lines, new_lines = [], []
    for index, (line, share) in enumerate(zip(lines, shares, strict=True)):
        if share:
            tax = amounts.reversal_tax(int(line["amount"]), Decimal(line["tax_rate"]), int(line["amount_reversed"]), share)
            red_lines.append({"index": index, "description": line["description"], "tax_code": line["tax_code"],
                              "tax_rate": line["tax_rate"], "amount": share, "tax": tax})
            line = {**line, "amount_reversed": int(line["amount_reversed"]) + share,
                    "tax_reversed": int(line["tax_reversed"]) + tax}
        new_lines.append(line)
    bill_id = new_serial("RD")
    now = iso(utcnow())
    table = state_repo.state_table()
    tx = Transaction()
    due = max(0, int(invoice.get("amount_reversal_due", 0)) - amount)
    state_repo.guard_version(tx, "invoice", records.invoice_key(invoice["invoice_id"]), status="issued",
                             version=int(invoice["version"]),
                             changes={"lines": new_lines, "amount_reversing": int(invoice["amount_reversing"]) + amount,
                                      "amount_reversal_due": due, "updated_at": now})
    tx.put_new("red", table, {**records.red_key(invoice["invoice_id"], bill_id), "bill_id": bill_id,
                              "invoice_id": invoice["invoice_id"], "merchant_id": invoice["merchant_id"],
                              "amount": amount, "tax": sum(r["tax"] for r in red_lines), "lines": red_lines,
                              "status": "requested", "version": 1, "submit_attempts": 0, "reason": reason,
                              "refund_id": refund_id, "payments": {p: t for p, (t, _) in takes.items()},
                              "created_at": now, "updated_at": now})
    tx.put_new("serial", table, {**records.serial_key(bill_id), "invoice_id": invoice["invoice_id"], "kind": "red"})
    for payment_id, (take, version) in takes.items():
        tx.update(f"invoiced:{payment_id}", table, records.invoiced_key(payment_id), {"version": version + 1,
                  "updated_at": now}, add_values={"net": -take}, condition="#version = :v",
                  condition_values={":v": version})
        tx.update(f"allocation:{payment_id}", table, records.allocation_key(payment_id, invoice["invoice_id"]),
                  {"updated_at": now}, add_values={"net": -take}, condition=None, condition_values={})
    events = [outbox.add_command(tx, topic=TOPIC, object_id=bill_id, command="invoice.red", now=now,
                                 body={"command": "invoice.red", "invoice_id": invoice["invoice_id"], "bill_id": bill_id})]
    tx.commit()
    outbox.publish_after_commit(events)
    log.info("reversal %s of %s fen recorded on invoice %s", bill_id, amount, invoice["invoice_id"])
    return bill_id


def _form(invoice: dict[str, Any], red: dict[str, Any], settings: config.InvoicingSettings) -> dict[str, Any]:
    buyer = invoice["buyer"]
    return {
        "billId": red["bill_id"], "blueInvoiceLine": "bs" if invoice["kind"] == "special" else "pc",
        "applySource": "0", "blueElecInvoiceNumber": invoice["invoice_no"], "sellerTaxNo": settings.seller_tax_no,
        "sellerName": settings.seller_name, "buyerTaxNo": buyer.get("tax_no", ""), "buyerName": buyer["name"],
        "redReason": RED_REASONS.get(red["reason"], "1"),
        "detail": [{"goodsName": line["description"], "goodsCode": line["tax_code"], "taxRate": line["tax_rate"],
                    "taxIncludedAmount": amounts.yuan(-int(line["amount"])), "tax": amounts.yuan(-int(line["tax"])),
                    "taxExcludedAmount": amounts.yuan(-(int(line["amount"]) - int(line["tax"])))}
                   for line in red["lines"]],
    }


def red(invoice_id: str, bill_id: str, n: int = 1) -> str:
    red_item = state_repo.get_item(records.red_key(invoice_id, bill_id))
    invoice = state_repo.get_item(records.invoice_key(invoice_id))
    if red_item is None or invoice is None:
        raise LookupError(f"no reversal {bill_id} of {invoice_id}")
    if red_item["status"] in ("issued", "failed"):
        return f"already_{red_item['status']}"
    client, settings = client_for(invoice["merchant_id"])
    form = client.query_red_form(bill_id) if int(red_item["submit_attempts"]) > 0 else None
    if form is None and red_item["status"] == "requested":
        red_item = _bump(red_item, {"submit_attempts": int(red_item["submit_attempts"]) + 1})
        try:
            answer = client.save_red_form(_form(invoice, red_item, settings))
        except ProviderRefused as refused:
            return _failed(invoice, red_item, refused.describe)
        if answer.code not in ("E0000", DUPLICATE):
            raise ProviderUnknown(f"red form answered {answer.code}")
        form = client.query_red_form(bill_id)
    if form is None:
        raise ProviderUnknown("the red form is not visible at the provider yet")
    status = str(form.get("billStatus") or "")
    if status in FORM_DONE and form.get("redInvoiceNumber") and form.get("invoiceSerialNum"):
        found = client.query_serial(str(form["invoiceSerialNum"]))
        if found is not None and str(found.get("status")) == ISSUED:
            return _red_issued(invoice, red_item, form, found, client)
    if status in FORM_WAITING and red_item["status"] == "requested":
        red_item = _bump(red_item, {"status": "confirming", "bill_no": form.get("billNo")})
    delay = CHECK_DELAYS_S[min(n, len(CHECK_DELAYS_S)) - 1]
    outbox.send(TOPIC, {"command": "invoice.red", "invoice_id": invoice_id, "bill_id": bill_id, "n": n + 1},
                delay_s=delay)
    return "confirming" if status in FORM_WAITING else "requested"


def _bump(red_item: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    tx = Transaction()
    changes = {**changes, "updated_at": iso(utcnow())}
    state_repo.guard_version(tx, "red", records.red_key(red_item["invoice_id"], red_item["bill_id"]),
                             status=red_item["status"], version=int(red_item["version"]), changes=changes)
    tx.commit()
    return {**red_item, **changes, "version": int(red_item["version"]) + 1}


def _red_issued(invoice: dict[str, Any], red_item: dict[str, Any], form: dict[str, Any], found: dict[str, Any],
                client: Any) -> str:
    number = str(form["redInvoiceNumber"])
    key = files.key_for(invoice["merchant_id"], invoice["invoice_id"], f"red-{number}")
    files.put(key, client.download(str(found.get("pdfUrl") or "")))
    now = iso(utcnow())
    amount = int(red_item["amount"])
    tx = Transaction()
    changes = {"status": "issued", "red_invoice_no": number, "bill_no": form.get("billNo"), "pdf_key": key,
               "updated_at": now}
    state_repo.guard_version(tx, "red", records.red_key(invoice["invoice_id"], red_item["bill_id"]),
                             status=red_item["status"], version=int(red_item["version"]), changes=changes)
    tx.update("invoice", state_repo.state_table(), records.invoice_key(invoice["invoice_id"]), {"updated_at": now},
              add_values={"amount_reversed": amount, "amount_reversing": -amount, "version": 1},
              condition=None, condition_values={})
    after = {**invoice, "amount_reversed": int(invoice["amount_reversed"]) + amount,
             "amount_reversing": int(invoice["amount_reversing"]) - amount}
    data = {**records.public(after, [], None), "reversal": records.public_reversal({**red_item, **changes})}
    events = [outbox.add_event(tx, merchant_id=invoice["merchant_id"], object_id=red_item["bill_id"],
                               event_type="invoice.reversed", data=data, now=now)]
    tx.commit()
    outbox.publish_after_commit(events)
    log.info("reversal %s of invoice %s issued as red invoice %s", red_item["bill_id"], invoice["invoice_id"], number)
    return "issued"


def _failed(invoice: dict[str, Any], red_item: dict[str, Any], reason: str) -> str:
    """The provider refused the form: the reversal is void and the amounts go back where they were."""
    now = iso(utcnow())
    table = state_repo.state_table()
    amount = int(red_item["amount"])
    tx = Transaction()
    state_repo.guard_version(tx, "red", records.red_key(invoice["invoice_id"], red_item["bill_id"]),
                             status=red_item["status"], version=int(red_item["version"]),
                             changes={"status": "failed", "failure_reason": reason[:200], "updated_at": now})
    current = state_repo.get_item(records.invoice_key(invoice["invoice_id"])) or invoice
    lines = [dict(line) for line in current["lines"]]
    for red_line in red_item["lines"]:
        target = lines[int(red_line["index"])]
        target["amount_reversed"] = int(target["amount_reversed"]) - int(red_line["amount"])
        target["tax_reversed"] = int(target["tax_reversed"]) - int(red_line["tax"])
    state_repo.guard_version(tx, "invoice", records.invoice_key(invoice["invoice_id"]), status="issued",
                             version=int(current["version"]),
                             changes={"lines": lines, "amount_reversing": int(current["amount_reversing"]) - amount,
                                      "updated_at": now})
    for payment_id, take in (red_item.get("payments") or {}).items():
        tx.update(f"invoiced:{payment_id}", table, records.invoiced_key(payment_id), {"updated_at": now},
                  add_values={"net": int(take), "version": 1}, condition=None, condition_values={})
        tx.update(f"allocation:{payment_id}", table, records.allocation_key(payment_id, invoice["invoice_id"]),
                  {"updated_at": now}, add_values={"net": int(take)}, condition=None, condition_values={})
    data = {**records.public(current, [], None), "reversal": records.public_reversal(
        {**red_item, "status": "failed", "failure_reason": reason[:200]})}
    events = [outbox.add_event(tx, merchant_id=invoice["merchant_id"], object_id=red_item["bill_id"],
                               event_type="invoice.reversal_failed", data=data, now=now)]
    tx.commit()
    outbox.publish_after_commit(events)
    log.warning("reversal %s of invoice %s refused: %s", red_item["bill_id"], invoice["invoice_id"], reason)
    return "failed"
