"""The trade bill (交易账单) file, rendered from ledger entries in WeChat's real format (PROTOCOLS.md §1.11).

Every detail and summary cell starts with a backtick, amounts are yuan with 2 decimals, fees yuan with 5.
A refund row is dated when the refund was accepted and carries the refund status as of rendering.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from .state import BEIJING, LedgerEntry

BillType = Literal["ALL", "SUCCESS", "REFUND"]
RefundProgress = Callable[[str, str], tuple[str, datetime | None]]  # (mchid, out_refund_no) -> status, success

_COMMON_HEAD = ["交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识",
                "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额"]
_REFUND_COLUMNS = ["微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态"]
_TAIL = ["商品名称", "商户数据包", "手续费", "费率", "订单金额"]
HEADERS: dict[str, list[str]] = {
    "ALL": _COMMON_HEAD + _REFUND_COLUMNS + _TAIL + ["申请退款金额", "费率备注"],
    "SUCCESS": _COMMON_HEAD + _TAIL + ["费率备注"],
    "REFUND": _COMMON_HEAD + ["退款申请时间", "退款成功时间"] + _REFUND_COLUMNS + _TAIL + ["申请退款金额", "费率备注"],
}
SUMMARY_HEADERS: dict[str, list[str]] = {
    "ALL": ["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额",
            "申请退款总金额"],
    "SUCCESS": ["总交易单数", "应结订单总金额", "手续费总金额", "订单总金额"],
}
SUMMARY_HEADERS["REFUND"] = SUMMARY_HEADERS["ALL"]


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def fee_yuan(millifen: int) -> str:
    """1 millifen = 1/1000 fen = 0.00001 yuan, the bill's fee precision."""
    sign = "-" if millifen < 0 else ""
    return f"{sign}{abs(millifen) // 100_000}.{abs(millifen) % 100_000:05d}"


def rate_text(bps: int) -> str:
    return f"{bps // 100}.{bps % 100:02d}%"


def _time(moment: datetime | None) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _text(value: str) -> str:
    # The real file does not quote cells; keep free text from breaking the comma layout.
    return value.replace(",", "，").replace("\r", " ").replace("\n", " ")


def _row(entry: LedgerEntry, bill_type: BillType, progress: RefundProgress) -> dict[str, str]:
    is_refund = entry.kind == "refund"
    row = {
        "交易时间": _time(entry.occurred_at if is_refund and bill_type == "ALL" else entry.paid_at),
        "公众账号ID": entry.appid, "商户号": entry.mchid, "特约商户号": "0", "设备号": "",
        "微信订单号": entry.transaction_id, "商户订单号": entry.out_trade_no, "用户标识": entry.payer_openid,
        "交易类型": entry.trade_type, "交易状态": "REFUND" if is_refund else "SUCCESS", "付款银行": "OTHERS",
        "货币种类": "CNY", "应结订单金额": yuan(0 if is_refund else entry.amount_fen), "代金券金额": "0.00",
        "微信退款单号": "0", "商户退款单号": "0", "退款金额": "0.00", "充值券退款金额": "0.00", "退款类型": "",
        "退款状态": "", "商品名称": _text(entry.description), "商户数据包": _text(entry.attach),
        "手续费": fee_yuan(entry.fee_millifen), "费率": rate_text(entry.fee_rate_bps),
        "订单金额": yuan(0 if is_refund else entry.order_total_fen), "申请退款金额": "0.00", "费率备注": "",
    }
    if is_refund and entry.out_refund_no and entry.refund_id:
        status, success_time = progress(entry.mchid, entry.out_refund_no)
        row.update({
            "微信退款单号": entry.refund_id, "商户退款单号": entry.out_refund_no, "退款金额": yuan(entry.amount_fen),
            "退款类型": "ORIGINAL", "退款状态": status, "申请退款金额": yuan(entry.amount_fen),
            "退款申请时间": _time(entry.occurred_at), "退款成功时间": _time(success_time),
        })
    return row


def _summary(rows: Sequence[dict[str, str]], entries: Sequence[LedgerEntry]) -> dict[str, str]:
    payments = [e for e in entries if e.kind == "payment"]
    refunds = [e for e in entries if e.kind == "refund"]
    refunded_fen = sum(e.amount_fen for e in refunds)
    return {
        "总交易单数": str(len(rows)),
        "应结订单总金额": yuan(sum(e.amount_fen for e in payments)),
        "退款总金额": yuan(refunded_fen),
        "充值券退款总金额": "0.00",
        "手续费总金额": fee_yuan(sum(e.fee_millifen for e in entries)),
        "订单总金额": yuan(sum(e.order_total_fen for e in payments)),
        "申请退款总金额": yuan(refunded_fen),
    }


def render_trade_bill(entries: Sequence[LedgerEntry], bill_type: BillType, progress: RefundProgress) -> bytes:
    wanted = [e for e in entries if bill_type == "ALL" or e.kind == ("payment" if bill_type == "SUCCESS" else "refund")]
    rows = [_row(entry, bill_type, progress) for entry in wanted]
    header = HEADERS[bill_type]
    summary = _summary(rows, wanted)
    lines = [",".join(header)]
    lines += [",".join("`" + row.get(column, "") for column in header) for row in rows]
    lines.append(",".join(SUMMARY_HEADERS[bill_type]))
    lines.append(",".join("`" + summary[column] for column in SUMMARY_HEADERS[bill_type]))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def package(bill: bytes, tar_type: str | None) -> bytes:
    # mtime=0 keeps the gzip bytes (and so hash_value) identical for identical content.
    return gzip.compress(bill, mtime=0) if tar_type == "GZIP" else bill


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - WeChat's bill integrity hash is SHA-1 by protocol
