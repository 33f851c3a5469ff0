"""The matching engine: pair one Beijing day's statement rows with the hub's records, classify every difference.

Pairing
  A row pairs with the hub record of the same (kind, object_id); a row without an object_id pairs with the
  record whose channel_ref it carries, among those no row has taken yet (so such a row repeating one that
  carried the object_id is reported as channel_only rather than duplicate_row).

A pair is judged field by field. Its discrepancy's kind is the first field that differs, in this order; its
reasons list every field that differs, in the same order:
  status    money moved on one side only: the channel says ``succeeded`` and the hub says processing, pending,
            failed or closed (repair asks the channel), or the hub says ``succeeded`` and the channel does not
            (a refund still processing there, a revoked payment). When neither side moved money, their words
            may differ: status sync owns those, reconciliation proves money.
  currency  the amount's currency.
  amount    minor units.
  fee       only when the hub record has an ``expected_fee`` (what the account's fee schedule says).
A pair with no difference is matched: counted in ``matched`` and, when the money moved, its amount added to
``matched_amount`` of its currency (payments add, refunds subtract).

Unpaired
  channel_only   a row that no hub record pairs with, whatever the row's status: the hub does not know it.
  hub_only       a ``succeeded`` hub record that no row pairs with. A record that did not succeed and has no
                 row is no difference: no money moved on either side.
  duplicate_row  a row whose (kind, object_id) an earlier row already took (in file order; pooled rows come
                 first): the first row is judged as above, each repeat is a duplicate_row whose reason names
                 the line it repeats.

Cross-day pool
  An unpaired row or ``succeeded`` record whose ``occurred_at`` lies within ``near_midnight`` of a Beijing
  (UTC+8) midnight, on either side, is not reported: it goes to ``carried`` as ``Pooled(since=day)``, and the
  next day's run gets it back in ``pool``. A pooled item is paired like today's items (it may still differ in
  amount and so on); one still unpaired is carried again with its first ``since`` until ``day - since`` reaches
  ``CARRY_DAYS``, when it is reported with ``Discrepancy.since`` set to that first day. A pooled row that pairs
  with a record another row already took is a duplicate_row.

Memory and speed
  Records are indexed, rows are streamed. The index keeps one dict per kind, ``object_id -> bytes``: a
  packed header (amount, expected fee, one-byte codes for currency, fee currency and status) followed by the
  channel_ref, occurred_at (ISO 8601 text) and attempt_id: about 200 bytes a record with its key, where a
  dataclass with its Money and datetime takes over 400. A row that agrees is checked against the header
  alone and replaces the packed record by its line number (kept to name duplicates); only a difference
  rebuilds the ``StatementRow`` and ``HubRecord`` it reports. Nothing the index holds is tracked by the
  garbage collector. Callers that read files skip the dataclasses altogether with ``match_day_compact`` (or
  ``add_record_tuples`` / ``match_row_tuples``): a run does.

Order
  ``match_day`` sorts discrepancies by (object kind, object_id, discrepancy kind, line) and carried items by
  (since, kind, object_id), so the same inputs always give the same result, whatever order records come in.
  ``DayMatcher.match_rows`` yields in statement order, then ``finish`` in index order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Final

from chalicelib.channels.base import StatementKind, StatementRow
from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money
from chalicelib.recon.model import CARRY_DAYS, DayResult, Discrepancy, DiscrepancyKind, FieldDiff, HubRecord, Pooled

BEIJING: Final = timezone(timedelta(hours=8))
NEAR_MIDNIGHT: Final = timedelta(minutes=30)
SUCCEEDED: Final = "succeeded"
_BEIJING_OFFSET = BEIJING.utcoffset(None)
_MICROSECOND = timedelta(microseconds=1)
_DAY_US = 86_400 * 1_000_000

# Plain tuples for callers that read files (no dataclass per row). Times may be datetimes or ISO 8601 text
# (with an offset); a fee currency of None means the amount's currency.
#   row:    kind, object_id, channel_ref, amount_minor, currency, status, fee_minor, fee_currency, occurred_at,
#           attempt_id, line
#   record: kind, object_id, channel_ref, amount_minor, currency, status, occurred_at, attempt_id,
#           expected_fee_minor, expected_fee_currency
CompactRow = tuple[str, str, str | None, int, str, str, int | None, str | None, datetime | str, str | None, int]
CompactRecord = tuple[str, str, str | None, int, str, str, datetime | str, str | None, int | None, str | None]

# Packed record: amount, expected fee (0 when none), codes of currency, fee currency and status, flags, then
# "<channel_ref>\x1f<occurred_at>\x1f<attempt_id>" in UTF-8 (the flags tell an absent ref or attempt from "").
_HEAD = struct.Struct("<qqBBBB")
_HAS_FEE, _HAS_REF, _HAS_ATTEMPT = 1, 2, 4
_SEP = "\x1f"
_KIND_OF = {str(kind): kind for kind in StatementKind}
_KINDS = ("payment", "refund")
_KIND_BY_FIELD = {"status": DiscrepancyKind.STATUS, "currency": DiscrepancyKind.CURRENCY,
                  "amount": DiscrepancyKind.AMOUNT, "fee": DiscrepancyKind.FEE}
_ORDER = {kind: position for position, kind in enumerate(DiscrepancyKind)}

# What the index holds per object_id: the packed record while unpaired, then the label of the row that took it:
# its line, or "<since> line <n>" for a pooled row (the packed record is dropped: matching frees memory as it goes).
_Entry = bytes | int | str


class _Codes(dict[str, int]):
    """A one-byte code per distinct currency or status word, assigned on first sight."""

    def __init__(self, allowed: frozenset[str] | None = None) -> None:
        super().__init__()
        self.names: list[str] = []
        self._allowed = allowed

    def __missing__(self, name: str) -> int:
        if not isinstance(name, str) or (self._allowed is not None and name not in self._allowed):
            raise ValueError(f"unsupported value {name!r}")
        if len(self.names) == 256:
            raise ValueError("more than 256 distinct currencies or status words")
        self.names.append(name)
        self[name] = len(self.names) - 1
        return self[name]


def is_near_midnight(moment: datetime, window: timedelta = NEAR_MIDNIGHT) -> bool:
    """Whether ``moment`` lies within ``window`` of a Beijing midnight, before or after it."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"naive time {moment.isoformat()}: statement and hub times must carry an offset")
    local = moment + (_BEIJING_OFFSET - offset)  # its wall clock moved to Beijing's (the tzinfo is not read again)
    since_midnight = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + local.microsecond
    return min(since_midnight, _DAY_US - since_midnight) <= window // _MICROSECOND


