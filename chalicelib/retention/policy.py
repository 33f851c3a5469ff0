"""Retention per record kind, from the stage parameters the template passes as ``PAYHUB_RETENTION`` (JSON).

Money records (payments with their attempts, refunds, the ledger) and the audit trail default to ten years:
the 2024 revision of the PRC Anti-Money Laundering Law keeps transaction records at least ten years after the
transaction, and payment institutions' own record rules ask at least five. No stage may set a money record
below five years (``MONEY_FLOOR_DAYS``), whatever its parameters say.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from chalicelib.domain.value_class import value_class

YEAR = 365
MONEY_FLOOR_DAYS = 5 * YEAR + 2  # five calendar years, leap days included
MONEY_KINDS = ("payments", "refunds", "ledger", "audit")
DEFAULT_RETENTION_DAYS: dict[str, int] = {
    "payments": 10 * YEAR + 3,  # payments and their channel attempts
    "refunds": 10 * YEAR + 3,
    "ledger": 10 * YEAR + 3,
    "audit": 10 * YEAR + 3,  # automatic decisions (state table) and operator actions (config table)
    "recon_evidence": 10 * YEAR + 3,  # channel statements, run reports (S3)
    "events": 3 * YEAR + 1,  # webhook events and their delivery attempts: what the merchant was told, when
}
# Records stay in DynamoDB this long after their last change: longer than any channel accepts a refund (WeChat Pay
# and UnionPay one year, Alipay three months for most products), so nothing still movable is ever archived.
DEFAULT_HOT_DAYS = 400
MIN_HOT_DAYS = 370


@value_class
class Policy:
    retention_days: dict[str, int]
    hot_days: int = DEFAULT_HOT_DAYS
    lock_mode: str | None = "GOVERNANCE"  # S3 Object Lock on archived records; None where the bucket has none

    def retain_until(self, kind: str, moved_at: datetime) -> datetime:
        return moved_at + timedelta(days=self.retention_days[kind])


def check(retention_days: dict[str, int], hot_days: int) -> None:
    """Refuses a policy that would lose records the rules require; names the parameter."""
    unknown = set(retention_days) - set(DEFAULT_RETENTION_DAYS)
    if unknown:
        raise ValueError(f"retention: unknown record kind(s) {sorted(unknown)}; known: {sorted(DEFAULT_RETENTION_DAYS)}")
    for kind, days in retention_days.items():
        if not isinstance(days, int) or days <= 0:
            raise ValueError(f"retention.{kind}: {days!r} is not a positive number of days")
        if kind in MONEY_KINDS and days < MONEY_FLOOR_DAYS:
            raise ValueError(f"retention.{kind}: {days} days is below the five-year floor for money records "
                             f"({MONEY_FLOOR_DAYS} days)")
    if hot_days < MIN_HOT_DAYS:
        raise ValueError(f"retention.hot_days: {hot_days} would archive records a channel may still refund "
                         f"(at least {MIN_HOT_DAYS})")
    for kind, days in retention_days.items():
        if days <= hot_days:
            raise ValueError(f"retention.{kind}: {days} days is not longer than hot_days ({hot_days})")


def from_values(values: dict[str, object] | None = None) -> Policy:
    values = dict(values or {})
    hot_days = int(values.pop("hot_days", DEFAULT_HOT_DAYS))  # type: ignore[call-overload]
    lock_mode = values.pop("lock_mode", "GOVERNANCE")
    if lock_mode not in ("GOVERNANCE", "COMPLIANCE", None):
        raise ValueError(f"retention.lock_mode: {lock_mode!r} is not GOVERNANCE, COMPLIANCE or null")
    retention = {**DEFAULT_RETENTION_DAYS, **{k: v for k, v in values.items()}}
    check(retention, hot_days)  # type: ignore[arg-type]
    return Policy(retention, hot_days, lock_mode)  # type: ignore[arg-type]


def current() -> Policy:
    """The deployed stage's policy (``PAYHUB_RETENTION``, set by the template); defaults elsewhere."""
    raw = os.environ.get("PAYHUB_RETENTION")
    return from_values(json.loads(raw) if raw else None)
