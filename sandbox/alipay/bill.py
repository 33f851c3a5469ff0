"""The trade bill (业务明细) ZIP, rendered from ledger entries in Alipay's format (docs/channels/alipay.md#bill-files).

A ZIP of two GBK CSVs whose entry names are GBK bytes without the UTF-8 flag: the detail file (``#`` comments,
the header, one row per movement with tab-suffixed id cells, closing ``#`` totals) and the summary file (one
row per store plus the 合计 row). Refund rows carry negative amounts; service fees show as money leaving the
merchant (negative on a payment, positive when a refund gives it back) [modelled: the real sign is unverified].

Statement faults alter the rendering only; totals are computed from the rows as rendered, so a file is
always self-consistent (a dropped row is simply absent, as if Alipay had lost it).
"""

from __future__ import annotations

import io
import secrets
import string
import zipfile
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from .faults import StatementFault
from .notify import yuan
from .state import BEIJING, LedgerEntry, now_utc

DETAIL_HEADER = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员",
    "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
    "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号",
    "服务费（元）", "分润（元）", "备注",
)
SUMMARY_HEADER = (
    "门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）", "支付宝优惠（元）",
    "商家优惠（元）", "卡消费金额（元）", "服务费（元）", "分润（元）", "实收净额（元）",
)
CURRENCY_COLUMN, STATUS_COLUMN = "币种", "交易状态"  # present only when a statement fault needs them
TAB_SUFFIXED = frozenset({"支付宝交易号", "商户订单号", "业务类型", "门店编号", "门店名称", "操作员", "终端号", "对方账户",
                          "商家红包消费金额（元）", "退款批次号/请求号"})
_RULE = "-" * 41
ENCODING = "gbk"