def differences(row: StatementRow, record: HubRecord) -> tuple[FieldDiff, ...]:
    """Every field on which a paired row and record disagree, in the order that decides the kind."""
    found: list[FieldDiff] = []
    if (row.status == SUCCEEDED) != (record.status == SUCCEEDED):
        found.append(FieldDiff("status", record.status, row.status))
    if row.amount.currency != record.amount.currency:
        found.append(FieldDiff("currency", record.amount.currency, row.amount.currency))
    if row.amount.minor != record.amount.minor:
        found.append(FieldDiff("amount", record.amount.to_decimal_string(), row.amount.to_decimal_string()))
    fee, expected = row.fee, record.expected_fee
    # ``fee != expected``, read field by field (one Money shared by both sides is equal at once)
    if expected is not None and fee is not expected and (
            fee is None or fee.minor != expected.minor or fee.currency != expected.currency):
        found.append(FieldDiff("fee", _fee_text(expected, record.amount),
                               _fee_text(fee, row.amount) if fee is not None else None))
    return tuple(found)


def _fee_text(fee: Money, amount: Money) -> str:
    return fee.to_decimal_string() if fee.currency == amount.currency else f"{fee.to_decimal_string()} {fee.currency}"


def _moment(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.utcoffset() is None:
        raise ValueError(f"naive time {moment.isoformat()}: statement and hub times must carry an offset")
    return moment


def compact_row(row: StatementRow) -> CompactRow:
    fee = row.fee
    return (row.kind, row.object_id, row.channel_ref, row.amount.minor, row.amount.currency, row.status,
            None if fee is None else fee.minor, None if fee is None else fee.currency, row.occurred_at,
            row.attempt_id, row.line)


def compact_record(record: HubRecord) -> CompactRecord:
    fee = record.expected_fee
    return (record.kind, record.object_id, record.channel_ref, record.amount.minor, record.amount.currency,
            record.status, record.occurred_at, record.attempt_id, None if fee is None else fee.minor,
            None if fee is None else fee.currency)


def statement_row(row: CompactRow) -> StatementRow:
    kind, object_id, channel_ref, amount, currency, status, fee, fee_currency, occurred_at, attempt_id, line = row
    if kind not in _KIND_OF:
        raise ValueError(f"statement line {line}: unknown kind {kind!r}")
    return StatementRow(
        kind=_KIND_OF[kind], object_id=object_id, channel_ref=channel_ref, amount=Money(amount, currency),
        status=status, occurred_at=_moment(occurred_at),
        fee=None if fee is None else Money(fee, fee_currency or currency), attempt_id=attempt_id, line=line,
    )


class DayMatcher:
    """Matching as a stream, for one statement day: ``add_records`` (all of them), then ``match_rows`` (any
    number of calls, yielding discrepancies as they are found), then ``finish`` (hub-only records, expired pool
    items), then ``result``. ``match_day`` does all four."""

    def __init__(self, day: date, pool: Iterable[Pooled] = (), *, near_midnight: timedelta = NEAR_MIDNIGHT) -> None:
        self.day = day
        self.near_midnight = near_midnight
        self.matched = 0
        self.matched_amount: dict[str, int] = {}
        self.carried: list[Pooled] = []
        self._index: dict[str, dict[str, _Entry]] = {kind: {} for kind in _KINDS}
        self._by_ref: dict[str, dict[str, str]] = {}  # kind -> channel_ref -> object_id, built on first need
        self._currencies = _Codes(SUPPORTED_CURRENCIES)
        self._statuses = _Codes()
        self._record_since: dict[tuple[str, str], date] = {}
        self._pooled_records: set[tuple[str, str]] = set()  # pooled records not (yet) seen among today's
        self._pooled_rows: list[Pooled] = []
        self._unpaired_rows: dict[tuple[str, str, str], int | str] = {}
        self._phase = "records"
        self._add_pool(pool)

    # --- records ------------------------------------------------------------------------------------------

    def add_records(self, records: Iterable[HubRecord]) -> int:
        """Index hub records; returns how many."""
        return self.add_record_tuples(compact_record(record) for record in records)

    def add_record_tuples(self, records: Iterable[CompactRecord]) -> int:
        """Index hub records given as ``CompactRecord`` tuples; returns how many."""
        if self._phase != "records":
            raise RuntimeError("every hub record must be added before the first statement row")
        indexes, pack = self._index, _HEAD.pack
        currencies, statuses = self._currencies, self._statuses
        count = 0
        for kind, object_id, channel_ref, amount, currency, status, occurred_at, attempt_id, fee, fee_currency in records:
            index = indexes.get(kind)
            if index is None or not object_id:
                raise ValueError(f"hub record {kind!r} {object_id!r}: needs kind payment or refund and an object_id")
            if isinstance(occurred_at, datetime):
                if occurred_at.utcoffset() is None:
                    raise ValueError(f"hub record {object_id}: naive occurred_at")
                occurred_at = occurred_at.isoformat()
            tail = f"{channel_ref or ''}{_SEP}{occurred_at}{_SEP}{attempt_id or ''}"
            if tail.count(_SEP) != 2:
                raise ValueError(f"hub record {object_id}: a field holds the separator \\x1f")
            flags = (_HAS_REF if channel_ref is not None else 0) | (_HAS_ATTEMPT if attempt_id is not None else 0)
            if fee is not None:
                flags |= _HAS_FEE
            packed = pack(amount, fee or 0, currencies[currency], currencies[fee_currency or currency],
                          statuses[status], flags) + tail.encode()
            known = index.setdefault(object_id, packed)
            if known is not packed:
                if known != packed and (kind, object_id) not in self._pooled_records:
                    raise ValueError(f"two different hub records for {kind} {object_id}")
                index[object_id] = packed  # today's copy of a pooled record is the fresher one; its since stays
                self._pooled_records.discard((kind, object_id))
            count += 1
        return count

    def _add_pool(self, pool: Iterable[Pooled]) -> None:
        for item in pool:
            if item.since >= self.day:
                raise ValueError(f"pooled item since {item.since} is not before {self.day}")
            if (item.row is None) == (item.record is None):
                raise ValueError("a pooled item holds exactly one of row and record")
            if item.row is not None:
                self._pooled_rows.append(item)
            elif item.record is not None:
                self.add_records([item.record])
                self._record_since[(item.record.kind, item.record.object_id)] = item.since
                self._pooled_records.add((item.record.kind, item.record.object_id))

    # --- rows ---------------------------------------------------------------------------------------------

    def match_rows(self, rows: Iterable[StatementRow]) -> Iterator[Discrepancy]:
        """Match statement rows, yielding each discrepancy found on the way (carried rows are not yielded)."""
        return self.match_row_tuples(compact_row(row) for row in rows)

    def match_row_tuples(self, rows: Iterable[CompactRow]) -> Iterator[Discrepancy]:
        """``match_rows`` for ``CompactRow`` tuples: the hot loop. A row that agrees with its record costs a
        dict lookup and one struct unpack; everything else goes through ``_judge_row``."""
        yield from self._start_rows()
        payments, refunds = self._index["payment"], self._index["refund"]
        unpack, names = _HEAD.unpack_from, self._currencies.names
        succeeded = self._statuses[SUCCEEDED]
        # Per currency code: pairs whose money moved, and their signed sum; added to the totals when the stream
        # ends or stops.
        matched, moved_pairs, sums = 0, [0] * 256, [0] * 256
        try:
            for row in rows:
                kind, object_id, _ref, amount, currency, status, fee, fee_currency, _at, _attempt, line = row
                if kind == "payment":
                    index, sign = payments, 1
                elif kind == "refund":
                    index, sign = refunds, -1
                else:
                    raise ValueError(f"statement line {line}: unknown kind {kind!r}")
                value = index.get(object_id) if object_id else None
                if isinstance(value, bytes):
                    h_amount, h_fee, h_currency, h_fee_currency, h_status, flags = unpack(value)
                    moved = status == SUCCEEDED
                    if (h_amount == amount and names[h_currency] == currency and (h_status == succeeded) is moved
                            and (not flags & _HAS_FEE
                                 or (h_fee == fee and names[h_fee_currency] == (fee_currency or currency)))):
                        index[object_id] = line
                        matched += 1
                        if moved:
                            moved_pairs[h_currency] += 1
                            sums[h_currency] += sign * amount
                        continue
                found = self._judge_row(row, None)
                if found is not None:
                    yield found
        finally:
            self.matched += matched
            for code, name in enumerate(names):
                if moved_pairs[code]:
                    self.matched_amount[name] = self.matched_amount.get(name, 0) + sums[code]

    def _start_rows(self) -> Iterator[Discrepancy]:
        if self._phase == "finished":
            raise RuntimeError("this day is finished")
        if self._phase == "records":
            self._phase = "rows"
            for item in self._pooled_rows:
                assert item.row is not None
                found = self._judge_row(compact_row(item.row), item.since)
                if found is not None:
                    yield found

    def _judge_row(self, row: CompactRow, since: date | None) -> Discrepancy | None:
        kind, object_id, channel_ref, line = row[0], row[1], row[2], row[10]
        index = self._index.get(kind)
        if index is None:
            raise ValueError(f"statement line {line}: unknown kind {kind!r}")
        key = object_id or self._record_id_for_ref(kind, channel_ref) or ""
        entry = index.get(key) if key else None
        label: int | str = line if since is None else f"{since.isoformat()} line {line}"
        if isinstance(entry, bytes):
            index[key] = label
            return self._judge_pair(row, key, entry, since)
        if entry is not None:
            return self._duplicate(row, key, entry, since)
        dedupe = (kind, "id", key) if key else ((kind, "ref", channel_ref) if channel_ref else None)
        if dedupe is not None:
            first = self._unpaired_rows.get(dedupe)
            if first is not None:
                return self._duplicate(row, key, first, since)
            self._unpaired_rows[dedupe] = label
        unpaired = statement_row(row)
        if self._waits(unpaired.occurred_at, since):
            self.carried.append(Pooled(since=since or self.day, row=unpaired))
            return None
        return Discrepancy(DiscrepancyKind.CHANNEL_ONLY, unpaired.kind, key,
                           (FieldDiff("status", None, unpaired.status),), row=unpaired, since=since)

    def _judge_pair(self, row: CompactRow, key: str, packed: bytes, row_since: date | None) -> Discrepancy | None:
        kind = row[0]
        paired_row, record = statement_row(row), self._record(kind, key, packed)
        reasons = differences(paired_row, record)
        if not reasons:
            self.matched += 1
            if paired_row.status == SUCCEEDED:
                amount = paired_row.amount
                signed = amount.minor if kind == "payment" else -amount.minor
                self.matched_amount[amount.currency] = self.matched_amount.get(amount.currency, 0) + signed
            return None
        since = row_since or self._record_since.get((kind, key))
        return Discrepancy(_KIND_BY_FIELD[reasons[0].field], paired_row.kind, key, reasons,
                           row=paired_row, record=record, since=since)

    def _duplicate(self, row: CompactRow, key: str, first: int | str, since: date | None) -> Discrepancy:
        repeat = statement_row(row)
        first_text = f"line {first}" if isinstance(first, int) else first
        return Discrepancy(DiscrepancyKind.DUPLICATE_ROW, repeat.kind, key or repeat.object_id,
                           (FieldDiff("duplicate_of", None, first_text),), row=repeat, since=since)

    def _record_id_for_ref(self, kind: str, channel_ref: str | None) -> str | None:
        if not channel_ref:
            return None
        refs = self._by_ref.get(kind)
        if refs is None:
            refs = self._by_ref[kind] = {}
            for key, entry in self._index[kind].items():
                ref = _channel_ref(entry) if isinstance(entry, bytes) else None
                if ref is not None:
                    refs.setdefault(ref, key)
        return refs.get(channel_ref)

    # --- end of day ---------------------------------------------------------------------------------------

    def finish(self) -> Iterator[Discrepancy]:
        """Yield hub-only records (and pooled items that expire); carry the rest. Call once, after the rows."""
        yield from self._start_rows()
        self._phase = "finished"
        succeeded = self._statuses[SUCCEEDED]
        for kind, index in self._index.items():
            unpaired = [(key, entry) for key, entry in index.items() if entry.__class__ is bytes]
            for key, entry in unpaired:
                assert isinstance(entry, bytes)
                if _HEAD.unpack_from(entry)[4] != succeeded:
                    continue
                record = self._record(kind, key, entry)
                since = self._record_since.get((kind, key))
                if self._waits(record.occurred_at, since):
                    self.carried.append(Pooled(since=since or self.day, record=record))
                else:
                    yield Discrepancy(DiscrepancyKind.HUB_ONLY, record.kind, key, (FieldDiff("status", record.status, None),),
                                      record=record, since=since)
        self.carried.sort(key=_pooled_order)

    def result(self, discrepancies: Iterable[Discrepancy]) -> DayResult:
        """The day's result, discrepancies sorted; call after ``finish``."""
        if self._phase != "finished":
            raise RuntimeError("finish() the day first")
        return DayResult(
            matched=self.matched,
            matched_amount=dict(sorted(self.matched_amount.items())),
            discrepancies=sorted(discrepancies, key=_discrepancy_order),
            carried=list(self.carried),
        )

    def _waits(self, occurred_at: datetime, since: date | None) -> bool:
        if since is not None:
            return (self.day - since).days < CARRY_DAYS
        return is_near_midnight(occurred_at, self.near_midnight)

    def _record(self, kind: str, key: str, packed: bytes) -> HubRecord:
        amount, fee, currency, fee_currency, status, flags = _HEAD.unpack_from(packed)
        ref, at, attempt = packed[_HEAD.size :].decode().split(_SEP)
        names = self._currencies.names
        return HubRecord(
            kind=_KIND_OF[kind], object_id=key, channel_ref=ref if flags & _HAS_REF else None,
            amount=Money(amount, names[currency]), status=self._statuses.names[status], occurred_at=_moment(at),
            attempt_id=attempt if flags & _HAS_ATTEMPT else None,
            expected_fee=Money(fee, names[fee_currency]) if flags & _HAS_FEE else None,
        )


def _channel_ref(packed: bytes) -> str | None:
    if not _HEAD.unpack_from(packed)[5] & _HAS_REF:
        return None
    return packed[_HEAD.size :].decode().split(_SEP, 1)[0]


def _discrepancy_order(found: Discrepancy) -> tuple[str, str, int, int, date, str]:
    row = found.row
    return (found.object_kind, found.object_id, _ORDER[found.kind], row.line if row else 0, found.since or date.min,
            (row.channel_ref or "") if row else "")


def _pooled_order(item: Pooled) -> tuple[date, str, str, int, str, int]:
    if item.row is not None:
        return item.since, item.row.kind, item.row.object_id, 0, item.row.channel_ref or "", item.row.line
    assert item.record is not None
    return item.since, item.record.kind, item.record.object_id, 1, item.record.channel_ref or "", 0


def match_day(day: date, rows: Iterable[StatementRow], records: Iterable[HubRecord], pool: Iterable[Pooled] = (), *,
              near_midnight: timedelta = NEAR_MIDNIGHT) -> DayResult:
    """Match one statement day (see the module docstring for every rule). ``records`` are read whole into a
    compact index first; ``rows`` are streamed."""
    return match_day_compact(day, (compact_row(row) for row in rows), (compact_record(record) for record in records),
                             pool, near_midnight=near_midnight)


def match_day_compact(day: date, rows: Iterable[CompactRow], records: Iterable[CompactRecord],
                      pool: Iterable[Pooled] = (), *, near_midnight: timedelta = NEAR_MIDNIGHT) -> DayResult:
    """``match_day`` on ``CompactRow`` / ``CompactRecord`` tuples (the same result for the same values): what a
    run calls, with no dataclass per row or record."""
    matcher = DayMatcher(day, pool, near_midnight=near_midnight)
    matcher.add_record_tuples(records)
    found = list(matcher.match_row_tuples(rows))
    found.extend(matcher.finish())
    return matcher.result(found)
