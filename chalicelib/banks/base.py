"""The seam between the hub and a bank it holds accounts at (the reserve account, its virtual sub-accounts).

A bank adapter turns these values into the bank's own messages and back; everything else (the ledger, the
settlement and payout state, matching credits to orders) is the bank's caller's and never knows the bank.

References are ours and unique: the bank refuses (or answers with the first outcome for) a second transfer
under a reference it has seen, which is what makes a resend after a timeout safe.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from chalicelib.domain.money import Money
from chalicelib.domain.value_class import value_class


class TransferState(StrEnum):
    PROCESSING = "processing"  # accepted, not final (the bank's own approval, clearing, the other bank)
    SUCCEEDED = "succeeded"  # the money left our account
    FAILED = "failed"  # refused or failed before leaving: nothing moved
    RETURNED = "returned"  # left, then came back (the other bank refused it): the money is ours again


FINAL_TRANSFER_STATES = frozenset({TransferState.SUCCEEDED, TransferState.FAILED, TransferState.RETURNED})


@value_class
class BankAccountRef:
    """One of our accounts at a bank, as configured: what the adapter needs to address it."""

    reserve_id: str  # the hub's name for it (ledger ``reserve:<reserve_id>:<CCY>``)
    bank: str  # adapter name, e.g. "cmb"
    account_no: str
    account_name: str


@value_class
class Transfer:
    """Money out of one of our accounts to a payee's bank account."""

    reference: str  # ours, unique per transfer, [A-Za-z0-9]{1,30}
    amount: Money
    payee_account_no: str
    payee_name: str
    payee_bank_name: str | None = None  # needed for another bank
    payee_bank_code: str | None = None  # CNAPS bank code (12 digits), for another bank
    purpose: str = ""  # 用途 / postscript the payee sees


@value_class
class TransferStatus:
    reference: str
    state: TransferState
    bank_reference: str | None = None  # the bank's own serial for it
    failure_reason: str | None = None  # the bank's words, when failed or returned
    value_day: date | None = None  # the day the money left (or came back), when final


@value_class
class BankEntry:
    """One line of an account's statement (交易明细): a credit into it or a debit out of it."""

    account_no: str  # ours; for a virtual sub-account, the main account
    direction: str  # "credit" | "debit"
    amount: Money  # positive
    value_day: date
    booked_at: datetime  # timezone-aware
    bank_reference: str  # the bank's serial for the entry, unique per account
    counterparty_account_no: str
    counterparty_name: str
    postscript: str  # 附言 / 摘要 as the payer wrote it (a remittance reference lives here)
    virtual_account_no: str | None = None  # the sub-account credited, when the credit went to one
    transfer_reference: str | None = None  # for our own debits: the reference we gave the transfer


@value_class
class BankStatement:
    account_no: str
    day: date
    opening_balance: Money
    closing_balance: Money
    entries: tuple[BankEntry, ...]


class BankAdapter(Protocol):
    name: str

    def submit_transfer(self, account: BankAccountRef, transfer: Transfer) -> TransferStatus:
        """Send one transfer. Idempotent per ``transfer.reference``: a resend answers the first one's status.
        Raises ``ChannelError`` (retryable or not) when the bank could not be asked or refused the message."""
        ...

    def transfer_status(self, account: BankAccountRef, reference: str) -> TransferStatus:
        ...

    def open_virtual_account(self, account: BankAccountRef, reference: str, name: str) -> str:
        """A virtual sub-account number under ``account`` dedicated to ``reference`` (an order): a payer's
        transfer to it is credited to the main account and names the sub-account on the statement."""
        ...

    def statement(self, account: BankAccountRef, day: date) -> BankStatement:
        """Every entry value-dated ``day`` on ``account`` and its sub-accounts, with the day's balances."""
        ...

