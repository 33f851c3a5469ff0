"""The daily reconciliation file (对账文件), rendered from the ledger of one Beijing day, with statement faults.

GBK, ``|``-separated, CRLF. Line 1 is the file header, line 2 the column names, then one row per movement
booked that day, then the ``合计`` trailer with counts, totals and the SM3 of every byte before it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from typing import Any

from .crypto import sm3_hex
from .protocol import BEIJING, beijing, digits, now_utc, yuan
from .state import LedgerEntry

ENCODING = "gbk"
COLUMNS = ("交易类型", "商户订单号", "银行订单号", "交易流水号", "商户退款单号", "银行退款单号", "交易金额", "手续费",
           "币种", "交易状态", "交易时间", "入账时间", "离线标识", "付款钱包")
FAULT_KINDS = frozenset({"drop_row", "extra_row", "amount", "currency", "status", "fee", "duplicate_row", "corrupt",
                         "withhold"})  # withhold: the trailer's 结算金额 is short by ``amount`` fen, the rows unchanged

Row = dict[str, str]


def _masked(wallet: str) -> str:
    return "*" * (len(wallet) - 4) + wallet[-4:]


def _row(entry: LedgerEntry) -> Row:
    is_refund = entry.kind == "refund"
    return {
        "交易类型": "REFUND" if is_refund else "PAY", "商户订单号": entry.out_order_no, "银行订单号": entry.order_no,
        "交易流水号": entry.txn_id, "商户退款单号": entry.out_refund_no or "", "银行退款单号": entry.refund_no or "",
        "交易金额": yuan(entry.amount_fen), "手续费": yuan(entry.fee_fen), "币种": "CNY", "交易状态": "SUCCESS",
        "交易时间": beijing(entry.booked_at if is_refund else entry.pay_time), "入账时间": beijing(entry.booked_at),
        "离线标识": "Y" if entry.offline else "N", "付款钱包": _masked(entry.payer_wallet),
    }


def _object_id(row: Row) -> str:
    return row["商户退款单号"] if row["交易类型"] == "REFUND" else row["商户订单号"]


def _fen(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    whole, _, cents = text.lstrip("-").partition(".")
    return sign * (int(whole) * 100 + int(cents))


def _moment_in(day: date) -> datetime:
    now = now_utc()
    return now if now.astimezone(BEIJING).date() == day else datetime.combine(day, time(12, 0), BEIJING)


def _extra_row(fault: Mapping[str, Any], day: date) -> Row:
    moment = beijing(_moment_in(day))
    return {
        "交易类型": "PAY", "商户订单号": str(fault["out_trade_no"]), "银行订单号": "EO" + moment + digits(10),
        "交易流水号": "TX" + digits(28), "商户退款单号": "", "银行退款单号": "", "交易金额": yuan(int(fault["amount"])),
        "手续费": "0.00", "币种": "CNY", "交易状态": "SUCCESS", "交易时间": moment, "入账时间": moment, "离线标识": "N",
        "付款钱包": "************" + digits(4),
    }


def apply_faults(rows: list[Row], faults: Iterable[Mapping[str, Any]], day: date) -> tuple[list[Row], bool]:
    """Rows as the (faulty) bank renders them, and whether the file must come out corrupt."""
    corrupt = False
    for fault in faults:
        kind, target = fault["kind"], str(fault.get("out_trade_no") or fault.get("out_refund_no") or "")
        if kind == "corrupt":
            corrupt = True
        elif kind == "withhold":
            continue  # a trailer fault: ``render`` takes it off the stated settlement
        elif kind == "extra_row":
            rows.append(_extra_row(fault, day))
        elif kind == "drop_row":
            rows = [row for row in rows if _object_id(row) != target]
        elif kind == "duplicate_row":
            rows = [copy for row in rows for copy in ([row, dict(row)] if _object_id(row) == target else [row])]
        else:
            for row in rows:
                if _object_id(row) != target:
                    continue
                if kind == "amount":
                    row["交易金额"] = yuan(_fen(row["交易金额"]) + int(fault["delta"]))
                elif kind == "currency":
                    row["币种"] = str(fault["currency"])
                elif kind == "status":
                    row["交易状态"] = str(fault["status"])
                elif kind == "fee":
                    row["手续费"] = yuan(int(fault["fee"]))
    return rows, corrupt


def render(merchant_id: str, day: date, entries: Iterable[LedgerEntry],
           faults: Iterable[Mapping[str, Any]] = ()) -> bytes:
    faults = list(faults)
    rows, corrupt = apply_faults([_row(entry) for entry in entries], faults, day)
    withheld = sum(int(fault["amount"]) for fault in faults if fault["kind"] == "withhold")
    lines = [f"ECNYRECON|1.0|{merchant_id}|{day:%Y%m%d}|{beijing(now_utc())}", "|".join(COLUMNS)]
    lines += ["|".join(row[column] for column in COLUMNS) for row in rows]
    if corrupt:  # a row cut short, the way a truncated write at the bank leaves it
        broken = lines[2].rsplit("|", 3)[0] if len(lines) > 2 else "PAY|" + secrets.token_hex(4)
        lines = lines[:2] + [broken] + lines[3:]
    content = "".join(line + "\r\n" for line in lines).encode(ENCODING)
    pay = [row for row in rows if row["交易类型"] == "PAY"]
    refund = [row for row in rows if row["交易类型"] == "REFUND"]
    pay_fen = sum(_fen(row["交易金额"]) for row in pay)
    refund_fen = sum(_fen(row["交易金额"]) for row in refund)
    fee_fen = sum(_fen(row["手续费"]) for row in rows)
    trailer = (f"合计|总笔数={len(rows)}|支付笔数={len(pay)}|支付金额={yuan(pay_fen)}|退款笔数={len(refund)}"
               f"|退款金额={yuan(refund_fen)}|手续费={yuan(fee_fen)}"
               f"|结算金额={yuan(pay_fen - refund_fen - fee_fen - withheld)}"
               f"|SM3={sm3_hex(content)}")
    return content + (trailer + "\r\n").encode(ENCODING)
