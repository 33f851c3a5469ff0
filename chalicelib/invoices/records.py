"""Where invoices live in the state table, and what a merchant sees of one.

  INV#<invoice_id> / INVOICE           the invoice: request, amounts, provider serial, state, issued number
  INV#<invoice_id> / RED#<bill_id>     one reversal (红字确认单 and its red invoice)
  INVPAY#<payment_id> / INVOICED       what is invoiced of a payment, net of reversals (guarded by version)
  INVPAY#<payment_id> / INV#<id>       the part of that an invoice holds
  MINV#<merchant>#<merchant_invoice_no> / UNIQUE   the merchant's invoice number, taken once
  INVSER#<serial> / LOOKUP             our provider serial (Nuonuo orderNo / billId) -> invoice, for callbacks
"""

from __future__ import annotations

from typing import Any

STATES = ("pending", "issuing", "issued", "failed")  # reversed = issued with amount_reversed == amount
RED_STATES = ("requested", "confirming", "issued", "failed")


def invoice_key(invoice_id: str) -> dict[str, str]:
    return {"pk": f"INV#{invoice_id}", "sk": "INVOICE"}


def red_key(invoice_id: str, bill_id: str) -> dict[str, str]:
    return {"pk": f"INV#{invoice_id}", "sk": f"RED#{bill_id}"}


def invoiced_key(payment_id: str) -> dict[str, str]:
    return {"pk": f"INVPAY#{payment_id}", "sk": "INVOICED"}


def allocation_key(payment_id: str, invoice_id: str) -> dict[str, str]:
    return {"pk": f"INVPAY#{payment_id}", "sk": f"INV#{invoice_id}"}


def number_key(merchant_id: str, merchant_invoice_no: str) -> dict[str, str]:
    return {"pk": f"MINV#{merchant_id}#{merchant_invoice_no}", "sk": "UNIQUE"}


def serial_key(serial: str) -> dict[str, str]:
    return {"pk": f"INVSER#{serial}", "sk": "LOOKUP"}


def public(item: dict[str, Any], reversals: list[dict[str, Any]], link: dict[str, str] | None) -> dict[str, Any]:
    amount, reversed_ = int(item["amount"]), int(item.get("amount_reversed", 0))
    status = "reversed" if item["status"] == "issued" and amount and reversed_ >= amount else item["status"]
    return {
        "id": item["invoice_id"], "object": "invoice", "merchant_invoice_no": item["merchant_invoice_no"],
        "kind": item["kind"], "status": status, "payment_ids": item["payment_ids"], "buyer": item["buyer"],
        "lines": item["lines"], "amount": amount, "tax": int(item["tax"]), "amount_without_tax": amount - int(item["tax"]),
        "currency": "CNY", "remark": item.get("remark"),
        "amount_reversed": reversed_, "amount_reversing": int(item.get("amount_reversing", 0)),
        "amount_reversal_due": int(item.get("amount_reversal_due", 0)),
        "invoice_no": item.get("invoice_no"), "verification_code": item.get("check_code"),
        "issued_at": item.get("issued_at"), "failure_reason": item.get("failure_reason"),
        "provider": "nuonuo", "provider_order_no": item["serial_no"],
        "pdf": link,
        "reversals": [public_reversal(red) for red in reversals],
        "created_at": item["created_at"], "updated_at": item["updated_at"],
    }


def public_reversal(red: dict[str, Any]) -> dict[str, Any]:
    return {"id": red["bill_id"], "amount": int(red["amount"]), "tax": int(red["tax"]), "status": red["status"],
            "refund_id": red.get("refund_id"), "red_form_no": red.get("bill_no"),
            "red_invoice_no": red.get("red_invoice_no"), "failure_reason": red.get("failure_reason"),
            "created_at": red["created_at"], "updated_at": red["updated_at"]}
