"""Alipay states mapped exhaustively to the hub's outcomes, and yuan strings converted at this edge only.

``TRADE_CLOSED`` has two meanings at Alipay (docs/channels/alipay.md#trade-status): an unpaid trade that was closed, or a paid
trade that was later refunded in full. Only the first is CLOSED for the hub; the second is a trade whose payer
did pay, so it stays SUCCEEDED (the refund is a separate fact). Anything unknown is PENDING: query again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from chalicelib.channels.base import PaymentOutcome, PaymentStatus, RefundOutcome, RefundStatus
from chalicelib.domain.money import Money

BEIJING = timezone(timedelta(hours=8))
ALIPAY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$")  # strptime is slow on the notify path
_YUAN = re.compile(r"^-?(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?$")

TRADE_STATUSES: Mapping[str, PaymentOutcome] = {
    "WAIT_BUYER_PAY": PaymentOutcome.PENDING,
    "TRADE_SUCCESS": PaymentOutcome.SUCCEEDED,
    "TRADE_FINISHED": PaymentOutcome.SUCCEEDED,  # paid and no longer refundable
    "TRADE_CLOSED": PaymentOutcome.CLOSED,  # unless the trade shows it was paid: see trade_outcome
}
REFUND_SUCCESS = "REFUND_SUCCESS"


def trade_outcome(trade_status: str, *, was_paid: bool = False) -> PaymentOutcome:
    """``was_paid``: the trade carries a payment time or refund figures, so TRADE_CLOSED means fully refunded."""
    outcome = TRADE_STATUSES.get(trade_status, PaymentOutcome.PENDING)
    if outcome is PaymentOutcome.CLOSED and was_paid:
        return PaymentOutcome.SUCCEEDED
    return outcome


def refund_outcome(refund_status: str) -> RefundOutcome:
    """alipay.trade.fastpay.refund.query: data with ``REFUND_SUCCESS`` (or, per Alipay's docs, no status at all)
    is a refund that went through; any other word is not final yet."""
    return RefundOutcome.SUCCEEDED if refund_status in ("", REFUND_SUCCESS) else RefundOutcome.PROCESSING


def money_to_yuan(amount: Money) -> str:
    """Alipay takes CNY in yuan with exactly two decimals ("88.88")."""
    if amount.currency != "CNY":
        raise ValueError("Alipay direct payments are CNY only")
    return amount.to_decimal_string()


def yuan_to_money(text: Any, *, allow_negative: bool = False) -> Money:
    """A yuan string from Alipay as integer fen; refuses anything that is not a plain decimal with <= 2 places."""
    if not isinstance(text, str) or not _YUAN.match(text.strip()):
        raise ValueError(f"{text!r} is not a yuan amount")
    money = Money.from_decimal_string(text.strip(), "CNY")
    if money.minor < 0 and not allow_negative:
        raise ValueError(f"{text!r} is negative")
    return money


def beijing_time(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time; a naive datetime is taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(BEIJING).strftime(ALIPAY_TIME_FORMAT)


def parse_beijing_time(value: Any) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` (Beijing) as an aware datetime; None when absent or malformed."""
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=BEIJING)
    except ValueError:
        return None


def _positive_yuan(value: Any) -> bool:
    try:
        return yuan_to_money(value).minor > 0
    except ValueError:
        return False


def trade_was_paid(fields: Mapping[str, Any]) -> bool:
    """Evidence that the payer paid: a payment time (notify ``gmt_payment``, query ``send_pay_date``), a refund
    time, or refunded money. An unpaid trade closed on timeout carries none of these."""
    return bool(fields.get("gmt_payment") or fields.get("send_pay_date") or fields.get("gmt_refund")) or _positive_yuan(
        fields.get("refund_fee"))


def payment_status(fields: Mapping[str, Any]) -> PaymentStatus:
    """A trade (alipay.trade.query answer or a verified notify) as a ``PaymentStatus``; raises ValueError on a bad
    amount."""
    raw_status = str(fields.get("trade_status") or "")
    total = fields.get("total_amount")
    trade_no = fields.get("trade_no")
    return PaymentStatus(
        outcome=trade_outcome(raw_status, was_paid=trade_was_paid(fields)),
        raw_status=raw_status,
        channel_transaction_id=trade_no if isinstance(trade_no, str) and trade_no else None,
        amount=yuan_to_money(total) if total not in (None, "") else None,
        paid_at=parse_beijing_time(fields.get("gmt_payment") or fields.get("send_pay_date")),
    )


def refund_query_status(fields: Mapping[str, Any]) -> RefundStatus:
    """alipay.trade.fastpay.refund.query answer: no refund data means Alipay has no such refund request."""
    raw_status = str(fields.get("refund_status") or "")
    if not fields.get("out_request_no") or fields.get("refund_amount") in (None, ""):
        return RefundStatus(outcome=RefundOutcome.NOT_FOUND, raw_status=raw_status or "NO_REFUND_DATA")
    trade_no = fields.get("trade_no")
    return RefundStatus(
        outcome=refund_outcome(raw_status),
        raw_status=raw_status or REFUND_SUCCESS,
        channel_refund_id=trade_no if isinstance(trade_no, str) and trade_no else None,
        amount=yuan_to_money(fields.get("refund_amount")),
    )
