"""The invoice worker's side of issuing: send the recorded request to the provider at most once, learn the
outcome (answer, callback or query), keep the PDF, tell the merchant.

A try is counted on the invoice *before* it is sent. A try whose answer was lost (timeout, 5xx, unreadable) is
followed by a query under the same serial number, never by a new invoice: if the provider has the order, its
record decides; if it has none, the same request goes out again under the same ``orderNo``, which the provider
refuses to issue twice (E9106).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from chalicelib.config.settings import settings as hub_settings
from chalicelib.domain.clock import iso, utcnow
from chalicelib.invoices import amounts, config, files, records
from chalicelib.invoices.nuonuo import DUPLICATE, FAILED, ISSUED, NuonuoClient, ProviderRefused, ProviderUnknown
from chalicelib.observability import alert
from chalicelib.storage import outbox, state_repo
from chalicelib.storage.transaction import Transaction

log = logging.getLogger(__name__)
TOPIC = "invoices"
BEIJING = timezone(timedelta(hours=8))
CHECK_DELAYS_S = (2, 4, 8, 15, 30, 60, 120, 300)  # then every 5 minutes while the provider says 开票中


def client_for(merchant_id: str) -> tuple[NuonuoClient, config.InvoicingSettings]:
    settings = config.get(merchant_id)
    return NuonuoClient(settings, config.secrets_of(merchant_id)), settings


def callback_url(merchant_id: str) -> str:
    return f"{hub_settings().public_base_url}/invoice-callbacks/nuonuo/{merchant_id}"


def order_of(item: dict[str, Any], settings: config.InvoicingSettings) -> dict[str, Any]:
    """The recorded invoice as Nuonuo's requestBillingNew ``order``: price-inclusive lines with both amounts."""
    buyer = item["buyer"]
    return {
        "orderNo": item["serial_no"], "invoiceDate": f"{datetime.now(BEIJING):%Y-%m-%d %H:%M:%S}",
        "invoiceType": "1", "invoiceLine": "bs" if item["kind"] == "special" else "pc",
        "salerTaxNum": settings.seller_tax_no, "salerName": settings.seller_name, "salerTel": settings.seller_phone,
        "salerAddress": settings.seller_address, "salerAccount": settings.seller_bank_account,
        "buyerName": buyer["name"], "buyerTaxNum": buyer.get("tax_no", ""), "buyerTel": buyer.get("phone", ""),
        "buyerAddress": buyer.get("address", ""), "buyerAccount": buyer.get("bank_account", ""),
        "email": buyer.get("email", ""), "naturalPersonFlag": "1" if buyer["type"] == "person" else "0",
        "pushMode": "-1", "clerk": settings.drawer, "remark": item.get("remark") or "",
        "callBackUrl": callback_url(item["merchant_id"]),
        "invoiceDetail": [{
            "goodsName": line["description"], "goodsCode": line["tax_code"], "withTaxFlag": "1", "num": "1",
            "price": amounts.yuan(int(line["amount"])), "unit": line.get("unit") or "", "taxRate": line["tax_rate"],
            "taxIncludedAmount": amounts.yuan(int(line["amount"])), "tax": amounts.yuan(int(line["tax"])),
            "taxExcludedAmount": amounts.yuan(int(line["amount_without_tax"])), "invoiceLineProperty": "0",
        } for line in item["lines"]],
    }


def issue(invoice_id: str) -> str:
    item = state_repo.get_item(records.invoice_key(invoice_id))
    if item is None:
        raise LookupError(f"no invoice {invoice_id}")
    if item["status"] in ("issued", "failed"):
        return f"already_{item['status']}"
    client, settings = client_for(item["merchant_id"])
    if item["status"] == "issuing" or int(item["submit_attempts"]) > 0:
        found = client.query_order(item["serial_no"])  # an earlier send may have arrived: its record decides
        if found is not None:
            return apply(item, found, client)
        if item["status"] == "issuing":
            return schedule_check(invoice_id, 1)
    item = _count_try(item)
    try:
        answer = client.request_billing(order_of(item, settings))
    except ProviderRefused as refused:
        return fail(item, refused.describe)
    if answer.code == DUPLICATE:
        found = client.query_order(item["serial_no"])
        if found is None:
            raise ProviderUnknown("the provider holds the order number but does not show it yet")
        return apply(item, found, client)
    _mark_issuing(item)
    return schedule_check(invoice_id, 1)


def check(invoice_id: str, n: int = 1) -> str:
    """A query by our serial (after a callback, or on schedule while the provider is still issuing)."""
    item = state_repo.get_item(records.invoice_key(invoice_id))
    if item is None:
        raise LookupError(f"no invoice {invoice_id}")
    if item["status"] in ("issued", "failed"):
        return f"already_{item['status']}"
    if item["status"] == "pending" and int(item["submit_attempts"]) == 0:
        return issue(invoice_id)
    client, _ = client_for(item["merchant_id"])
    found = client.query_order(item["serial_no"])
    if found is None:
        return issue(invoice_id)  # never received: the same order again, under the same number
    return apply(item, found, client, n=n)


