"""The bank's books: direct-connect users, accounts with balances, sub-accounts (记账子单元), payments out and
every entry, behind one lock. Readers get copies.

Each account's entries carry a 记账序号 that restarts at 1 every Beijing day (what DCTRSINF pages by) and
the balance after them. A payment's debit is booked when it succeeds; a return (退票) books the credit back.
Balances are whole fen; nothing here knows the hub.
"""

from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from .crypto import new_sm4_key

BEIJING = timezone(timedelta(hours=8))


def now_beijing() -> datetime:
    return datetime.now(UTC).astimezone(BEIJING)


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


class BankRefusal(Exception):
    """A business refusal with the bank's code and words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class User:
    uid: str
    public_hex: str
    sm4_key: str
    accounts: set[str]


@dataclass
class Account:
    account_no: str
    name: str
    branch_no: str
    opening_fen: int  # the balance when the sandbox opened it, before any entry
    balance_fen: int


@dataclass
class SubAccount:
    account_no: str
    dmanbr: str
    name: str
    yurref: str


@dataclass
class Entry:
    account_no: str
    day: date
    seq: int  # 记账序号, from 1 each day
    refnbr: str  # 流水号, unique per account
    direction: str  # "C" | "D"
    amount_fen: int
    balance_after_fen: int
    booked_at: datetime
    counterparty_account_no: str
    counterparty_name: str
    naryur: str  # 摘要
    nusage: str  # 用途 / 附言
    yurref: str = ""
    reqnbr: str = ""
    dmanbr: str = ""  # the sub-account credited


@dataclass
class Payment:
    uid: str
    yurref: str
    reqnbr: str
    account_no: str
    fields: dict[str, str]  # bb1payopx1 as received: a resend must match it
    amount_fen: int
    req_sts: str = "BNK"
    rtn_flg: str = ""
    rtn_nar: str = ""
    opr_dat: date | None = None
    received_at: datetime = field(default_factory=now_beijing)


@dataclass
class PayeeFault:
    payee_account_no: str
    outcome: str  # "fail" | "return"
    reason: str
    remaining: int
    return_after_s: float = 0.0


class BankState:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.accounts: dict[str, Account] = {}
        self.sub_accounts: dict[tuple[str, str], SubAccount] = {}
        self._sub_by_yurref: dict[tuple[str, str], str] = {}
        self.payments: dict[tuple[str, str], Payment] = {}
        self.entries: dict[str, list[Entry]] = {}
        self.faults: list[PayeeFault] = []
        self._seen_reqids: dict[str, set[str]] = {}
        self._serial = itertools.count(1)

    # -- users and accounts -----------------------------------------------------------------------------

    def register_user(self, uid: str, public_hex: str, accounts: list[tuple[str, str, str, int]]) -> User:
        with self._lock:
            already_ours = self.users[uid].accounts if uid in self.users else set()
            for account_no, name, branch_no, balance_fen in accounts:
                if account_no in self.accounts and account_no not in already_ours:
                    raise BankRefusal("ERR_ACCOUNT", f"account {account_no} belongs to another user")
                self.accounts.setdefault(account_no, Account(account_no, name, branch_no, balance_fen, balance_fen))
                self.entries.setdefault(account_no, [])
            user = User(uid, public_hex, new_sm4_key(), {a[0] for a in accounts})
            if uid in self.users:
                user.accounts |= self.users[uid].accounts
            self.users[uid] = user
            self._seen_reqids.setdefault(uid, set())
            return copy.deepcopy(user)

    def user(self, uid: str) -> User | None:
        with self._lock:
            found = self.users.get(uid)
            return copy.deepcopy(found) if found else None

    def remember_reqid(self, uid: str, reqid: str) -> bool:
        """False when this user sent this reqid before (a replay)."""
        with self._lock:
            seen = self._seen_reqids.setdefault(uid, set())
            if reqid in seen:
                return False
            seen.add(reqid)
            return True

    def owned_account(self, uid: str, account_no: str) -> Account:
        with self._lock:
            user = self.users.get(uid)
            if user is None or account_no not in user.accounts:
                raise BankRefusal("ERR_ACCOUNT", f"账户{account_no}不是该用户可经办的账户")
            return copy.deepcopy(self.accounts[account_no])

    def account(self, account_no: str) -> Account | None:
        with self._lock:
            found = self.accounts.get(account_no)
            return copy.deepcopy(found) if found else None

    # -- sub-accounts ----------------------------------------------------------------------------------

    def add_sub_account(self, account_no: str, name: str, yurref: str) -> SubAccount:
        """Numbered by the bank (10 digits); the same yurref answers the sub-account it made the first time."""
        with self._lock:
            existing = self._sub_by_yurref.get((account_no, yurref))
            if existing is not None:
                return copy.deepcopy(self.sub_accounts[(account_no, existing)])
            dmanbr = f"{sum(1 for key in self.sub_accounts if key[0] == account_no) + 1:010d}"
            sub = SubAccount(account_no, dmanbr, name, yurref)
            self.sub_accounts[(account_no, dmanbr)] = sub
            self._sub_by_yurref[(account_no, yurref)] = dmanbr
            return copy.deepcopy(sub)

    def resolve_credit_target(self, number: str) -> tuple[str, str]:
        """An account number a payer wrote: a main account, or a main account followed by a sub-account's number."""
        with self._lock:
            if number in self.accounts:
                return number, ""
            for (account_no, dmanbr) in self.sub_accounts:
                if number == account_no + dmanbr:
                    return account_no, dmanbr
            raise BankRefusal("ERR_ACCOUNT", f"收方账号{number}不存在")

    # -- money ---------------------------------------------------------------------------------------------

    def _book(self, account_no: str, direction: str, amount_fen: int, counterparty: tuple[str, str], naryur: str,
              nusage: str, *, yurref: str = "", reqnbr: str = "", dmanbr: str = "") -> Entry:
        account = self.accounts[account_no]
        account.balance_fen += amount_fen if direction == "C" else -amount_fen
        at = now_beijing()
        same_day = [e for e in self.entries[account_no] if e.day == at.date()]
        entry = Entry(account_no, at.date(), len(same_day) + 1, f"K{at:%y%m%d}{next(self._serial):08d}", direction,
                      amount_fen, account.balance_fen, at, counterparty[0], counterparty[1], naryur, nusage,
                      yurref, reqnbr, dmanbr)
        self.entries[account_no].append(entry)
        return entry

    def credit(self, target: str, payer_account_no: str, payer_name: str, amount_fen: int, postscript: str) -> Entry:
        """A payer business's transfer arriving: to the account, or to one of its sub-accounts."""
        if amount_fen <= 0:
            raise BankRefusal("ERR_PARAM", "amount must be positive")
        with self._lock:
            account_no, dmanbr = self.resolve_credit_target(target)
            return copy.deepcopy(self._book(account_no, "C", amount_fen, (payer_account_no, payer_name), "转账汇款",
                                            postscript, dmanbr=dmanbr))

    def add_fault(self, fault: PayeeFault) -> None:
        with self._lock:
            self.faults.append(fault)

    def take_fault(self, payee_account_no: str) -> PayeeFault | None:
        with self._lock:
            for fault in self.faults:
                if fault.payee_account_no == payee_account_no and fault.remaining > 0:
                    fault.remaining -= 1
                    return copy.deepcopy(fault)
            return None

    def accept_payment(self, uid: str, account_no: str, fields: dict[str, str], amount_fen: int) -> tuple[Payment, bool]:
        """(the payment, whether it is new). A resend with the same fields answers the first payment."""
        with self._lock:
            key = (account_no, fields["yurRef"])
            existing = self.payments.get(key)
            if existing is not None:
                if existing.fields != fields:
                    raise BankRefusal("ERR_DUPREF", "业务参考号重复: a payment with this yurRef and other fields exists")
                return copy.deepcopy(existing), False
            payment = Payment(uid, fields["yurRef"], f"{next(self._serial):010d}", account_no, dict(fields),
                              amount_fen)
            self.payments[key] = payment
            return copy.deepcopy(payment), True

    def finish_payment(self, account_no: str, yurref: str, fault: PayeeFault | None) -> Payment:
        """The bank's processing: fails on a fault or a short balance, else debits the account."""
        with self._lock:
            payment = self.payments[(account_no, yurref)]
            if payment.req_sts == "FIN":
                return copy.deepcopy(payment)
            today = now_beijing().date()
            payment.req_sts, payment.opr_dat = "FIN", today
            if fault is not None and fault.outcome == "fail":
                payment.rtn_flg, payment.rtn_nar = "F", fault.reason
            elif self.accounts[account_no].balance_fen < payment.amount_fen:
                payment.rtn_flg, payment.rtn_nar = "F", "账户余额不足"
            else:
                payment.rtn_flg = "S"
                self._book(account_no, "D", payment.amount_fen, (payment.fields["crtAcc"], payment.fields["crtNam"]),
                           "汇出", payment.fields.get("nusAge", ""), yurref=yurref, reqnbr=payment.reqnbr)
            return copy.deepcopy(payment)

    def return_payment(self, account_no: str, yurref: str, reason: str) -> Payment:
        """退票: the payee's bank sent a succeeded payment back; the money is credited back to the account."""
        with self._lock:
            payment = self.payments.get((account_no, yurref))
            if payment is None or payment.req_sts != "FIN" or payment.rtn_flg != "S":
                raise BankRefusal("ERR_PARAM", f"payment {yurref} has not succeeded, so it cannot be returned")
            payment.rtn_flg, payment.rtn_nar, payment.opr_dat = "B", reason, now_beijing().date()
            self._book(account_no, "C", payment.amount_fen, (payment.fields["crtAcc"], payment.fields["crtNam"]),
                       "退票", reason, yurref=yurref, reqnbr=payment.reqnbr)
            return copy.deepcopy(payment)

    def payment(self, account_no: str, yurref: str) -> Payment | None:
        with self._lock:
            found = self.payments.get((account_no, yurref))
            return copy.deepcopy(found) if found else None

    # -- statements ------------------------------------------------------------------------------------------

    def day_entries(self, account_no: str, day: date) -> list[Entry]:
        with self._lock:
            return [copy.deepcopy(e) for e in self.entries.get(account_no, []) if e.day == day]

    def closing_fen(self, account_no: str, day: date) -> int:
        with self._lock:
            account = self.accounts[account_no]
            return account.opening_fen + sum(e.amount_fen if e.direction == "C" else -e.amount_fen
                                             for e in self.entries[account_no] if e.day <= day)

    def sub_account_name(self, account_no: str, dmanbr: str) -> str:
        with self._lock:
            sub = self.sub_accounts.get((account_no, dmanbr))
            return sub.name if sub else ""

    def view(self) -> dict[str, Any]:
        """Everything received and booked, in clear, for the control API."""
        with self._lock:
            return {
                "accounts": [{"account_no": a.account_no, "name": a.name, "balance": yuan(a.balance_fen)}
                             for a in self.accounts.values()],
                "sub_accounts": [{"account_no": s.account_no, "dmanbr": s.dmanbr, "name": s.name,
                                  "yurref": s.yurref, "virtual_account_no": s.account_no + s.dmanbr}
                                 for s in self.sub_accounts.values()],
                "transfers": [{"account_no": p.account_no, "yurref": p.yurref, "reqnbr": p.reqnbr,
                               "payee_account_no": p.fields.get("crtAcc"), "payee_name": p.fields.get("crtNam"),
                               "amount": yuan(p.amount_fen), "req_sts": p.req_sts, "rtn_flg": p.rtn_flg,
                               "rtn_nar": p.rtn_nar} for p in self.payments.values()],
            }
