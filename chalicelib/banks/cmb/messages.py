"""The funcodes the adapter uses: each body as CMB names its fields, and each answer read into hub values.

  BB1PAYOP  企银支付单笔经办   one transfer out (bb1paybmx1 + bb1payopx1 -> bb1payopz1)
  BB1PAYQR  企银支付业务查询   a transfer by our reference (bb1payqrx1 -> bb1payqrz1)
  DCTRSINF  账户交易信息查询   a day's entries on the main account, paged by 记账序号 (-> ntrbptrsz1, ntqactrsz2)
  NTDMTHLS  记账子单元历史交易 a day's entries of the sub-accounts, paged by ctnkey (ntdmthlsy -> ntdmthlsz)
  NTDMAADD  新增记账子单元     a sub-account (ntbusmody + ntdmaaddx -> ntdmabadz1)
  NTQABINF  账户历史余额查询   the balance at the end of a day (ntqabinfy -> ntqabinfz)

Answers are checked field by field: a missing or malformed field is a ``MessageError`` naming it, never a
``KeyError`` or a wrong number.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from chalicelib.banks.base import BankEntry, Transfer, TransferState, TransferStatus
from chalicelib.banks.cmb.states import transfer_state
from chalicelib.domain.money import Money

SUCCESS = "SUC0000"
BUS_COD_PAY = "N02030"  # 业务类型: 支付
CCY_CNY = "10"  # CMB's currency number for RMB
BEIJING = timezone(timedelta(hours=8))
_AMOUNT = re.compile(r"^-?[0-9]{1,15}(\.[0-9]{1,2})?$")
_REFERENCE = re.compile(r"^[A-Za-z0-9]{1,30}$")


class MessageError(ValueError):
    """An answer does not have the shape the funcode promises."""


def cny_amount(money: Money) -> str:
    if money.currency != "CNY":
        raise ValueError(f"CMB direct connect moves CNY only, not {money.currency}")
    if money.minor <= 0:
        raise ValueError("amount must be positive")
    return money.to_decimal_string()


def parse_amount(text: Any, field: str) -> Money:
    """``"1234.50"`` -> 123450 fen; refuses anything that is not a plain decimal with at most 2 places."""
    if not isinstance(text, str) or not _AMOUNT.match(text.strip()):
        raise MessageError(f"{field} is not an amount: {str(text)[:40]!r}")
    return Money.from_decimal_string(text.strip(), "CNY")


def parse_day(text: Any, field: str) -> date:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{8}", text):
        raise MessageError(f"{field} is not a yyyyMMdd day")
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise MessageError(f"{field} is not a calendar day") from None


def parse_time(text: Any, field: str) -> time:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{6}", text):
        raise MessageError(f"{field} is not an HHmmss time")
    try:
        return datetime.strptime(text, "%H%M%S").time()
    except ValueError:
        raise MessageError(f"{field} is not a time of day") from None


def _rows(body: Any, name: str, *, required: bool = True) -> list[dict[str, Any]]:
    rows = body.get(name) if isinstance(body, dict) else None
    if rows is None and not required:
        return []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise MessageError(f"{name} must be a list of objects")
    return rows


def _text(row: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = row.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise MessageError(f"{name} must be a string")
    if required and not value:
        raise MessageError(f"{name} is missing")
    return value


# -- BB1PAYOP / BB1PAYQR ---------------------------------------------------------------------------------------


def check_reference(reference: str) -> str:
    if not _REFERENCE.fullmatch(reference):
        raise ValueError("reference must be 1-30 letters or digits (CMB's yurRef)")
    return reference


def pay_body(account_no: str, bus_mod: str, transfer: Transfer) -> dict[str, Any]:
    """BB1PAYOP: one payment from ``account_no``. ``bnkFlg`` says whether the payee is at CMB (Y) or another bank
    (N, which needs the payee bank's name or CNAPS code); the settlement channel is left to the bank (Q)."""
    check_reference(transfer.reference)
    other_bank = bool(transfer.payee_bank_code or transfer.payee_bank_name)
    item = {
        "dbtAcc": account_no, "crtAcc": transfer.payee_account_no, "crtNam": transfer.payee_name,
        "ccyNbr": CCY_CNY, "trsAmt": cny_amount(transfer.amount), "yurRef": transfer.reference,
        "nusAge": transfer.purpose or "付款", "bnkFlg": "N" if other_bank else "Y", "stlChn": "Q",
    }
    if transfer.payee_bank_name:
        item["crtBnk"] = transfer.payee_bank_name
    if transfer.payee_bank_code:
        item["brdNbr"] = transfer.payee_bank_code
    return {"bb1paybmx1": [{"busCod": BUS_COD_PAY, "busMod": bus_mod}], "bb1payopx1": [item]}


def pay_query_body(reference: str) -> dict[str, Any]:
    return {"bb1payqrx1": [{"busCod": BUS_COD_PAY, "yurRef": check_reference(reference)}]}


def pay_answer(body: Any, reference: str) -> tuple[str, str, str]:
    """BB1PAYOP's one result row: (errCod, errTxt, reqNbr); the state is read by a query after it."""
    rows = _rows(body, "bb1payopz1")
    if len(rows) != 1:
        raise MessageError("bb1payopz1 must hold exactly one row")
    row = rows[0]
    return _text(row, "errCod", required=True), _text(row, "errTxt"), _text(row, "reqNbr")


def status_from_query(body: Any, reference: str) -> TransferStatus | None:
    """BB1PAYQR's row for ``reference`` as a ``TransferStatus``; None when the bank has no such payment."""
    rows = [row for row in _rows(body, "bb1payqrz1", required=False) if row.get("yurRef") == reference]
    if not rows:
        return None
    if len(rows) > 1:
        raise MessageError("bb1payqrz1 holds more than one payment for one yurRef")
    return status_from_row(rows[0], reference)


def status_from_row(row: dict[str, Any], reference: str) -> TransferStatus:
    state = transfer_state(_text(row, "reqSts", required=True), _text(row, "rtnFlg"))
    final = state in (TransferState.SUCCEEDED, TransferState.FAILED, TransferState.RETURNED)
    reason = _text(row, "rtnNar") or None
    day_text = _text(row, "oprDat")
    return TransferStatus(
        reference=reference, state=state, bank_reference=_text(row, "reqNbr") or None,
        failure_reason=reason if state in (TransferState.FAILED, TransferState.RETURNED) else None,
        value_day=parse_day(day_text, "oprDat") if final and day_text else None,
    )


# -- NTDMAADD --------------------------------------------------------------------------------------------------


def add_sub_account_body(account_no: str, bus_mod: str, reference: str, name: str) -> dict[str, Any]:
    """NTDMAADD with ``dmanbr`` empty: the bank numbers the sub-account; ``yurref`` makes a resend answer the
    same one; overdraft off (a sub-account only collects)."""
    if not name or len(name) > 100:
        raise ValueError("name must be 1-100 characters (dmanam)")
    return {"ntbusmody": [{"busmod": bus_mod}], "ntdmaaddx": [{
        "accnbr": account_no, "dmanbr": "", "dmanam": name, "ovrctl": "N", "yurref": check_reference(reference),
    }]}


def sub_account_answer(body: Any) -> tuple[str, str, str]:
    """(errcod, errtxt, dmanbr) of NTDMAADD's one result row."""
    rows = _rows(body, "ntdmabadz1")
    if len(rows) != 1:
        raise MessageError("ntdmabadz1 must hold exactly one row")
    row = rows[0]
    errcod = _text(row, "errcod", required=True)
    dmanbr = _text(row, "dmanbr")
    if errcod == SUCCESS and not re.fullmatch(r"[0-9]{1,10}", dmanbr):
        raise MessageError("dmanbr must be 1-10 digits")
    return errcod, _text(row, "errtxt"), dmanbr


# -- DCTRSINF, NTDMTHLS, NTQABINF ------------------------------------------------------------------------------


def detail_body(branch_no: str, account_no: str, day: date, next_seq: int) -> dict[str, Any]:
    return {"bbknbr": branch_no, "accnbr": account_no, "trsdat": day.strftime("%Y%m%d"), "trsseq": str(next_seq)}


def detail_page(body: Any, account_no: str) -> tuple[list[dict[str, Any]], int, bool]:
    """(entries as CMB sent them, last 记账序号, more to come) of one DCTRSINF page."""
    summary = _rows(body, "ntrbptrsz1")
    if len(summary) != 1:
        raise MessageError("ntrbptrsz1 must hold exactly one row")
    more = _text(summary[0], "cotflg", required=True)
    if more not in ("Y", "N"):
        raise MessageError("cotflg must be Y or N")
    seq_text = _text(summary[0], "trsseq")
    if not re.fullmatch(r"[0-9]{1,12}", seq_text or "0"):
        raise MessageError("trsseq must be digits")
    return _rows(body, "ntqactrsz2", required=False), int(seq_text or "0"), more == "Y"


def entry_from_detail(row: dict[str, Any], account_no: str, sub_accounts: dict[str, str]) -> BankEntry:
    """One DCTRSINF row. ``sub_accounts`` maps a 记账流水号 (refnbr) to the full sub-account number it was
    credited to, from the day's NTDMTHLS rows."""
    direction = {"C": "credit", "D": "debit"}.get(_text(row, "amtcdr", required=True))
    if direction is None:
        raise MessageError("amtcdr must be C or D")
    amount = parse_amount(row.get("trsamt"), "trsamt")
    if amount.minor < 0:  # CMB writes debits as negative amounts on some lines; the direction is in amtcdr
        amount = Money(-amount.minor, amount.currency)
    if amount.minor == 0:
        raise MessageError("trsamt must not be zero")
    booked_day = parse_day(row.get("etydat"), "etydat")
    refnbr = _text(row, "refnbr", required=True)
    postscript = _text(row, "nusage") or _text(row, "naryur")
    yurref = _text(row, "yurref")
    return BankEntry(
        account_no=account_no, direction=direction, amount=amount,
        value_day=parse_day(row.get("vltdat") or row.get("etydat"), "vltdat"),
        booked_at=datetime.combine(booked_day, parse_time(row.get("etytim"), "etytim"), BEIJING),
        bank_reference=refnbr, counterparty_account_no=_text(row, "rpyacc"), counterparty_name=_text(row, "rpynam"),
        postscript=postscript,
        virtual_account_no=sub_accounts.get(refnbr) if direction == "credit" else None,
        # Our debits carry the yurRef we gave; so does the credit of a returned payment (退票) coming back.
        transfer_reference=yurref or None,
    )


def balance_after(row: dict[str, Any]) -> Money:
    return parse_amount(row.get("trsblv"), "trsblv")


def sub_history_body(account_no: str, day: date, ctnkey: str) -> dict[str, Any]:
    stamp = day.strftime("%Y%m%d")
    return {"ntdmthlsy": [{"accnbr": account_no, "dmanbr": "", "begdat": stamp, "enddat": stamp, "ctnkey": ctnkey}]}


def sub_history_page(body: Any, account_no: str) -> tuple[dict[str, str], str]:
    """({记账流水号: full sub-account number} for the page's credits, ctnkey to continue with or "")."""
    credited: dict[str, str] = {}
    for row in _rows(body, "ntdmthlsz", required=False):
        if _text(row, "trxdir") != "C":
            continue
        dmanbr = _text(row, "dmanbr", required=True)
        if not re.fullmatch(r"[0-9]{1,10}", dmanbr):
            raise MessageError("dmanbr must be 1-10 digits")
        credited[_text(row, "trxnbr", required=True)] = account_no + dmanbr
    keys = _rows(body, "ntdmthlsy", required=False)
    return credited, _text(keys[0], "ctnkey") if keys else ""


def balance_body(branch_no: str, account_no: str, day: date) -> dict[str, Any]:
    stamp = day.strftime("%Y%m%d")
    return {"ntqabinfy": [{"bbknbr": branch_no, "accnbr": account_no, "ccynbr": CCY_CNY, "bgndat": stamp,
                           "enddat": stamp}]}


def closing_balance(body: Any, day: date) -> Money:
    stamp = day.strftime("%Y%m%d")
    rows = [row for row in _rows(body, "ntqabinfz") if row.get("trsdat") == stamp]
    if len(rows) != 1:
        raise MessageError(f"ntqabinfz must hold exactly one row for {stamp}")
    return parse_amount(rows[0].get("balamt"), "balamt")
