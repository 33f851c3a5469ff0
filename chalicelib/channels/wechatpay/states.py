"""WeChat Pay states mapped exhaustively to the hub's outcomes, and payloads reduced to status values.

Anything unknown maps to "not final yet" (PENDING / PROCESSING) so the hub queries again: a status we do
not recognise must never be read as money having moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.channels.base import (
    PaymentOutcome,
    PaymentStatus,
    RefundOutcome,
    RefundStatus,
)
from chalicelib.domain.money import Money

TRADE_STATES: Mapping[str, PaymentOutcome] = {
    "SUCCESS": PaymentOutcome.SUCCEEDED,
    "REFUND": PaymentOutcome.SUCCEEDED,  # paid, and a refund has since been started
    "NOTPAY": PaymentOutcome.PENDING,
    "ACCEPT": PaymentOutcome.PENDING,  # in the SDK enum; received, not yet charged
    "USERPAYING": PaymentOutcome.PROCESSING,  # barcode payment waiting for the payer's password
    "CLOSED": PaymentOutcome.CLOSED,
    "REVOKED": PaymentOutcome.CLOSED,  # barcode payment reversed: no money moved
    "PAYERROR": PaymentOutcome.FAILED,
}

REFUND_STATES: Mapping[str, RefundOutcome] = {
    "SUCCESS": RefundOutcome.SUCCEEDED,
    "PROCESSING": RefundOutcome.PROCESSING,
    "CLOSED": RefundOutcome.FAILED,
    # The payer's account refused the funds; the refund can still be re-driven with
    # /apply-abnormal-refund, so it is not final and must not free the refundable amount.
    "ABNORMAL": RefundOutcome.PROCESSING,
}


def payment_outcome(trade_state: str) -> PaymentOutcome:
    return TRADE_STATES.get(trade_state, PaymentOutcome.PENDING)


def refund_outcome(status: str) -> RefundOutcome:
    return REFUND_STATES.get(status, RefundOutcome.PROCESSING)


def fen_to_money(fen: Any, currency: Any = "CNY") -> Money:
    """Wire amounts are integer fen; refuse anything else rather than guess (bool is an int in Python)."""
    if not isinstance(fen, int) or isinstance(fen, bool) or fen < 0:
        raise ValueError("WeChat amount must be a non-negative integer of fen")
    return Money(fen, currency if isinstance(currency, str) and currency else "CNY")


def money_to_fen(amount: Money) -> int:
    if amount.currency != "CNY":
        raise ValueError("WeChat Pay v3 direct payments are CNY only")
    return amount.minor


def _optional_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def payment_status(payload: Mapping[str, Any]) -> PaymentStatus:
    """A transaction (query response or decrypted TRANSACTION.* resource) as a ``PaymentStatus``."""
    raw_status = str(payload.get("trade_state", ""))
    amount_block = payload.get("amount")
    amount = None
    if isinstance(amount_block, Mapping) and "total" in amount_block:
        amount = fen_to_money(amount_block["total"], amount_block.get("currency"))
    return PaymentStatus(
        outcome=payment_outcome(raw_status),
        raw_status=raw_status,
        channel_transaction_id=payload.get("transaction_id") or None,
        amount=amount,
        paid_at=_optional_time(payload.get("success_time")),
    )


def refund_status(payload: Mapping[str, Any]) -> RefundStatus:
    """A refund (API response uses ``status``, the callback ``refund_status``) as a ``RefundStatus``."""
    raw_status = str(payload.get("status") or payload.get("refund_status") or "")
    amount_block = payload.get("amount")
    amount = None
    if isinstance(amount_block, Mapping) and "refund" in amount_block:
        amount = fen_to_money(amount_block["refund"], amount_block.get("currency"))
    return RefundStatus(
        outcome=refund_outcome(raw_status),
        raw_status=raw_status,
        channel_refund_id=payload.get("refund_id") or None,
        amount=amount,
    )
