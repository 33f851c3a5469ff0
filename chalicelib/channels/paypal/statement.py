"""The day's statement from PayPal's Transaction Search API (``GET /v1/reporting/transactions``), with fees.

Why this source: it is PayPal's HTTP reporting API (OAuth, reachable through the shared ``Transport``); the STL
settlement file is only published over SFTP. PayPal pages the answer (at most 500 transactions a page) and says
how many items the range holds (``total_items``) and how fresh its data is (``last_refreshed_datetime``; rows
take up to three hours to appear), so a day is only fetched once PayPal's data covers the whole day.

``fetch_statement`` streams the pages as JSON lines, one page in memory at a time: the first line is the report's
own metadata (``{"paypal_transaction_search": {account_number, start_date, end_date, last_refreshed_datetime,
total_items}}``), then one line per ``transaction_details`` item exactly as PayPal sent it (re-serialised
compactly). ``parse_statement`` reads those lines by field name and checks the row count against
``total_items``. PayPal's search gives no day totals, so no ``StatementSummary`` is produced.

Rows: event codes T00xx (payments received; Orders v2 captures are T0006) are payments, T11xx (refunds T1107,
reversals T1106...) are refunds; others (withdrawals, holds, conversions) are not payments and are skipped.
``transaction_status`` S is money that moved (``succeeded``); P, D, V become ``pending``, ``denied``, ``reversed``.
Amounts are signed major-unit strings (refunds and fees negative); rows carry them positive, the fee as
what PayPal charged (negative when it gave a fee back).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary
from chalicelib.channels.paypal.amounts import from_wire
from chalicelib.channels.paypal.client import PayPalClient
from chalicelib.channels.paypal.credentials import PayPalCredentials
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

BEIJING = timezone(timedelta(hours=8))
PAGE_SIZE = 500
MAX_PAGES = 10_000
META_KEY = "paypal_transaction_search"
_STATUS_WORDS = {"S": "succeeded", "P": "pending", "D": "denied", "V": "reversed"}


def day_range(day: str) -> tuple[datetime, datetime]:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise InvalidRequest("statement day must be YYYY-MM-DD", param="day")
    try:
        start = datetime.combine(date.fromisoformat(day), datetime.min.time(), BEIJING)
    except ValueError as exc:
        raise InvalidRequest("statement day must be YYYY-MM-DD", param="day") from exc
    return start, start + timedelta(days=1) - timedelta(seconds=1)


def _wire_time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _page_path(start: datetime, end: datetime, page: int) -> str:
    query = urlencode({"start_date": _wire_time(start), "end_date": _wire_time(end), "fields": "transaction_info",
                       "page_size": PAGE_SIZE, "page": page})
    return f"/v1/reporting/transactions?{query}"


def _parse_time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{what} is missing")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{what} has no offset")
    return moment


def fetch_transactions(client: PayPalClient, credentials: PayPalCredentials, day: str) -> Iterator[bytes]:
    """Checks the day at once; the pages are fetched as the stream is read."""
    start, end = day_range(day)
    return _pages(client, credentials, day, start, end)


def _pages(client: PayPalClient, credentials: PayPalCredentials, day: str, start: datetime,
           end: datetime) -> Iterator[bytes]:
    first = client.call_json(credentials, "GET", _page_path(start, end, 1))
    try:
        refreshed = _parse_time(first.get("last_refreshed_datetime"), "last_refreshed_datetime")
    except ValueError as exc:
        raise ChannelError(f"PayPal transaction search answer: {exc}") from exc
    if refreshed < end:
        raise ChannelError(f"PayPal transaction data for {day} is not complete yet (refreshed {refreshed.isoformat()})",
                           retryable=True)
    total_pages, total_items = first.get("total_pages"), first.get("total_items")
    if not isinstance(total_pages, int) or not isinstance(total_items, int) or not 0 <= total_pages <= MAX_PAGES:
        raise ChannelError("PayPal transaction search answer lacks total_pages or total_items")
    meta = {key: first.get(key) for key in ("account_number", "start_date", "end_date", "last_refreshed_datetime")}
    yield _line({META_KEY: {**meta, "total_items": total_items}})
    page, answer = 1, first
    while True:
        details = answer.get("transaction_details")
        if not isinstance(details, list):
            raise ChannelError(f"PayPal transaction search page {page} lacks transaction_details")
        yield b"".join(_line(item) for item in details)
        page += 1
        if page > total_pages:
            return
        answer = client.call_json(credentials, "GET", _page_path(start, end, page))


def _line(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    pending, number = b"", 0
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            number += 1
            yield number, raw
    if pending.strip():
        yield number + 1, pending


def _row(info: Mapping[str, Any], line: int) -> StatementRow | None:
    code = info.get("transaction_event_code")
    if not isinstance(code, str) or len(code) != 5 or not code.startswith("T"):
        raise ValueError("transaction_event_code is missing or malformed")
    if code.startswith("T00"):
        kind = StatementKind.PAYMENT
    elif code.startswith("T11"):
        kind = StatementKind.REFUND
    else:
        return None
    transaction_id = info.get("transaction_id")
    if not isinstance(transaction_id, str) or not transaction_id:
        raise ValueError("transaction_id is missing")
    signed = from_wire(info.get("transaction_amount"), signed=True)
    fee_block = info.get("fee_amount")
    fee = None
    if fee_block is not None:
        charged = from_wire(fee_block, signed=True)
        fee = Money(-charged.minor, charged.currency)
    status = info.get("transaction_status")
    if not isinstance(status, str) or not status:
        raise ValueError("transaction_status is missing")
    object_id = info.get("custom_field") or info.get("invoice_id") or ""
    return StatementRow(
        kind=kind, object_id=str(object_id), channel_ref=transaction_id,
        amount=Money(abs(signed.minor), signed.currency), status=_STATUS_WORDS.get(status, status.lower()),
        occurred_at=_parse_time(info.get("transaction_initiation_date"), "transaction_initiation_date"),
        fee=fee, line=line,
    )


def parse_transactions(chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
    expected: int | None = None
    seen = 0
    for number, raw in _lines(chunks):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            if expected is None:
                meta = record.get(META_KEY)
                if not isinstance(meta, dict) or not isinstance(meta.get("total_items"), int):
                    raise ValueError("the first line is not the transaction search metadata")
                expected = int(meta["total_items"])
                continue
            info = record.get("transaction_info")
            if not isinstance(info, dict):
                raise ValueError("transaction_info is missing")
            seen += 1
            row = _row(info, number)
        except (UnicodeDecodeError, ValueError, TypeError) as exc:
            raise ChannelError(f"PayPal statement line {number}: {exc}") from None
        if row is not None:
            yield row
    if expected is None:
        raise ChannelError("PayPal statement line 1: the statement is empty")
    if seen != expected:
        raise ChannelError(f"PayPal statement has {seen} transactions, PayPal reported total_items {expected}")