class _GbkName(zipfile.ZipInfo):
    """Write the entry name as GBK bytes without the UTF-8 flag, the way Alipay's archives come."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 - overrides zipfile's private hook
        return self.filename.encode(ENCODING), self.flag_bits & ~0x800


def _clock(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _text(value: str) -> str:
    # The real file does not quote cells: keep free text from breaking the comma layout.
    return value.replace(",", "，").replace("\r", " ").replace("\n", " ")


def _row(entry: LedgerEntry) -> dict[str, Any]:
    refund = entry.kind == "refund"
    signed_fen = -entry.amount_fen if refund else entry.amount_fen
    return {
        "支付宝交易号": entry.trade_no, "商户订单号": entry.out_trade_no, "业务类型": "退款" if refund else "交易",
        "商品名称": _text(entry.subject), "创建时间": _clock(entry.created_at), "完成时间": _clock(entry.occurred_at),
        "对方账户": entry.buyer_logon_id, "_amount_fen": signed_fen, "_fee_fen": entry.fee_fen if refund else -entry.fee_fen,
        "退款批次号/请求号": entry.out_request_no, "_kind": entry.kind,
    }


def _targets(row: dict[str, Any], fault: StatementFault) -> bool:
    wanted_kind = fault.options.get("row")
    if wanted_kind and wanted_kind != row["_kind"]:
        return False
    number = fault.out_trade_no
    if row["_kind"] == "refund":
        return number in (row["退款批次号/请求号"], fault.options.get("out_request_no")) or (
            number == row["商户订单号"] and wanted_kind == "refund")
    return number == row["商户订单号"]


def _extra_row(day: date, fault: StatementFault) -> dict[str, Any]:
    moment = datetime.combine(day, time(12, 0), tzinfo=BEIJING)
    amount = int(fault.options.get("amount", 100))
    return {
        "支付宝交易号": f"{day:%Y%m%d}2200" + "".join(secrets.choice(string.digits) for _ in range(18)),
        "商户订单号": fault.out_trade_no, "业务类型": "交易", "商品名称": "unknown order", "创建时间": _clock(moment),
        "完成时间": _clock(moment), "对方账户": "x**@sandbox.alipay", "_amount_fen": amount, "_fee_fen": 0,
        "退款批次号/请求号": "", "_kind": "payment",
    }


def apply_faults(rows: list[dict[str, Any]], day: date, faults: Sequence[StatementFault]) -> tuple[list[dict[str, Any]], bool]:
    """(rows as rendered, whether the file must be corrupt)."""
    corrupt = False
    for fault in faults:
        if fault.kind == "extra_row":
            rows.append(_extra_row(day, fault))
            continue
        if fault.kind == "corrupt":
            corrupt = True
            continue
        matched = [row for row in rows if _targets(row, fault)]
        for row in matched:
            if fault.kind == "drop_row":
                rows.remove(row)
            elif fault.kind == "duplicate_row":
                rows.insert(rows.index(row) + 1, dict(row))
            elif fault.kind == "amount":
                delta = int(fault.options.get("delta", 1))
                row["_amount_fen"] += -delta if row["_amount_fen"] < 0 else delta
            elif fault.kind == "currency":
                row[CURRENCY_COLUMN] = str(fault.options.get("currency", "USD"))
            elif fault.kind == "status":
                row[STATUS_COLUMN] = str(fault.options.get("status", "CLOSED"))
            elif fault.kind == "fee":
                fee = int(fault.options.get("fee", 0))
                row["_fee_fen"] = fee if row["_kind"] == "refund" else -fee
    return rows, corrupt


def _cells(row: dict[str, Any], header: Sequence[str]) -> list[str]:
    values = {**row, "订单金额（元）": yuan(row["_amount_fen"]), "商家实收（元）": yuan(row["_amount_fen"]),
              "服务费（元）": yuan(row["_fee_fen"])}
    cells = []
    for column in header:
        value = values.get(column)
        if value is None:
            value = "0.00" if column.endswith("（元）") else ""
        if column == CURRENCY_COLUMN and not value:
            value = "CNY"
        if column == STATUS_COLUMN and not value:
            value = "成功"
        cells.append(f"{value}\t" if column in TAB_SUFFIXED else str(value))
    return cells


def _head(title: str, pid: str, day: date) -> list[str]:
    return [f"#支付宝{title}查询", f"#账号：[{pid}0156]",
            f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day:%Y年%m月%d日} 23:59:59]",
            f"#{_RULE}{title}列表{_RULE}"]


def render(pid: str, day: date, entries: Sequence[LedgerEntry], faults: Sequence[StatementFault]) -> bytes:
    rows, corrupt = apply_faults([_row(e) for e in entries], day, faults)
    header = list(DETAIL_HEADER)
    if any(CURRENCY_COLUMN in row for row in rows):
        header.append(CURRENCY_COLUMN)
    if any(STATUS_COLUMN in row for row in rows):
        header.append(STATUS_COLUMN)
    payments = [r for r in rows if r["_kind"] == "payment"]
    refunds = [r for r in rows if r["_kind"] == "refund"]
    exported = f"#导出时间：[{now_utc().astimezone(BEIJING):%Y年%m月%d日 %H:%M:%S}]"
    detail = _head("业务明细", pid, day) + [",".join(header)]
    detail += [",".join(_cells(row, header)) for row in rows]
    if corrupt:
        detail.insert(len(detail) - len(rows) // 2, "2088corrupt\t,this row,is,cut short")
    detail += [
        f"#{_RULE}业务明细列表结束{_RULE}",
        f"#交易合计：{len(payments)}笔，商家实收共{yuan(sum(r['_amount_fen'] for r in payments))}元，商家优惠共0.00元",
        f"#退款合计：{len(refunds)}笔，商家实收退款共{yuan(sum(r['_amount_fen'] for r in refunds))}元，商家优惠退款共0.00元",
        exported,
    ]
    received = sum(r["_amount_fen"] for r in rows)
    fees = sum(r["_fee_fen"] for r in rows)
    totals = [str(len(payments)), str(len(refunds)), yuan(received), yuan(received), "0.00", "0.00", "0.00", yuan(fees),
              "0.00", yuan(received + fees)]
    summary = _head("业务汇总", pid, day) + [",".join(SUMMARY_HEADER), ",".join(["\t", "\t", *totals]),
                                               ",".join(["合计", "", *totals]), f"#{_RULE}业务汇总列表结束{_RULE}", exported]
    stem = f"{pid}0156_{day:%Y%m%d}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, lines in ((f"{stem}_业务明细.csv", detail), (f"{stem}_业务明细(汇总).csv", summary)):
            info = _GbkName(name, date_time=now_utc().astimezone(BEIJING).timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, ("\r\n".join(lines) + "\r\n").encode(ENCODING))
    return buffer.getvalue()
