"""The funcodes, as the bank answers them: each takes the user and the request body, returns the answer body
or raises ``BankRefusal`` (a head-level error). Field names are CMB's (docs/banks/cmb.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from .state import BankRefusal, BankState, Entry, PayeeFault, Payment, User, yuan

_AMOUNT = re.compile(r"^[0-9]{1,13}(\.[0-9]{1,2})?$")
_YURREF = re.compile(r"^[A-Za-z0-9]{1,30}$")
SUCCESS = "SUC0000"

Later = Callable[[float, Callable[[], None]], None]


def _rows(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rows = body.get(name)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise BankRefusal("ERR_PARAM", f"{name} must be a non-empty list of objects")
    return rows


def _field(row: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = row.get(name, "")
    if not isinstance(value, str) or (required and not value):
        raise BankRefusal("ERR_PARAM", f"{name} is required (string)")
    return value


def _fen(text: str, name: str) -> int:
    if not _AMOUNT.match(text):
        raise BankRefusal("ERR_PARAM", f"{name} must be an amount like 123.45")
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int(cents.ljust(2, "0") or "0")


def _day(text: str, name: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise BankRefusal("ERR_PARAM", f"{name} must be yyyyMMdd") from None


def payment_row(payment: Payment) -> dict[str, str]:
    fields = payment.fields
    return {
        "yurRef": payment.yurref, "reqNbr": payment.reqnbr, "reqSts": payment.req_sts, "rtnFlg": payment.rtn_flg,
        "rtnNar": payment.rtn_nar, "dbtAcc": payment.account_no, "crtAcc": fields.get("crtAcc", ""),
        "crtNam": fields.get("crtNam", ""), "crtBnk": fields.get("crtBnk", ""), "trsAmt": fields.get("trsAmt", ""),
        "ccyNbr": fields.get("ccyNbr", ""), "nusAge": fields.get("nusAge", ""), "bnkFlg": fields.get("bnkFlg", ""),
        "stlChn": fields.get("stlChn", ""), "busCod": "N02030",
        "oprDat": payment.opr_dat.strftime("%Y%m%d") if payment.opr_dat else "",
    }


class Funcodes:
    def __init__(self, state: BankState, later: Later, *, settle_s: float, page_size: int) -> None:
        self._state = state
        self._later = later
        self._settle_s = settle_s
        self._page_size = page_size

    def handlers(self) -> dict[str, Callable[[User, dict[str, Any]], dict[str, Any]]]:
        return {"BB1PAYOP": self.pay, "BB1PAYQR": self.pay_query, "DCTRSINF": self.detail,
                "NTDMTHLS": self.sub_history, "NTDMAADD": self.add_sub_account, "NTQABINF": self.history_balance}

    # -- payments ------------------------------------------------------------------------------------------

    def pay(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        mode = _rows(body, "bb1paybmx1")[0]
        if _field(mode, "busCod") != "N02030":
            raise BankRefusal("ERR_PARAM", "busCod must be N02030")
        items = _rows(body, "bb1payopx1")
        if len(items) != 1:
            raise BankRefusal("ERR_PARAM", "BB1PAYOP takes exactly one bb1payopx1 row")
        item = items[0]
        fields = {name: _field(item, name) for name in ("dbtAcc", "crtAcc", "crtNam", "ccyNbr", "trsAmt", "yurRef")}
        fields.update({name: _field(item, name, required=False) for name in
                       ("nusAge", "bnkFlg", "stlChn", "crtBnk", "brdNbr", "busNar", "dmaNbr") if name in item})
        if fields["ccyNbr"] != "10":
            raise BankRefusal("ERR_PARAM", "ccyNbr must be 10 (RMB)")
        if not _YURREF.fullmatch(fields["yurRef"]):
            raise BankRefusal("ERR_PARAM", "yurRef must be 1-30 letters or digits")
        if fields.get("bnkFlg") == "N" and not (fields.get("crtBnk") or fields.get("brdNbr")):
            raise BankRefusal("ERR_PARAM", "crtBnk or brdNbr is required for a payee at another bank (bnkFlg N)")
        amount_fen = _fen(fields["trsAmt"], "trsAmt")
        if amount_fen <= 0:
            raise BankRefusal("ERR_PARAM", "trsAmt must be positive")
        self._state.owned_account(user.uid, fields["dbtAcc"])
        try:
            payment, new = self._state.accept_payment(user.uid, fields["dbtAcc"], fields, amount_fen)
        except BankRefusal as refusal:  # a payment-level refusal: the head succeeds, the row says why
            return {"bb1payopz1": [{"errCod": refusal.code, "errTxt": refusal.message, "reqNbr": "", "reqSts": "",
                                    "rtnFlg": "", "msgTxt": ""}]}
        if new:
            fault = self._state.take_fault(fields["crtAcc"])
            if self._settle_s > 0:
                self._later(self._settle_s, lambda: self._finish(payment.account_no, payment.yurref, fault))
            else:
                self._finish(payment.account_no, payment.yurref, fault)
            payment = self._state.payment(payment.account_no, payment.yurref) or payment
        return {"bb1payopz1": [{"errCod": SUCCESS, "errTxt": "", "reqNbr": payment.reqnbr, "reqSts": payment.req_sts,
                                "rtnFlg": payment.rtn_flg, "msgTxt": "", "evtIst": "", "oprSqn": ""}]}

    def _finish(self, account_no: str, yurref: str, fault: PayeeFault | None) -> None:
        payment = self._state.finish_payment(account_no, yurref, fault)
        if fault is not None and fault.outcome == "return" and payment.rtn_flg == "S":
            def bounce() -> None:
                self._state.return_payment(account_no, yurref, fault.reason)

            if fault.return_after_s > 0:
                self._later(fault.return_after_s, bounce)
            else:
                bounce()

    def pay_query(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        rows = []
        for query in _rows(body, "bb1payqrx1"):
            yurref = _field(query, "yurRef")
            for account_no in sorted(user.accounts):
                payment = self._state.payment(account_no, yurref)
                if payment is not None:
                    rows.append(payment_row(payment))
        return {"bb1payqrz1": rows}

    # -- sub-accounts ------------------------------------------------------------------------------------------

    def add_sub_account(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        row = _rows(body, "ntdmaaddx")[0]
        account_no, name, yurref = _field(row, "accnbr"), _field(row, "dmanam"), _field(row, "yurref")
        if _field(row, "dmanbr", required=False):
            raise BankRefusal("ERR_PARAM", "this sandbox numbers sub-accounts itself: dmanbr must be empty")
        if len(name) > 100 or not _YURREF.fullmatch(yurref):
            raise BankRefusal("ERR_PARAM", "dmanam must be at most 100 characters, yurref 1-30 letters or digits")
        self._state.owned_account(user.uid, account_no)
        sub = self._state.add_sub_account(account_no, name, yurref)
        return {"ntdmabadz1": [{"errcod": SUCCESS, "errtxt": "", "dmanbr": sub.dmanbr, "dmanam": sub.name}]}

    # -- statements ------------------------------------------------------------------------------------------

    def detail(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        account_no, day = _field(body, "accnbr"), _day(_field(body, "trsdat"), "trsdat")
        start_text = _field(body, "trsseq", required=False) or "0"
        if not start_text.isdigit():
            raise BankRefusal("ERR_PARAM", "trsseq must be digits")
        account = self._state.owned_account(user.uid, account_no)
        if _field(body, "bbknbr", required=False) not in ("", account.branch_no):
            raise BankRefusal("ERR_PARAM", "bbknbr is not this account's branch")
        entries = [e for e in self._state.day_entries(account_no, day) if e.seq >= int(start_text)]
        page = entries[: self._page_size]
        more = len(entries) > len(page)
        return {
            "ntrbptrsz1": [{"cotflg": "Y" if more else "N", "trsseq": str(page[-1].seq if page else start_text),
                            "dbtnbr": str(sum(1 for e in page if e.direction == "D")),
                            "dbtamt": yuan(sum(e.amount_fen for e in page if e.direction == "D")),
                            "crtnbr": str(sum(1 for e in page if e.direction == "C")),
                            "crtamt": yuan(sum(e.amount_fen for e in page if e.direction == "C"))}],
            "ntqactrsz2": [self._detail_row(e) for e in page],
        }

    @staticmethod
    def _detail_row(entry: Entry) -> dict[str, str]:
        return {
            "etydat": entry.booked_at.strftime("%Y%m%d"), "etytim": entry.booked_at.strftime("%H%M%S"),
            "vltdat": entry.day.strftime("%Y%m%d"), "trscod": "CPAA" if entry.direction == "D" else "CPAB",
            "naryur": entry.naryur, "trsamt": yuan(entry.amount_fen if entry.direction == "C" else -entry.amount_fen),
            "amtcdr": entry.direction, "trsblv": yuan(entry.balance_after_fen), "refnbr": entry.refnbr,
            "reqnbr": entry.reqnbr, "busnam": "企银支付" if entry.reqnbr else "汇入汇款", "nusage": entry.nusage,
            "yurref": entry.yurref, "rpyacc": entry.counterparty_account_no, "rpynam": entry.counterparty_name,
            "rpybnk": "", "rpyadr": "", "infflg": "1", "athflg": "N", "rsvflg": "N",
        }

    def sub_history(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        query = _rows(body, "ntdmthlsy")[0]
        account_no = _field(query, "accnbr")
        begin, end = _day(_field(query, "begdat"), "begdat"), _day(_field(query, "enddat"), "enddat")
        only = _field(query, "dmanbr", required=False)
        start_text = _field(query, "ctnkey", required=False) or "0"
        if not start_text.isdigit() or end < begin:
            raise BankRefusal("ERR_PARAM", "ctnkey must be one this bank gave, enddat not before begdat")
        self._state.owned_account(user.uid, account_no)
        entries = []
        day = begin
        while day <= end:
            entries += [e for e in self._state.day_entries(account_no, day) if e.dmanbr and e.dmanbr == (only or e.dmanbr)]
            day = date.fromordinal(day.toordinal() + 1)
        start = int(start_text)
        page = entries[start: start + self._page_size]
        next_key = str(start + len(page)) if start + len(page) < len(entries) else ""
        return {
            "ntdmthlsz": [{"accnbr": e.account_no, "dmanbr": e.dmanbr,
                           "dmanam": self._state.sub_account_name(e.account_no, e.dmanbr), "trxnbr": e.refnbr,
                           "ccynbr": "10", "trxamt": yuan(e.amount_fen), "trxdir": e.direction,
                           "trxdat": e.booked_at.strftime("%Y%m%d"), "trxtim": e.booked_at.strftime("%H%M%S"),
                           "rpyacc": e.counterparty_account_no, "rpynam": e.counterparty_name, "trxtxt": e.nusage,
                           "autflg": "1"} for e in page],
            "ntdmthlsy": [{"ctnkey": next_key}],
        }

    def history_balance(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        query = _rows(body, "ntqabinfy")[0]
        account_no = _field(query, "accnbr")
        begin, end = _day(_field(query, "bgndat"), "bgndat"), _day(_field(query, "enddat"), "enddat")
        if _field(query, "ccynbr", required=False) not in ("", "10") or end < begin or (end - begin).days > 31:
            raise BankRefusal("ERR_PARAM", "ccynbr must be 10; bgndat..enddat at most 31 days")
        self._state.owned_account(user.uid, account_no)
        rows = []
        day = begin
        while day <= end:
            rows.append({"accnbr": account_no, "ccynbr": "10", "trsdat": day.strftime("%Y%m%d"),
                         "balamt": yuan(self._state.closing_fen(account_no, day))})
            day = date.fromordinal(day.toordinal() + 1)
        return {"ntqabinfz": rows}
