"""JSON renderings of orders, captures and refunds, shaped like PayPal's Orders v2 and Payments v2 answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import money
from .state import Capture, Merchant, Order, Refund


def stamp(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def capture_json(base_url: str, capture: Capture, merchant: Merchant) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": capture.capture_id, "status": capture.status,
        "amount": money.amount(capture.currency, capture.amount_minor),
        "final_capture": True, "seller_protection": {"status": "ELIGIBLE"},
        "invoice_id": capture.invoice_id, "custom_id": capture.custom_id,
        "payee": {"email_address": merchant.email, "merchant_id": merchant.merchant_id},
        "supplementary_data": {"related_ids": {"order_id": capture.order_id}},
        "create_time": stamp(capture.created_at), "update_time": stamp(capture.updated_at),
        "links": [
            {"href": f"{base_url}/v2/payments/captures/{capture.capture_id}", "rel": "self", "method": "GET"},
            {"href": f"{base_url}/v2/payments/captures/{capture.capture_id}/refund", "rel": "refund", "method": "POST"},
            {"href": f"{base_url}/v2/checkout/orders/{capture.order_id}", "rel": "up", "method": "GET"},
        ],
    }
    if capture.status_reason:
        body["status_details"] = {"reason": capture.status_reason}
    if capture.status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
        body["seller_receivable_breakdown"] = {
            "gross_amount": money.amount(capture.currency, capture.amount_minor),
            "paypal_fee": money.amount(capture.currency, capture.fee_minor),
            "net_amount": money.amount(capture.currency, capture.amount_minor - capture.fee_minor),
        }
    return body


def refund_json(base_url: str, refund: Refund, merchant: Merchant) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": refund.refund_id, "status": refund.status, "amount": money.amount(refund.currency, refund.amount_minor),
        "seller_payable_breakdown": {
            "gross_amount": money.amount(refund.currency, refund.amount_minor),
            "paypal_fee": money.amount(refund.currency, 0),
            "net_amount": money.amount(refund.currency, refund.amount_minor),
        },
        "payer": {"email_address": merchant.email, "merchant_id": merchant.merchant_id},
        "create_time": stamp(refund.created_at), "update_time": stamp(refund.updated_at),
        "links": [
            {"href": f"{base_url}/v2/payments/refunds/{refund.refund_id}", "rel": "self", "method": "GET"},
            {"href": f"{base_url}/v2/payments/captures/{refund.capture_id}", "rel": "up", "method": "GET"},
        ],
    }
    for key, value in (("invoice_id", refund.invoice_id), ("custom_id", refund.custom_id),
                       ("note_to_payer", refund.note)):
        if value:
            body[key] = value
    return body


def order_json(base_url: str, order: Order, merchant: Merchant, captures: list[Capture],
               refunds: list[Refund]) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "reference_id": order.reference_id, "amount": money.amount(order.currency, order.amount_minor),
        "payee": {"email_address": merchant.email, "merchant_id": merchant.merchant_id},
        "description": order.description, "custom_id": order.custom_id, "invoice_id": order.invoice_id,
    }
    if captures or refunds:
        unit["payments"] = {
            "captures": [capture_json(base_url, c, merchant) for c in captures],
            "refunds": [refund_json(base_url, r, merchant) for r in refunds],
        }
    links = [{"href": f"{base_url}/v2/checkout/orders/{order.order_id}", "rel": "self", "method": "GET"}]
    if order.status == "CREATED":
        links.append({"href": f"{base_url}/checkoutnow?token={order.order_id}", "rel": "approve", "method": "GET"})
    if order.status in ("CREATED", "APPROVED"):
        links.append({"href": f"{base_url}/v2/checkout/orders/{order.order_id}/capture", "rel": "capture",
                      "method": "POST"})
    body: dict[str, Any] = {
        "id": order.order_id, "intent": "CAPTURE", "status": order.status, "purchase_units": [unit],
        "create_time": stamp(order.created_at), "update_time": stamp(order.updated_at or order.created_at),
        "links": links,
    }
    if order.payer:
        body["payer"] = order.payer
    return body
