"""Statement discrepancies: how the sandbox's trade bill for one day may differ from its own books.

Armed with ``POST /_sandbox/statement-faults`` and kept until ``DELETE`` (a statement downloaded twice is the
same file, so a reconciliation run can be repeated against it). Each fault names the bill day and, optionally,
the merchant; row faults target a payment row by ``out_trade_no`` or a refund row by ``out_refund_no``.

  drop_row       the row is left out
  extra_row      a SUCCESS row for an order the books never had (``out_trade_no``, ``amount`` fen, optional
                 ``occurred_at``; with ``out_refund_no`` a refund row instead)
  amount         the row's amount + ``delta`` fen
  currency       the row's 货币种类 -> ``currency``
  status         the row's 交易状态 (payments) or 退款状态 (refunds) -> ``status``
  fee            the row's 手续费 -> ``fee`` fen
  duplicate_row  the row appears twice
  corrupt        the file is malformed (a detail line with the wrong number of cells)

The summary row is always computed from the rows as rendered, so apart from ``corrupt`` every faulty bill is
internally consistent: the difference is between the channel and the hub, not inside the file.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from .state import BEIJING

KINDS = frozenset({"drop_row", "extra_row", "amount", "currency", "status", "fee", "duplicate_row", "corrupt"})
ROW_KINDS = frozenset({"drop_row", "amount", "currency", "status", "fee", "duplicate_row"})
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_STATUS = re.compile(r"^[A-Z_]{1,32}$")


class StatementFaultError(ValueError):
    """A fault request that does not make sense (400 at the control API)."""


@dataclass(frozen=True, slots=True)
class StatementFault:
    day: date
    kind: str
    mchid: str | None = None
    out_trade_no: str | None = None
    out_refund_no: str | None = None
    amount_fen: int | None = None  # extra_row
    occurred_at: datetime | None = None  # extra_row
    delta_fen: int | None = None  # amount
    currency: str | None = None  # currency
    status: str | None = None  # status
    fee_fen: int | None = None  # fee

    def applies_to(self, mchid: str, day: date) -> bool:
        return self.day == day and (self.mchid is None or self.mchid == mchid)

    def targets(self, out_trade_no: str, out_refund_no: str | None) -> bool:
        """Does this row fault hit the row of ``out_trade_no`` (payment) or ``out_refund_no`` (refund)?"""
        if self.out_refund_no is not None:
            return out_refund_no == self.out_refund_no
        return out_refund_no is None and out_trade_no == self.out_trade_no

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["day"] = self.day.isoformat()
        if self.occurred_at is not None:
            values["occurred_at"] = self.occurred_at.isoformat()
        return {key: value for key, value in values.items() if value is not None}


def _int(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise StatementFaultError(f"{name} must be an integer number of fen")
    return value


def _optional_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise StatementFaultError(f"{name} must be a non-empty string")
    return value


def _moment(text: Any, day: date) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (Beijing, as in the bill) or ISO 8601 with an offset; default noon of the day."""
    if text is None:
        return datetime(day.year, day.month, day.day, 12, tzinfo=BEIJING)
    if not isinstance(text, str):
        raise StatementFaultError("occurred_at must be a string")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise StatementFaultError("occurred_at must be 'YYYY-MM-DD HH:MM:SS' or ISO 8601") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BEIJING)


def parse_fault(body: Mapping[str, Any]) -> StatementFault:
    kind = body.get("kind")
    if kind not in KINDS:
        raise StatementFaultError(f"kind must be one of {sorted(KINDS)}")
    try:
        day = date.fromisoformat(str(body.get("day", "")))
    except ValueError as exc:
        raise StatementFaultError("day must be YYYY-MM-DD") from exc
    out_trade_no, out_refund_no = _optional_str(body, "out_trade_no"), _optional_str(body, "out_refund_no")
    fault: dict[str, Any] = {"day": day, "kind": kind, "mchid": _optional_str(body, "mchid"),
                             "out_trade_no": out_trade_no, "out_refund_no": out_refund_no}
    if kind in ROW_KINDS and out_trade_no is None and out_refund_no is None:
        raise StatementFaultError(f"{kind} needs out_trade_no (payment row) or out_refund_no (refund row)")
    if kind == "extra_row":
        if out_trade_no is None:
            raise StatementFaultError("extra_row needs out_trade_no (and out_refund_no for a refund row)")
        fault["amount_fen"] = _int(body, "amount")
        if fault["amount_fen"] <= 0:
            raise StatementFaultError("amount must be greater than 0")
        fault["occurred_at"] = _moment(body.get("occurred_at"), day)
    elif kind == "amount":
        fault["delta_fen"] = _int(body, "delta")
    elif kind == "currency":
        currency = body.get("currency")
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            raise StatementFaultError("currency must be an ISO 4217 code such as USD")
        fault["currency"] = currency
    elif kind == "status":
        status = body.get("status")
        if not isinstance(status, str) or not _STATUS.match(status):
            raise StatementFaultError("status must be a WeChat status word such as REVOKED or PROCESSING")
        fault["status"] = status
    elif kind == "fee":
        fault["fee_fen"] = _int(body, "fee")
    return StatementFault(**fault)


class StatementFaultBook:
    def __init__(self) -> None:
        self._faults: list[StatementFault] = []
        self._lock = threading.Lock()

    def arm(self, fault: StatementFault) -> None:
        with self._lock:
            self._faults.append(fault)

    def for_bill(self, mchid: str, day: date) -> list[StatementFault]:
        with self._lock:
            return [fault for fault in self._faults if fault.applies_to(mchid, day)]

    def armed(self) -> list[StatementFault]:
        with self._lock:
            return list(self._faults)

    def clear(self, *, mchid: str | None = None, day: date | None = None) -> int:
        with self._lock:
            kept = [f for f in self._faults
                    if (mchid is not None and f.mchid != mchid) or (day is not None and f.day != day)]
            removed = len(self._faults) - len(kept)
            self._faults = kept
            return removed
