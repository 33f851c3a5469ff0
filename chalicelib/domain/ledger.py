"""Double-entry journal. Entries are append-only; every journal sums to zero per currency.

Sign convention: positive = debit, negative = credit. Accounts:
- ``channel_clearing:<account_id>:<CCY>`` (asset): money the channel holds for us.
- ``merchant_payable:<merchant_id>:<CCY>`` (liability): money we owe the merchant.
A payment success debits clearing and credits the merchant; a refund reverses that. Corrections are new
journals, never edits.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from chalicelib.domain.money import Money
from chalicelib.domain.value_class import value_class


@value_class
class Entry:
    """One line of a journal: an account debited (positive) or credited (negative)."""

    account: str
    amount: int  # signed minor units: debit > 0, credit < 0
    currency: str


@value_class
class Journal:
    """A balanced set of entries posted once for one fact (a capture, a refund)."""

    journal_id: str  # deterministic per (purpose, object): a second posting of the same fact is refused
    purpose: str
    reference: str
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        totals: dict[str, int] = defaultdict(int)
        for entry in self.entries:
            if entry.amount == 0:
                raise ValueError("a ledger entry must move money")
            totals[entry.currency] += entry.amount
        unbalanced = {ccy: total for ccy, total in totals.items() if total != 0}
        if unbalanced or len(self.entries) < 2:
            raise ValueError(f"journal {self.journal_id} does not balance: {unbalanced}")


def clearing_account(channel_account_id: str, currency: str) -> str:
    return f"channel_clearing:{channel_account_id}:{currency}"


def merchant_payable_account(merchant_id: str, currency: str) -> str:
    return f"merchant_payable:{merchant_id}:{currency}"


def journal_id(purpose: str, reference: str) -> str:
    return "jrn_" + hashlib.sha256(f"{purpose}:{reference}".encode()).hexdigest()[:24]


def payment_captured(attempt_id: str, channel_account_id: str, merchant_id: str, amount: Money) -> Journal:
    return Journal(
        journal_id=journal_id("payment_captured", attempt_id),
        purpose="payment_captured",
        reference=attempt_id,
        entries=(
            Entry(clearing_account(channel_account_id, amount.currency), amount.minor, amount.currency),
            Entry(merchant_payable_account(merchant_id, amount.currency), -amount.minor, amount.currency),
        ),
    )


def refund_paid(refund_id: str, channel_account_id: str, merchant_id: str, amount: Money) -> Journal:
    return Journal(
        journal_id=journal_id("refund_paid", refund_id),
        purpose="refund_paid",
        reference=refund_id,
        entries=(
            Entry(merchant_payable_account(merchant_id, amount.currency), amount.minor, amount.currency),
            Entry(clearing_account(channel_account_id, amount.currency), -amount.minor, amount.currency),
        ),
    )
