"""The trade bill (交易账单) file, rendered from ledger entries in WeChat's real format (docs/channels/wechatpay.md#trade-bill).

Every detail and summary cell starts with a backtick, amounts are yuan with 2 decimals, fees yuan with 5.
A refund row is dated when the refund was accepted and carries the refund status as of rendering.
Statement faults (``statement_faults.py``) change the rendering, never the books; the summary row is computed
from the rows as rendered.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .state import BEIJING, LedgerEntry, fee_millifen
from .statement_faults import ROW_KINDS, StatementFault

BillType = Literal["ALL", "SUCCESS", "REFUND"]
RefundProgress = Callable[[str, str], tuple[str, datetime | None]]  # (mchid, out_refund_no) -> status, success


@dataclass(frozen=True, slots=True)
class BillMerchant:
    """What an invented (extra_row) row needs to look like the merchant's real ones."""

    mchid: str
    appid: str
    fee_rate_bps: int

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


def _fen(text: str) -> int:
    """A yuan cell back to fen (the summary is computed from the cells as rendered, faults included)."""
    sign = -1 if text.startswith("-") else 1
    whole, _, cents = text.lstrip("-").partition(".")
    return sign * (int(whole) * 100 + int((cents + "00")[:2]))


def _millifen(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    whole, _, decimals = text.lstrip("-").partition(".")
    return sign * (int(whole) * 100_000 + int((decimals + "00000")[:5]))


def _summary(rows: Sequence[dict[str, str]]) -> dict[str, str]:
    def total(column: str) -> int:
        return sum(_fen(row.get(column) or "0") for row in rows)

    return {
        "总交易单数": str(len(rows)),
        "应结订单总金额": yuan(total("应结订单金额")),
        "退款总金额": yuan(total("退款金额")),
        "充值券退款总金额": "0.00",
        "手续费总金额": fee_yuan(sum(_millifen(row.get("手续费") or "0") for row in rows)),
        "订单总金额": yuan(total("订单金额")),
        "申请退款总金额": yuan(total("申请退款金额")),
    }


def _extra_row(fault: StatementFault, merchant: BillMerchant, bill_type: BillType) -> dict[str, str] | None:
    """A success row the books never had: an order (or a refund of one) the hub has never heard of."""
    assert fault.out_trade_no is not None and fault.amount_fen is not None and fault.occurred_at is not None
    is_refund = fault.out_refund_no is not None
    if (bill_type == "SUCCESS" and is_refund) or (bill_type == "REFUND" and not is_refund):
        return None
    amount, fee = fault.amount_fen, fee_millifen(fault.amount_fen, merchant.fee_rate_bps)
    when = _time(fault.occurred_at)
    row = {
        "交易时间": when, "公众账号ID": merchant.appid, "商户号": merchant.mchid, "特约商户号": "0", "设备号": "",
        "微信订单号": "42000" + _digits_of(fault.out_trade_no, 23), "商户订单号": fault.out_trade_no,
        "用户标识": "oExtraRowPayer", "交易类型": "NATIVE", "交易状态": "REFUND" if is_refund else "SUCCESS",
        "付款银行": "OTHERS", "货币种类": "CNY", "应结订单金额": yuan(0 if is_refund else amount),
        "代金券金额": "0.00", "微信退款单号": "0", "商户退款单号": "0", "退款金额": "0.00", "充值券退款金额": "0.00",
        "退款类型": "", "退款状态": "", "商品名称": "", "商户数据包": "", "手续费": fee_yuan(-fee if is_refund else fee),
        "费率": rate_text(merchant.fee_rate_bps), "订单金额": yuan(0 if is_refund else amount),
        "申请退款金额": "0.00", "费率备注": "",
    }
    if is_refund:
        row.update({"微信退款单号": "503" + _digits_of(fault.out_refund_no or "", 26),
                    "商户退款单号": fault.out_refund_no or "", "退款金额": yuan(amount), "退款类型": "ORIGINAL",
                    "退款状态": "SUCCESS", "申请退款金额": yuan(amount), "退款申请时间": when, "退款成功时间": when})
    return row


def _digits_of(text: str, count: int) -> str:
    """Stable digits for a synthetic channel id, so the same fault renders the same file every time."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return str(int(digest, 16))[:count].rjust(count, "0")


def _apply_row_fault(fault: StatementFault, row: dict[str, str]) -> list[dict[str, str]]:
    is_refund = row["交易状态"] == "REFUND"
    if fault.kind == "drop_row":
        return []
    if fault.kind == "duplicate_row":
        return [row, dict(row)]
    changed = dict(row)
    if fault.kind == "amount":
        assert fault.delta_fen is not None
        for column in (("退款金额", "申请退款金额") if is_refund else ("应结订单金额", "订单金额")):
            changed[column] = yuan(_fen(row[column]) + fault.delta_fen)
    elif fault.kind == "currency":
        changed["货币种类"] = fault.currency or row["货币种类"]
    elif fault.kind == "status":
        changed["退款状态" if is_refund else "交易状态"] = fault.status or ""
    elif fault.kind == "fee":
        assert fault.fee_fen is not None
        changed["手续费"] = fee_yuan(fault.fee_fen * 1000)
    return [changed]


def _with_faults(rows: list[dict[str, str]], faults: Sequence[StatementFault], merchant: BillMerchant | None,
                 bill_type: BillType) -> list[dict[str, str]]:
    for fault in faults:
        if fault.kind == "extra_row" and merchant is not None:
            extra = _extra_row(fault, merchant, bill_type)
            rows = rows + ([extra] if extra else [])
        elif fault.kind in ROW_KINDS:
            rendered: list[dict[str, str]] = []
            for row in rows:
                refund_no = row["商户退款单号"] if row["交易状态"] == "REFUND" else None
                hit = fault.targets(row["商户订单号"], refund_no)
                rendered += _apply_row_fault(fault, row) if hit else [row]
            rows = rendered
    return rows


def render_trade_bill(entries: Sequence[LedgerEntry], bill_type: BillType, progress: RefundProgress,
                      faults: Sequence[StatementFault] = (), merchant: BillMerchant | None = None) -> bytes:
    wanted = [e for e in entries if bill_type == "ALL" or e.kind == ("payment" if bill_type == "SUCCESS" else "refund")]
    rows = _with_faults([_row(entry, bill_type, progress) for entry in wanted], faults, merchant, bill_type)
    header = HEADERS[bill_type]
    summary = _summary(rows)
    lines = [",".join(header)]
    lines += [",".join("`" + row.get(column, "") for column in header) for row in rows]
    if any(fault.kind == "corrupt" for fault in faults):
        lines.insert(1, "`" + ",`".join(["2000-01-01 00:00:00", "corrupt"]))  # too few cells for the header
    lines.append(",".join(SUMMARY_HEADERS[bill_type]))
    lines.append(",".join("`" + summary[column] for column in SUMMARY_HEADERS[bill_type]))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def package(bill: bytes, tar_type: str | None) -> bytes:
    # mtime=0 keeps the gzip bytes (and so hash_value) identical for identical content.
    return gzip.compress(bill, mtime=0) if tar_type == "GZIP" else bill


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - WeChat's bill integrity hash is SHA-1 by protocol
