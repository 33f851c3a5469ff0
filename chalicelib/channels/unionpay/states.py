"""ACP response codes mapped exhaustively to the hub's outcomes, and wire amounts/times.

Codes are two digits (docs/channels/unionpay.md#response-codes). ``00`` success; ``03``/``04``/``05`` unknown (timeout, status
unknown, accepted and processing): the hub must query before deciding. A well-formed code outside those
is a definite answer. Anything unreadable (empty, not two digits) is treated as unknown: pending, query
again; it never reads as money having moved.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta, timezone

from chalicelib.channels.base import PaymentOutcome, RefundOutcome
from chalicelib.domain.money import Money

BEIJING = timezone(timedelta(hours=8))
CNY_NUMERIC = "156"
CURRENCY_BY_NUMERIC = {
    "156": "CNY", "344": "HKD", "446": "MOP", "901": "TWD", "840": "USD", "978": "EUR", "826": "GBP",
    "392": "JPY", "410": "KRW", "702": "SGD", "036": "AUD", "124": "CAD", "756": "CHF", "764": "THB", "458": "MYR",
}
SUCCESS = "00"
UNKNOWN_CODES = frozenset({"03", "04", "05"})
DUPLICATE = "12"
NOT_FOUND = "34"
CONSUME_TXN_TYPE = "01"
REFUND_TXN_TYPE = "04"
_CODE = re.compile(r"^[0-9A-Z]{2}$")
_FEN = re.compile(r"^(0|[1-9][0-9]{0,11})$")
_FEN_DIGITS_MAX = 12


class Answer(enum.StrEnum):
    """What a synchronous ``respCode`` says about the request just sent."""

    ACCEPTED = "accepted"  # 00: done (front/app/SMS) or accepted, result by notify/query (back consume, refund)
    UNKNOWN = "unknown"  # 03/04/05 or unreadable: it may or may not have happened; query
    DUPLICATE = "duplicate"  # 12: this orderId/txnTime was already sent
    NOT_FOUND = "not_found"  # 34
    FORMAT = "format"  # 10-29 except 12: our message was refused before any business check
    REFUSED = "refused"  # 01-09 (not 03-05), 30-59, 60-99: a definite business or card refusal


def classify(code: str) -> Answer:
    if code == SUCCESS:
        return Answer.ACCEPTED
    if code in UNKNOWN_CODES or not _CODE.match(code) or not code.isdigit():
        return Answer.UNKNOWN
    if code == DUPLICATE:
        return Answer.DUPLICATE
    if code == NOT_FOUND:
        return Answer.NOT_FOUND
    if 10 <= int(code) <= 29:
        return Answer.FORMAT
    return Answer.REFUSED


def payment_outcome(orig_resp_code: str) -> PaymentOutcome:
    """``origRespCode`` of a consume (or a consume notify's ``respCode``)."""
    answer = classify(orig_resp_code)
    if answer is Answer.ACCEPTED:
        return PaymentOutcome.SUCCEEDED
    if answer is Answer.UNKNOWN:
        return PaymentOutcome.PENDING
    return PaymentOutcome.FAILED


def refund_outcome(orig_resp_code: str) -> RefundOutcome:
    answer = classify(orig_resp_code)
    if answer is Answer.ACCEPTED:
        return RefundOutcome.SUCCEEDED
    if answer is Answer.UNKNOWN:
        return RefundOutcome.PROCESSING
    return RefundOutcome.FAILED


def money_to_fen(amount: Money) -> str:
    """``txnAmt``: integer fen with no decimal point or padding (``8888`` = ¥88.88)."""
    if amount.currency != "CNY":
        raise ValueError("UnionPay ACP domestic merchants take CNY only")
    if amount.minor <= 0 or len(str(amount.minor)) > _FEN_DIGITS_MAX:
        raise ValueError("UnionPay amounts are 1 to 12 digits of fen")
    return str(amount.minor)


def fen_to_money(text: str, currency_numeric: str = CNY_NUMERIC) -> Money:
    """Refuse anything but plain digits (no sign, no decimals, no padding) rather than guess."""
    if not _FEN.match(text):
        raise ValueError("txnAmt must be digits of fen")
    currency = CURRENCY_BY_NUMERIC.get(currency_numeric or CNY_NUMERIC)
    if currency is None:
        raise ValueError(f"unknown currencyCode {currency_numeric!r}")
    return Money(int(text), currency)


def txn_time(moment: datetime) -> str:
    """``txnTime``: yyyyMMddHHmmss, Beijing time."""
    return moment.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def parse_txn_time(text: str) -> datetime:
    if len(text) != 14 or not text.isdigit():
        raise ValueError("txnTime must be yyyyMMddHHmmss")
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)


def month_day_time(text: str, near: datetime) -> datetime:
    """``traceTime`` (MMDDhhmmss, Beijing) has no year: take the year that puts it closest to ``near``."""
    if len(text) != 10 or not text.isdigit():
        raise ValueError("traceTime must be MMDDhhmmss")
    anchor = near.astimezone(BEIJING)
    candidates = []
    for year in (anchor.year - 1, anchor.year, anchor.year + 1):
        try:
            candidates.append(datetime.strptime(f"{year}{text}", "%Y%m%d%H%M%S").replace(tzinfo=BEIJING))
        except ValueError:
            continue  # 0229 outside a leap year
    if not candidates:
        raise ValueError("traceTime is not a date")
    return min(candidates, key=lambda moment: abs(moment - anchor))
