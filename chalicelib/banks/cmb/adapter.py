"""``CMBAdapter``: the ``BankAdapter`` seam (chalicelib/banks/base.py) over CMB's direct connect.

Accounts are looked up by ``reserve_id`` (config and keys: chalicelib/banks/accounts.py). Every answer is
verified by ``CMBClient``; a shape the funcode does not promise is a ``ChannelError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from chalicelib.banks.accounts import BankAccount, bank_account
from chalicelib.banks.base import BankAccountRef, BankEntry, BankStatement, Transfer, TransferStatus
from chalicelib.banks.cmb import messages
from chalicelib.banks.cmb.client import CMBClient
from chalicelib.banks.cmb.messages import SUCCESS, MessageError
from chalicelib.channels.base import Transport
from chalicelib.domain.clock import utcnow
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.money import Money

# Pages are bounded so that a bank answering "more" for ever cannot hold a worker for ever.
_PAGES_MAX = 1000
# BB1PAYOP item codes that mean "a payment under this yurRef exists with other fields": not a refusal (the
# first one may be moving money), and a resend will not help: only a query tells.
_DUPLICATE_CODES = frozenset({"ERR_DUPREF"})


class CMBAdapter:
    name = "cmb"

    def __init__(self, transport: Transport, *, accounts: Callable[[str], BankAccount | None] = bank_account,
                 clock: Callable[[], datetime] = utcnow, timeout_s: float = 15.0) -> None:
        self._client = CMBClient(transport, clock, timeout_s)
        self._accounts = accounts

    # -- the seam ------------------------------------------------------------------------------------------

    def submit_transfer(self, account: BankAccountRef, transfer: Transfer) -> TransferStatus:
        """BB1PAYOP, then BB1PAYQR for where it stands (the pay answer says accepted, not how it ended). A resend
        under the same reference is answered by the bank with the first payment; the query then tells its state."""
        bank = self._account(account)
        try:
            body = messages.pay_body(bank.config.account_no, bank.config.bus_mod, transfer)
        except ValueError as exc:
            raise ChannelError(f"CMB BB1PAYOP not sent: {exc}", channel_code="ERR_PARAM", refused=True) from None
        answer = self._client.call(bank, "BB1PAYOP", body)
        errcod, errtxt, _ = self._parsed("BB1PAYOP", messages.pay_answer, answer, transfer.reference)
        if errcod in _DUPLICATE_CODES:
            raise ChannelError(f"CMB BB1PAYOP {errcod}: {errtxt[:200]}", channel_code=errcod)
        if errcod != SUCCESS:
            # The bank refused this payment outright: nothing was created under the reference.
            raise ChannelError(f"CMB BB1PAYOP {errcod}: {errtxt[:200]}", channel_code=errcod, refused=True)
        return self.transfer_status(account, transfer.reference)

    def transfer_status(self, account: BankAccountRef, reference: str) -> TransferStatus:
        bank = self._account(account)
        try:
            body = messages.pay_query_body(reference)
        except ValueError as exc:
            raise ChannelError(f"CMB BB1PAYQR not sent: {exc}", channel_code="ERR_PARAM", refused=True) from None
        answer = self._client.call(bank, "BB1PAYQR", body)
        status = self._parsed("BB1PAYQR", messages.status_from_query, answer, reference)
        if status is None:
            raise ChannelError(f"CMB BB1PAYQR: no payment under {reference}", channel_code="NOT_FOUND",
                               refused=True)
        return status

    def open_virtual_account(self, account: BankAccountRef, reference: str, name: str) -> str:
        """NTDMAADD; the full number a payer transfers to is the main account number followed by the
        sub-account's number (记账子单元编号)."""
        bank = self._account(account)
        try:
            body = messages.add_sub_account_body(bank.config.account_no, bank.config.bus_mod, reference, name)
        except ValueError as exc:
            raise ChannelError(f"CMB NTDMAADD not sent: {exc}", channel_code="ERR_PARAM", refused=True) from None
        answer = self._client.call(bank, "NTDMAADD", body)
        errcod, errtxt, dmanbr = self._parsed("NTDMAADD", messages.sub_account_answer, answer)
        if errcod != SUCCESS:
            raise ChannelError(f"CMB NTDMAADD {errcod}: {errtxt[:200]}", channel_code=errcod, refused=True)
        return bank.config.account_no + dmanbr

    def statement(self, account: BankAccountRef, day: date) -> BankStatement:
        """DCTRSINF pages for the day's entries, NTDMTHLS pages for which credits went to which sub-account,
        NTQABINF for the day's closing balance; the opening balance is the closing one less the day's net.
        The entries' running balances (trsblv) must agree with both, or the statement is refused."""
        bank = self._account(account)
        config = bank.config
        rows: list[dict[str, Any]] = []
        next_seq, pages = 0, 0
        while True:
            answer = self._client.call(bank, "DCTRSINF",
                                        messages.detail_body(config.branch_no, config.account_no, day, next_seq))
            page, last_seq, more = self._parsed("DCTRSINF", messages.detail_page, answer, config.account_no)
            rows += page
            pages += 1
            if not more:
                break
            if last_seq + 1 <= next_seq or pages >= _PAGES_MAX:
                raise ChannelError("CMB DCTRSINF: the breakpoint does not move forward", channel_code="BAD_PAGING")
            next_seq = last_seq + 1
        credited: dict[str, str] = {}
        ctnkey, pages = "", 0
        while True:
            answer = self._client.call(bank, "NTDMTHLS", messages.sub_history_body(config.account_no, day, ctnkey))
            page_credits, next_key = self._parsed("NTDMTHLS", messages.sub_history_page, answer, config.account_no)
            credited.update(page_credits)
            pages += 1
            if not next_key:
                break
            if next_key == ctnkey or pages >= _PAGES_MAX:
                raise ChannelError("CMB NTDMTHLS: the continuation key does not move", channel_code="BAD_PAGING")
            ctnkey = next_key
        entries = tuple(self._parsed("DCTRSINF", messages.entry_from_detail, row, config.account_no, credited)
                        for row in rows)
        if any(e.booked_at.date() != day for e in entries):
            raise ChannelError(f"CMB DCTRSINF: an entry booked on another day than {day}",
                               channel_code="STATEMENT_INCONSISTENT")
        if len({e.bank_reference for e in entries}) != len(entries):
            raise ChannelError("CMB DCTRSINF: one refnbr on two entries (a page repeated?)",
                               channel_code="STATEMENT_INCONSISTENT")
        closing = self._parsed("NTQABINF", messages.closing_balance,
                               self._client.call(bank, "NTQABINF",
                                                 messages.balance_body(config.branch_no, config.account_no, day)),
                               day)
        net = sum(e.amount.minor if e.direction == "credit" else -e.amount.minor for e in entries)
        opening = Money(closing.minor - net, "CNY")
        _check_running_balances(rows, entries, opening, closing)
        return BankStatement(account_no=config.account_no, day=day, opening_balance=opening, closing_balance=closing,
                             entries=entries)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _account(self, ref: BankAccountRef) -> BankAccount:
        bank = self._accounts(ref.reserve_id)
        if bank is None:
            raise ChannelError(f"bank account {ref.reserve_id} is not configured", channel_code="NO_ACCOUNT",
                               refused=True)
        if bank.config.bank != self.name or bank.config.account_no != ref.account_no:
            raise ChannelError(f"bank account {ref.reserve_id} is not CMB account {ref.account_no}",
                               channel_code="NO_ACCOUNT", refused=True)
        return bank

    @staticmethod
    def _parsed(funcode: str, parse: Callable[..., Any], *args: Any) -> Any:
        try:
            return parse(*args)
        except MessageError as exc:
            raise ChannelError(f"CMB {funcode} answer malformed: {exc}", channel_code="RESPONSE_MALFORMED") from None


def _check_running_balances(rows: list[dict[str, Any]], entries: tuple[BankEntry, ...], opening: Money,
                            closing: Money) -> None:
    running = opening.minor
    for row, entry in zip(rows, entries, strict=True):
        running += entry.amount.minor if entry.direction == "credit" else -entry.amount.minor
        try:
            stated = messages.balance_after(row)
        except MessageError as exc:
            raise ChannelError(f"CMB DCTRSINF answer malformed: {exc}", channel_code="RESPONSE_MALFORMED") from None
        if stated.minor != running:
            raise ChannelError(f"CMB DCTRSINF: entry {entry.bank_reference} states balance {stated.to_decimal_string()}"
                               f", the entries before it give {Money(running, 'CNY').to_decimal_string()}",
                               channel_code="STATEMENT_INCONSISTENT")
    if running != closing.minor:
        raise ChannelError("CMB statement: entries do not lead to the closing balance", channel_code="STATEMENT_INCONSISTENT")
