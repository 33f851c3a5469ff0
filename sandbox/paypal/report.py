"""Transaction Search (``GET /v1/reporting/transactions``) rendered from the ledger, with statement faults.

A payment row is event code T0006 (PayPal Checkout APIs) with a positive amount and a negative fee; a refund
row is T1107 (refund initiated by the merchant) with a negative amount. ``transaction_status`` S = completed.
Statement faults are keyed by Beijing day and by the hub's id (``custom_field``) and change only the rendering.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from . import money
from .state import LedgerEntry, paypal_id

BEIJING = timezone(timedelta(hours=8))
KINDS = frozenset({"drop_row", "extra_row", "amount", "currency", "status", "fee", "duplicate_row", "corrupt"})
_STATUS_LETTERS = {"succeeded": "S", "success": "S", "pending": "P", "denied": "D", "failed": "D", "reversed": "V"}


@dataclass(frozen=True, slots=True)
class Row:
    occurred_at: datetime
    event_code: str
    currency: str
    amount_minor: int  # signed: refunds negative
    fee_minor: int  # what PayPal charged (positive); rendered negative
    status: str
    transaction_id: str
    reference_id: str
    reference_type: str
    invoice_id: str
    custom_id: str
    corrupt: bool = False


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def row_of(entry: LedgerEntry) -> Row:
    refund = entry.kind == "refund"
    return Row(entry.occurred_at, "T1107" if refund else "T0006", entry.currency,
               -entry.amount_minor if refund else entry.amount_minor, entry.fee_minor, "S", entry.transaction_id,
               entry.paypal_reference_id, entry.paypal_reference_id_type, entry.invoice_id, entry.custom_id)


def render(row: Row, account_id: str) -> dict[str, Any]:
    value = money.format_value(row.currency, row.amount_minor, negative=row.amount_minor < 0)
    info: dict[str, Any] = {
        "paypal_account_id": account_id, "transaction_id": row.transaction_id,
        "paypal_reference_id": row.reference_id, "paypal_reference_id_type": row.reference_type,
        "transaction_event_code": row.event_code, "transaction_initiation_date": _stamp(row.occurred_at),
        "transaction_updated_date": _stamp(row.occurred_at),
        "transaction_amount": {"currency_code": row.currency, "value": "1O.OO" if row.corrupt else value},
        "transaction_status": row.status, "invoice_id": row.invoice_id, "custom_field": row.custom_id,
        "protection_eligibility": "01",
    }
    if row.fee_minor:
        info["fee_amount"] = {"currency_code": row.currency,
                              "value": money.format_value(row.currency, -row.fee_minor, negative=row.fee_minor > 0)}
    return {"transaction_info": info}


class StatementFaults:
    def __init__(self) -> None:
        self._faults: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, fault: dict[str, Any]) -> dict[str, Any]:
        kind, day = fault.get("kind"), fault.get("day")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}")
        if not isinstance(day, str):
            raise ValueError("day (YYYY-MM-DD) is required")
        date.fromisoformat(day)
        needs = {"drop_row": ("out_trade_no",), "extra_row": ("out_trade_no", "amount"), "amount": ("out_trade_no", "delta"),
                 "currency": ("out_trade_no", "currency"), "status": ("out_trade_no", "status"),
                 "fee": ("out_trade_no", "fee"), "duplicate_row": ("out_trade_no",), "corrupt": ()}[kind]
        missing = [name for name in needs if name not in fault]
        if missing:
            raise ValueError(f"{kind} needs {', '.join(missing)}")
        for name in ("amount", "delta", "fee"):
            if name in fault and (not isinstance(fault[name], int) or isinstance(fault[name], bool)):
                raise ValueError(f"{name} must be an integer of minor units")
        if "currency" in fault and fault["currency"] not in money.CURRENCIES:
            raise ValueError("currency is not one PayPal takes")
        with self._lock:
            self._faults.append(dict(fault))
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def for_day(self, day: date) -> list[dict[str, Any]]:
        with self._lock:
            return [f for f in self._faults if f["day"] == day.isoformat()]


def _apply(rows: list[Row], faults: list[dict[str, Any]], day: date) -> list[Row]:
    out: list[Row] = []
    for row in rows:
        mine = [f for f in faults if f.get("out_trade_no") == row.custom_id and f["kind"] != "extra_row"]
        if any(f["kind"] == "drop_row" for f in mine):
            continue
        for fault in mine:
            sign = -1 if row.amount_minor < 0 else 1
            if fault["kind"] == "amount":
                row = replace(row, amount_minor=row.amount_minor + sign * fault["delta"])
            elif fault["kind"] == "currency":
                row = replace(row, currency=fault["currency"])
            elif fault["kind"] == "status":
                status = str(fault["status"])
                row = replace(row, status=_STATUS_LETTERS.get(status.lower(), status))
            elif fault["kind"] == "fee":
                row = replace(row, fee_minor=fault["fee"])
        out.append(row)
        if any(f["kind"] == "duplicate_row" for f in mine):
            out.append(row)
    noon = datetime.combine(day, time(12, 0), BEIJING)
    for fault in faults:
        if fault["kind"] == "extra_row":
            currency = str(fault.get("currency", "USD"))
            out.append(Row(noon, "T0006", currency, fault["amount"], 0, "S", paypal_id(17), paypal_id(17), "ODR",
                           fault["out_trade_no"], fault["out_trade_no"]))
        elif fault["kind"] == "corrupt":
            out.append(Row(noon, "T0006", "USD", 100, 0, "S", paypal_id(17), "", "ODR", "", "", corrupt=True))
    return out


def search(entries: list[LedgerEntry], faults: StatementFaults, start: datetime, end: datetime,
           account_id: str) -> list[dict[str, Any]]:
    """The rendered transactions between ``start`` and ``end`` (inclusive), faults applied per Beijing day."""
    rows = [row_of(e) for e in entries if start <= e.occurred_at <= end]
    days: dict[date, list[Row]] = {}
    first_day, last_day = start.astimezone(BEIJING).date(), end.astimezone(BEIJING).date()
    day = first_day
    while day <= last_day:
        days[day] = []
        day += timedelta(days=1)
    for row in rows:
        days.setdefault(row.occurred_at.astimezone(BEIJING).date(), []).append(row)
    out: list[Row] = []
    for day, day_rows in sorted(days.items()):
        out += [r for r in _apply(day_rows, faults.for_day(day), day) if start <= r.occurred_at <= end]
    out.sort(key=lambda r: r.occurred_at)
    return [render(row, account_id) for row in out]


def random_account_number() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(10))
