"""The values reconciliation speaks: hub records as a run reads them, differences, and the carry-over pool.

Statement rows come from each channel adapter's ``parse_statement`` as ``StatementRow`` / ``StatementSummary``
(``chalicelib.channels.base``); the matching engine (``chalicelib.recon.matching``) pairs them with
``HubRecord`` values and yields ``Discrepancy`` values. Pure: no I/O, no framework.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from chalicelib.channels.base import StatementKind, StatementRow
from chalicelib.domain.money import Money
from chalicelib.domain.value_class import value_class

CARRY_DAYS = 3  # an unmatched row or record near midnight waits this many days before it is a difference


@value_class(slots=True)
class HubRecord:
    """One attempt or refund as the hub holds it for the statement day. ``status`` is the hub state
    (``succeeded`` for money that moved; ``processing``, ``failed``... otherwise)."""

    kind: StatementKind
    object_id: str  # attempt_id / refund_id: the id the channel statement carries
    channel_ref: str | None
    amount: Money
    status: str
    occurred_at: datetime  # when the money moved (success time), timezone-aware
    attempt_id: str | None = None  # refunds: the attempt they belong to
    expected_fee: Money | None = None  # when the account's fee schedule says what the channel should charge


class DiscrepancyKind(enum.StrEnum):
    CHANNEL_ONLY = "channel_only"  # the statement has it, the hub has no record of it (no success: STATUS)
    HUB_ONLY = "hub_only"  # the hub recorded success, the statement has no row
    AMOUNT = "amount"
    CURRENCY = "currency"
    STATUS = "status"
    FEE = "fee"
    DUPLICATE_ROW = "duplicate_row"


@value_class(slots=True)
class FieldDiff:
    field: str
    hub: str | None
    channel: str | None


@value_class(slots=True)
class Discrepancy:
    kind: DiscrepancyKind
    object_kind: StatementKind
    object_id: str
    reasons: tuple[FieldDiff, ...] = ()
    row: StatementRow | None = None
    record: HubRecord | None = None
    since: date | None = None  # set when a pooled item is involved: the statement day it first went unmatched


@value_class(slots=True)
class Pooled:
    """An unmatched row or record waiting for a later day's statement (or hub records) to pair with."""

    since: date  # the statement day it first went unmatched
    row: StatementRow | None = None
    record: HubRecord | None = None


@dataclass
class DayResult:
    """What matching one day produced."""

    matched: int = 0
    matched_amount: dict[str, int] = field(default_factory=dict)  # currency -> minor units, payments minus refunds
    discrepancies: list[Discrepancy] = field(default_factory=list)
    carried: list[Pooled] = field(default_factory=list)  # still waiting; goes into the next day's pool
