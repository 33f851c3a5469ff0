"""JSON shapes the gateway returns for orders and refunds, in answers and in notifications.

The payer's wallet id is sealed (SM4-GCM, the merchant's data key, associated data merchant|order|field).
"""

from __future__ import annotations

from typing import Any

from .crypto import seal_field
from .protocol import beijing, yuan
from .state import Merchant, OfflinePayment, Order, Refund


def sealed(merchant: Merchant, out_order_no: str, name: str, plaintext: str) -> dict[str, str]:
    return seal_field(merchant.data_key_id, merchant.data_key, plaintext, merchant_id=merchant.merchant_id,
                      out_order_no=out_order_no, name=name)


def order_json(merchant: Merchant, order: Order) -> dict[str, Any]:
    request = order.request
    body: dict[str, Any] = {
        "out_order_no": request.out_order_no, "order_no": order.order_no, "status": order.status,
        "amount": yuan(request.amount_fen), "currency": "CNY", "subject": request.subject,
        "create_time": beijing(order.created_at), "offline": order.offline,
        "refunded_amount": yuan(order.refunded_fen),
    }
    if request.expire_at is not None:
        body["expire_time"] = beijing(request.expire_at)
    if order.txn_id is not None and order.pay_time is not None and order.booked_at is not None:
        body.update({"txn_id": order.txn_id, "pay_time": beijing(order.pay_time),
                     "settle_time": beijing(order.booked_at)})
    if order.payer_wallet is not None:
        body["payer_wallet"] = sealed(merchant, request.out_order_no, "payer_wallet", order.payer_wallet)
    if order.offline and order.device_id:
        body["device_id"] = order.device_id
    return body


def refund_json(refund: Refund) -> dict[str, Any]:
    request = refund.request
    body: dict[str, Any] = {
        "out_refund_no": request.out_refund_no, "refund_no": refund.refund_no, "out_order_no": request.out_order_no,
        "status": refund.status, "refund_amount": yuan(request.amount_fen), "currency": "CNY",
        "create_time": beijing(refund.created_at),
    }
    if refund.success_time is not None:
        body["success_time"] = beijing(refund.success_time)
    return body


def batch_item_json(merchant: Merchant, payment: OfflinePayment, order: Order) -> dict[str, Any]:
    assert order.txn_id is not None and order.booked_at is not None
    return {
        "item_id": payment.item_id, "out_order_no": payment.out_order_no, "order_no": order.order_no,
        "txn_id": order.txn_id, "status": "SUCCESS", "amount": yuan(payment.amount_fen), "currency": "CNY",
        "pay_time": beijing(payment.offline_time), "settle_time": beijing(order.booked_at), "offline": True,
        "device_id": payment.device_id,
        "payer_wallet": sealed(merchant, payment.out_order_no, "payer_wallet", payment.payer_wallet),
    }
