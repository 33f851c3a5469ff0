"""Batch payouts: what a batch may hold, the report that says why a line is refused, and when a person must
approve before any money moves.

A batch is up to ``MAX_ITEMS`` transfers out of the reserve to payees' bank accounts (a merchant's suppliers,
refunds to a bank account, the merchant itself), all in one currency, paid from the merchant's payable. It is
validated whole before anything is written: one refused line refuses the batch, and the report names every
refused line with its field, so a file can be fixed in one pass.

Approval (maker-checker): a batch waits for an operator other than its maker when any item reaches the
merchant's single-payment threshold (a large payment), when its total reaches the batch threshold, or when it
would take the merchant's approved total for the Beijing day past its daily limit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from chalicelib.domain.money import SUPPORTED_CURRENCIES
from chalicelib.domain.value_class import value_class

MAX_ITEMS = 10_000
MAX_AMOUNT_MINOR = 10**11  # 1,000,000,000.00 in a two-decimal currency: far above any single transfer
_ITEM_REF = re.compile(r"[A-Za-z0-9_-]{1,32}")
_ACCOUNT_NO = re.compile(r"[0-9]{6,32}")
_BANK_CODE = re.compile(r"[0-9]{12}")  # CNAPS participant code
FIELDS = ("item_ref", "amount", "payee_account_no", "payee_name", "payee_bank_name", "payee_bank_code", "purpose")


class ItemState(StrEnum):
    PENDING = "pending"  # accepted, not yet sent (waiting for approval, or queued)
    PROCESSING = "processing"  # sent; the bank has not said how it ended
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # refused or failed: its money is released back to the merchant
    RETURNED = "returned"  # paid, then sent back by the payee's bank: released too


ITEM_FINAL = frozenset({ItemState.SUCCEEDED, ItemState.FAILED, ItemState.RETURNED})
RETRYABLE = frozenset({ItemState.FAILED, ItemState.RETURNED})


class BatchState(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"  # a checker refused it: nothing moved
    PROCESSING = "processing"  # funds reserved, items being sent
    COMPLETED = "completed"  # every item final (some may have failed: retry sends those only)


@value_class
class PayoutItem:
    line: int  # 1-based: the file's data line or the list's position
    item_ref: str  # the merchant's id for the item, unique in the batch
    amount_minor: int
    payee_account_no: str
    payee_name: str
    payee_bank_name: str | None
    payee_bank_code: str | None
    purpose: str


@value_class
class Problem:
    line: int
    field: str
    message: str


@value_class
class ValidationReport:
    items: int
    total_minor: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def public(self) -> dict[str, Any]:
        return {"items": self.items, "total": self.total_minor, "valid": self.ok,
                "problems": [{"line": p.line, "field": p.field, "message": p.message} for p in self.problems]}


def _text(row: Mapping[str, Any], name: str) -> Any:
    """The stripped text of ``name``, None when absent or blank; a non-text value as it is (refused later)."""
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value.strip() if isinstance(value, str) else value


def _amount(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,15}", raw.strip()):  # ASCII digits only ("²" is a digit too)
        return int(raw.strip())
    return None


def _item(line: int, row: Mapping[str, Any], seen: dict[str, int], problems: list[Problem]) -> PayoutItem | None:
    found = len(problems)

    def refuse(field: str, message: str) -> None:
        problems.append(Problem(line, field, message))

    unknown = sorted(set(row) - set(FIELDS))
    for name in unknown:
        refuse(name, "unknown field")
    item_ref = _text(row, "item_ref")
    if not isinstance(item_ref, str) or not _ITEM_REF.fullmatch(item_ref):
        refuse("item_ref", "required: 1-32 letters, digits, _ or -")
    elif item_ref in seen:
        refuse("item_ref", f"repeats line {seen[item_ref]}")
    else:
        seen[item_ref] = line
    amount = _amount(row.get("amount"))
    if amount is None or not 1 <= amount <= MAX_AMOUNT_MINOR:
        refuse("amount", f"required: a whole number of minor units, 1 to {MAX_AMOUNT_MINOR}")
    account_no = _text(row, "payee_account_no")
    if not isinstance(account_no, str) or not _ACCOUNT_NO.fullmatch(account_no):
        refuse("payee_account_no", "required: 6-32 digits")
    name = _text(row, "payee_name")
    if not isinstance(name, str) or len(name) > 60:
        refuse("payee_name", "required: at most 60 characters")
    bank_code, bank_name = _text(row, "payee_bank_code"), _text(row, "payee_bank_name")
    if bank_code is not None and (not isinstance(bank_code, str) or not _BANK_CODE.fullmatch(bank_code)):
        refuse("payee_bank_code", "a CNAPS bank code is 12 digits")
    if (bank_code is None) != (bank_name is None):
        refuse("payee_bank_name" if bank_name is None else "payee_bank_code",
               "another bank's payee needs both its bank name and its 12-digit CNAPS code")
    if bank_name is not None and (not isinstance(bank_name, str) or len(bank_name) > 60):
        refuse("payee_bank_name", "at most 60 characters")
    purpose = _text(row, "purpose") or ""
    if not isinstance(purpose, str) or len(purpose) > 50:
        refuse("purpose", "at most 50 characters")
    if len(problems) > found:
        return None
    assert amount is not None
    return PayoutItem(line, item_ref, amount, account_no, name, bank_name, bank_code, purpose)


def validate(rows: Iterable[Mapping[str, Any]], currency: str) -> tuple[list[PayoutItem], ValidationReport]:
    """Every row checked; the items only when every row is valid."""
    problems: list[Problem] = []
    if currency not in SUPPORTED_CURRENCIES:
        problems.append(Problem(0, "currency", f"unsupported currency {currency!r}"))
    items: list[PayoutItem] = []
    seen: dict[str, int] = {}
    count = 0
    for count, row in enumerate(rows, start=1):
        if count > MAX_ITEMS:
            problems.append(Problem(count, "items", f"a batch holds at most {MAX_ITEMS} items"))
            break
        if not isinstance(row, Mapping):
            problems.append(Problem(count, "items", "each item is an object"))
            continue
        item = _item(count, row, seen, problems)
        if item is not None:
            items.append(item)
    if count == 0:
        problems.append(Problem(0, "items", "a batch holds at least one item"))
    total = sum(item.amount_minor for item in items)
    report = ValidationReport(min(count, MAX_ITEMS), total, tuple(problems))
    return (items if report.ok else []), report


@value_class
class ApprovalPolicy:
    """A merchant's limits (minor units of the batch's currency); 0 means "always ask"."""

    single_threshold_minor: int  # an item at or above this is a large payment
    batch_threshold_minor: int  # a batch whose total is at or above this
    daily_limit_minor: int  # the day's approved payouts may not pass this without a checker

    def __post_init__(self) -> None:
        for name in ("single_threshold_minor", "batch_threshold_minor", "daily_limit_minor"):
            if not 0 <= getattr(self, name) <= 10**13:
                raise ValueError(f"{name} must be 0..10^13")


DEFAULT_POLICY = ApprovalPolicy(single_threshold_minor=5_000_000, batch_threshold_minor=50_000_000,
                                daily_limit_minor=200_000_000)  # 50k, 500k and 2M yuan


def approval_reasons(policy: ApprovalPolicy, items: Iterable[PayoutItem], today_total_minor: int) -> list[str]:
    """Why the batch must wait for a checker (empty: it may go at once)."""
    listed = list(items)
    reasons = []
    large = [item.line for item in listed if item.amount_minor >= policy.single_threshold_minor]
    if large:
        reasons.append(f"{len(large)} item(s) at or above the single-payment threshold "
                       f"{policy.single_threshold_minor} (first on line {large[0]})")
    total = sum(item.amount_minor for item in listed)
    if total >= policy.batch_threshold_minor:
        reasons.append(f"total {total} at or above the batch threshold {policy.batch_threshold_minor}")
    if today_total_minor + total > policy.daily_limit_minor:
        reasons.append(f"today's payouts would reach {today_total_minor + total}, over the daily limit "
                       f"{policy.daily_limit_minor}")
    return reasons


def content_digest(currency: str, items: Iterable[PayoutItem]) -> str:
    """What makes two submissions of one batch id the same batch: currency and every item, in order."""
    digest = hashlib.sha256(currency.encode())
    for item in items:
        digest.update("\x1f".join(str(v) for v in (item.item_ref, item.amount_minor, item.payee_account_no,
                                                   item.payee_name, item.payee_bank_name, item.payee_bank_code,
                                                   item.purpose)).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def transfer_reference(batch_id: str, line: int, attempt: int) -> str:
    """The bank reference of one item's attempt: unique, at most 30 letters and digits, stable on resend."""
    return "P" + hashlib.sha256(f"{batch_id}:{line}:{attempt}".encode()).hexdigest()[:29].upper()