def schedule_check(invoice_id: str, n: int) -> str:
    delay = CHECK_DELAYS_S[min(n, len(CHECK_DELAYS_S)) - 1]
    outbox.send(TOPIC, {"command": "invoice.check", "invoice_id": invoice_id, "n": n}, delay_s=delay)
    return "issuing"


def _count_try(item: dict[str, Any]) -> dict[str, Any]:
    now = iso(utcnow())
    tx = Transaction()
    changes = {"submit_attempts": int(item["submit_attempts"]) + 1, "updated_at": now}
    state_repo.guard_version(tx, "invoice", records.invoice_key(item["invoice_id"]), status=item["status"],
                             version=int(item["version"]), changes=changes)
    tx.commit()  # a conflict raises: another copy of the message is sending it, and this one is retried later
    return {**item, **changes, "version": int(item["version"]) + 1}


def _mark_issuing(item: dict[str, Any]) -> None:
    tx = Transaction()
    state_repo.guard_version(tx, "invoice", records.invoice_key(item["invoice_id"]), status=item["status"],
                             version=int(item["version"]), changes={"status": "issuing", "updated_at": iso(utcnow())})
    tx.commit()


def apply(item: dict[str, Any], found: dict[str, Any], client: NuonuoClient, *, n: int = 1) -> str:
    status = str(found.get("status") or "")
    if status == ISSUED:
        return _issued(item, found, client)
    if status == FAILED:
        return fail(item, str(found.get("failCause") or found.get("statusMsg") or "the provider failed to issue"))
    if item["status"] == "pending":
        _mark_issuing(item)
    return schedule_check(item["invoice_id"], n + 1)


def _event_data(item: dict[str, Any]) -> dict[str, Any]:
    return records.public(item, [], None)


def _issued(item: dict[str, Any], found: dict[str, Any], client: NuonuoClient) -> str:
    number = str(found.get("allElectronicInvoiceNumber") or found.get("invoiceNo") or "")
    if not number or amounts.fen(str(found.get("orderAmount", "0"))) != int(item["amount"]):
        # An issued invoice that is not ours (another amount) must never be recorded as ours: a person looks.
        log.error("ALERT provider reports order %s issued as %s for %s, we asked %s fen", item["serial_no"], number,
                  found.get("orderAmount"), item["amount"],
                  extra=alert("amount_mismatch", source="invoice_provider", object_id=item["invoice_id"],
                              reported=str(found.get("orderAmount")), held_minor=int(item["amount"])))
        raise ProviderUnknown("the provider's issued invoice does not match the request")
    key = files.key_for(item["merchant_id"], item["invoice_id"], number)
    files.put(key, client.download(str(found.get("pdfUrl") or "")))
    now = iso(utcnow())
    issued_ms = found.get("invoiceTime")
    changes = {"status": "issued", "invoice_no": number, "check_code": found.get("checkCode") or None,
               "provider_serial": found.get("serialNo"), "pdf_key": key, "updated_at": now,
               "issued_at": iso(datetime.fromtimestamp(int(issued_ms) / 1000, UTC)) if issued_ms else now}
    tx = Transaction()
    state_repo.guard_version(tx, "invoice", records.invoice_key(item["invoice_id"]), status=item["status"],
                             version=int(item["version"]), changes=changes)
    after = {**item, **changes}
    events = [outbox.add_event(tx, merchant_id=item["merchant_id"], object_id=item["invoice_id"],
                               event_type="invoice.issued", data=_event_data(after), now=now)]
    tx.commit()
    outbox.publish_after_commit(events)
    log.info("invoice %s issued as %s", item["invoice_id"], number)
    return "issued"


def fail(item: dict[str, Any], reason: str) -> str:
    """Nothing was issued: the invoice fails and the payments' invoiced amounts are given back."""
    now = iso(utcnow())
    tx = Transaction()
    table = state_repo.state_table()
    changes = {"status": "failed", "failure_reason": reason[:200], "updated_at": now}
    state_repo.guard_version(tx, "invoice", records.invoice_key(item["invoice_id"]), status=item["status"],
                             version=int(item["version"]), changes=changes)
    for payment_id, take in (item.get("allocations") or {}).items():
        tx.update(f"invoiced:{payment_id}", table, records.invoiced_key(payment_id), {"updated_at": now},
                  add_values={"net": -int(take), "version": 1}, condition=None, condition_values={})
        tx.update(f"allocation:{payment_id}", table, records.allocation_key(payment_id, item["invoice_id"]),
                  {"net": 0, "updated_at": now}, condition=None, condition_values={})
    events = [outbox.add_event(tx, merchant_id=item["merchant_id"], object_id=item["invoice_id"],
                               event_type="invoice.failed", data=_event_data({**item, **changes}), now=now)]
    tx.commit()
    outbox.publish_after_commit(events)
    log.warning("invoice %s failed at the provider: %s", item["invoice_id"], reason)
    return "failed"
