"""Gateway statuses mapped exhaustively to the hub's outcomes, and order/refund objects reduced to statuses.

Anything unknown is "not final yet" (PENDING / PROCESSING), so the hub queries again: a status we do not
recognise is never read as money having moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from chalicelib.channels.base import PaymentOutcome, PaymentStatus, RefundOutcome, RefundStatus
from chalicelib.channels.ecny.amounts import yuan_to_money

BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y%m%d%H%M%S"  # Beijing time, as every field named *_time on the gateway

ORDER_STATUSES: Mapping[str, PaymentOutcome] = {
    "WAITING": PaymentOutcome.PENDING,  # 待支付: pre-order made, nobody paid yet
    "PAYING": PaymentOutcome.PROCESSING,  # 支付中: the payer confirmed in the wallet, clearing under way
    "SUCCESS": PaymentOutcome.SUCCEEDED,
    "PART_REFUNDED": PaymentOutcome.SUCCEEDED,  # paid, then partly refunded
    "REFUNDED": PaymentOutcome.SUCCEEDED,  # paid, then fully refunded
    "FAILED": PaymentOutcome.FAILED,  # the wallet refused (balance, limit, risk)
    "CLOSED": PaymentOutcome.CLOSED,  # closed by the merchant or expired unpaid
}

REFUND_STATUSES: Mapping[str, RefundOutcome] = {
    "PROCESSING": RefundOutcome.PROCESSING,
    "SUCCESS": RefundOutcome.SUCCEEDED,
    "FAILED": RefundOutcome.FAILED,  # e.g. the payer's wallet was cancelled; the money stays with the merchant
}


def payment_outcome(status: str) -> PaymentOutcome:
    return ORDER_STATUSES.get(status, PaymentOutcome.PENDING)


def refund_outcome(status: str) -> RefundOutcome:
    return REFUND_STATUSES.get(status, RefundOutcome.PROCESSING)


def beijing_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        return None


def format_beijing(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(BEIJING).strftime(TIME_FORMAT)


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def payment_status(order: Mapping[str, Any]) -> PaymentStatus:
    """An order object (query answer, PAYMENT notification, or offline batch item) as a ``PaymentStatus``.

    ``offline: true`` means the payer's wallet paid while offline and the bank cleared it later: the money
    has moved and cannot be refused, so the hub credits it even when the order was closed meanwhile.
    Raises ValueError on a malformed amount.
    """
    raw_status = str(order.get("status", ""))
    amount = yuan_to_money(order["amount"], order.get("currency", "CNY")) if "amount" in order else None
    offline = order.get("offline") is True
    outcome = payment_outcome(raw_status)
    return PaymentStatus(
        outcome=outcome,
        raw_status=raw_status,
        channel_transaction_id=_optional_text(order.get("txn_id")),
        amount=amount,
        paid_at=beijing_time(order.get("pay_time")),
        settled_offline=offline and outcome is PaymentOutcome.SUCCEEDED,
    )


def refund_status(refund: Mapping[str, Any]) -> RefundStatus:
    raw_status = str(refund.get("status", ""))
    amount = yuan_to_money(refund["refund_amount"], refund.get("currency", "CNY")) if "refund_amount" in refund else None
    return RefundStatus(
        outcome=refund_outcome(raw_status),
        raw_status=raw_status,
        channel_refund_id=_optional_text(refund.get("refund_no")),
        amount=amount,
    )
