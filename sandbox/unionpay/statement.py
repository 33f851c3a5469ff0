"""Reconciliation files from the sandbox's ledger, in ACP's download format (docs/channels/unionpay.md#file-layout).

``fileContent`` = base64(zlib(ZIP)) holding ``INN<yymmdd>01ZM_<merId>`` and ``INN<yymmdd>01ZME_<merId>``:
fixed-width GBK lines, one space between fields, widths from UnionPay's demo. Which column means what is
the sandbox's model (the file specification was not available): see ``ZM_LAYOUT``/``ZME_LAYOUT`` and
docs/channels/unionpay.md. ZM lists the day's successful consumes and refunds; ZME lists transactions in
error, and is where a ``status`` statement fault moves a row.
"""

from __future__ import annotations

import base64
import io
import threading
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .state import BEIJING, LedgerEntry
from .wire import to_order_id

ZM_LAYOUT: tuple[tuple[str, int], ...] = (
    ("trade_code", 3), ("acquirer_code", 11), ("forwarder_code", 11), ("trace_no", 6), ("trace_time", 10),
    ("masked_card", 19), ("amount", 12), ("mcc", 4), ("terminal_type", 2), ("query_id", 21), ("old_pay_type", 2),
    ("order_id", 32), ("card_type", 2), ("orig_trace_no", 6), ("orig_trace_time", 10), ("fee", 13),
    ("settle_amount", 13), ("pay_type", 4), ("group_merchant_id", 15), ("txn_type", 2), ("txn_sub_type", 2),
    ("biz_type", 6), ("account_type", 2), ("bill_type", 4), ("bill_no", 32), ("interaction", 1),
    ("orig_query_id", 21), ("merchant_id", 15), ("split_mode", 1), ("sub_merchant_id", 15),
    ("sub_merchant_name", 32), ("sub_merchant_amount", 13), ("net_amount", 13), ("terminal_id", 8),
    ("merchant_reserved", 32), ("discount", 13), ("invoice_amount", 13), ("instalment_fee", 12),
    ("instalments", 2), ("medium", 1), ("orig_order_id", 32), ("reserved", 98),
)
ZME_LAYOUT: tuple[tuple[str, int], ...] = (
    ("trade_code", 3), ("acquirer_code", 11), ("forwarder_code", 11), ("trace_no", 6), ("trace_time", 10),
    ("masked_card", 19), ("amount", 12), ("mcc", 4), ("terminal_type", 2), ("txn_type", 2), ("orig_trace_no", 6),
    ("orig_trace_time", 10), ("error_reason", 4), ("error_amount", 12), ("fee", 13), ("settle_amount", 13),
    ("merchant_id", 15), ("sub_merchant_id", 15), ("debit_credit", 1), ("terminal_id", 12), ("txn_sub_type", 2),
    ("reserved", 135),
)
REASON_BY_STATUS = {"failed": "FAIL", "pending": "PEND", "processing": "PROC", "closed": "CLSD", "reversed": "RVSD",
                    "revoked": "RVKD", "refunded": "RFND"}
NUMERIC_BY_CURRENCY = {
    "CNY": "156", "HKD": "344", "MOP": "446", "TWD": "901", "USD": "840", "EUR": "978", "GBP": "826", "JPY": "392",
    "KRW": "410", "SGD": "702", "AUD": "036", "CAD": "124", "CHF": "756", "THB": "764", "MYR": "458",
}
FAULT_KINDS = frozenset({"drop_row", "extra_row", "amount", "currency", "status", "fee", "duplicate_row", "corrupt"})


def fixed(values: dict[str, str], layout: Sequence[tuple[str, int]]) -> bytes:
    cells = []
    for name, width in layout:
        cell = values.get(name, "").encode("gbk")
        if len(cell) > width:
            cell = _cut_gbk(values[name], width)
        cells.append(cell.ljust(width, b" "))
    return b" ".join(cells)


def _cut_gbk(text: str, width: int) -> bytes:
    """The longest prefix of ``text`` that fits ``width`` GBK bytes without splitting a character."""
    out = b""
    for char in text:
        encoded = char.encode("gbk")
        if len(out) + len(encoded) > width:
            break
        out += encoded
    return out


def _signed(sign: str, fen: int) -> str:
    return f"{sign}{abs(fen):012d}"


def _mmdd_time(moment: datetime | None) -> str:
    return moment.astimezone(BEIJING).strftime("%m%d%H%M%S") if moment else ""


def zm_values(entry: LedgerEntry, merchant_name: str) -> dict[str, str]:
    refund = entry.kind == "refund"
    fee = entry.fee_fen
    return {
        "trade_code": "S30" if refund else "S22", "acquirer_code": "48020000", "forwarder_code": "00010000",
        "trace_no": entry.trace_no, "trace_time": _mmdd_time(entry.occurred_at), "masked_card": entry.card_masked,
        "amount": f"{entry.amount_fen:012d}", "mcc": "5999", "terminal_type": "07", "query_id": entry.query_id,
        "order_id": entry.order_id, "card_type": {"debit": "01", "credit": "02"}.get(entry.card_kind, "00"),
        "orig_trace_no": entry.orig_trace_no, "orig_trace_time": _mmdd_time(entry.orig_occurred_at),
        "fee": _signed("D" if fee >= 0 else "C", fee),
        "settle_amount": _signed("D" if refund else "C", entry.amount_fen),
        "txn_type": "04" if refund else "01", "txn_sub_type": "00" if refund else "01", "biz_type": entry.biz_type,
        "account_type": "01", "orig_query_id": entry.orig_query_id, "merchant_id": entry.merchant_id,
        "net_amount": _signed("D" if refund else "C", entry.amount_fen - abs(fee)),
        "merchant_reserved": merchant_name, "orig_order_id": entry.orig_order_id, "reserved": "156",
    }


def zme_values(zm: dict[str, str], reason: str) -> dict[str, str]:
    reserved = (zm["order_id"].ljust(32) + zm["query_id"].ljust(21) + zm["reserved"][:3].ljust(3)
                + zm.get("orig_order_id", "").ljust(32))
    return {
        "trade_code": "E" + zm["trade_code"][1:], **{k: zm.get(k, "") for k in (
            "acquirer_code", "forwarder_code", "trace_no", "trace_time", "masked_card", "amount", "mcc", "terminal_type",
            "txn_type", "orig_trace_no", "orig_trace_time", "fee", "settle_amount", "merchant_id", "txn_sub_type")},
        "error_reason": reason, "error_amount": zm["amount"], "debit_credit": zm["settle_amount"][:1],
        "reserved": reserved,
    }


@dataclass
class StatementFaults:
    """Armed per Beijing day (optionally per merchant); applied whenever that day's files are made, until cleared."""

    _faults: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: dict[str, Any]) -> None:
        with self._lock:
            self._faults.append(dict(fault))

    def clear(self, merchant_id: str | None = None) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if merchant_id is not None and f.get("merchant_id") != merchant_id]

    def for_day(self, day: date, merchant_id: str) -> list[dict[str, Any]]:
        """Faults for ``day``; one that names a merchant (``merchant_id``) applies to that merchant's files only."""
        with self._lock:
            return [dict(f) for f in self._faults if f["day"] == day.isoformat()
                    and f.get("merchant_id", merchant_id) == merchant_id]

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f) for f in self._faults]


def _order_id_of(fault: dict[str, Any]) -> str:
    value = str(fault.get("out_trade_no") or fault.get("out_refund_no") or "")
    return to_order_id(value) if "_" in value else value


def _extra_row(fault: dict[str, Any], merchant_id: str, day: date, merchant_name: str) -> dict[str, str]:
    moment = datetime.combine(day, datetime.min.time(), tzinfo=BEIJING).replace(hour=12)
    entry = LedgerEntry(
        entry_id="extra", kind="payment", occurred_at=moment, merchant_id=merchant_id, debit_account="", credit_account="",
        amount_fen=int(fault.get("amount", 100)), fee_fen=0, order_id=_order_id_of(fault),
        query_id=moment.strftime("%y%m%d%H%M%S") + "999999999", trace_no="999999", biz_type="000201", card_masked="",
        card_kind="",
    )
    return zm_values(entry, merchant_name)


def render(entries: Sequence[LedgerEntry], merchant_id: str, merchant_name: str, day: date,
           faults: Sequence[dict[str, Any]]) -> tuple[list[bytes], list[bytes]]:
    """ZM and ZME lines for one merchant's day, statement faults applied."""
    zm_rows = [zm_values(entry, merchant_name) for entry in entries]
    zme_rows: list[dict[str, str]] = []
    for fault in faults:
        kind, order_id = fault["kind"], _order_id_of(fault)
        matching = [row for row in zm_rows if row["order_id"] == order_id]
        if kind == "extra_row":
            zm_rows.append(_extra_row(fault, merchant_id, day, merchant_name))
        elif kind == "drop_row":
            zm_rows = [row for row in zm_rows if row["order_id"] != order_id]
        elif kind == "duplicate_row":
            zm_rows.extend(dict(row) for row in matching)
        elif kind == "amount":
            for row in matching:
                row["amount"] = f"{int(row['amount']) + int(fault.get('delta', 1)):012d}"
        elif kind == "currency":
            for row in matching:
                row["reserved"] = NUMERIC_BY_CURRENCY[str(fault["currency"])]
        elif kind == "fee":
            for row in matching:
                fee = int(fault["fee"])
                row["fee"] = _signed("D" if fee >= 0 else "C", fee)
        elif kind == "status":
            zm_rows = [row for row in zm_rows if row["order_id"] != order_id]
            zme_rows.extend(zme_values(row, REASON_BY_STATUS[str(fault["status"]).lower()]) for row in matching)
    zm = [fixed(row, ZM_LAYOUT) for row in zm_rows]
    zme = [fixed(row, ZME_LAYOUT) for row in zme_rows]
    if any(fault["kind"] == "corrupt" for fault in faults):
        zm.insert(min(1, len(zm)), "THIS LINE IS NOT IN THE FIXED-WIDTH LAYOUT 这一行格式错误".encode("gbk"))
    return zm, zme


def package(zm: Sequence[bytes], zme: Sequence[bytes], merchant_id: str, day: date) -> tuple[str, str]:
    """(fileName, fileContent): the ZIP, zlib-compressed, base64."""
    stamp = day.strftime("%y%m%d")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, lines in ((f"INN{stamp}01ZM_{merchant_id}", zm), (f"INN{stamp}01ZME_{merchant_id}", zme)):
            info = zipfile.ZipInfo(name, date_time=(day.year, day.month, day.day, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, b"".join(line + b"\r\n" for line in lines))
    content = base64.b64encode(zlib.compress(buffer.getvalue())).decode("ascii")
    return f"{merchant_id}_{day:%Y%m%d}.zip", content
