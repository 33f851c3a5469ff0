"""The matching engine: every class of difference with its field reasons, totals, the cross-day pool, order."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import StatementKind, StatementRow
from chalicelib.domain.money import Money
from chalicelib.recon.matching import (
    BEIJING,
    DayMatcher,
    compact_record,
    compact_row,
    is_near_midnight,
    match_day,
)
from chalicelib.recon.model import CARRY_DAYS, Discrepancy, DiscrepancyKind, FieldDiff, HubRecord, Pooled

DAY = date(2024, 5, 19)
PAY, REF = StatementKind.PAYMENT, StatementKind.REFUND
K = DiscrepancyKind


def at(hour: int, minute: int = 0, second: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=BEIJING)


def row(object_id: str = "att_1", *, kind: StatementKind = PAY, amount: int = 8888, currency: str = "CNY",
        status: str = "succeeded", fee: int | None = None, when: datetime | None = None, ref: str | None = "wx_1",
        line: int = 1, attempt_id: str | None = None) -> StatementRow:
    return StatementRow(kind=kind, object_id=object_id, channel_ref=ref, amount=Money(amount, currency), status=status,
                        occurred_at=when or at(12), fee=None if fee is None else Money(fee, currency),
                        attempt_id=attempt_id, line=line)


def record(object_id: str = "att_1", *, kind: StatementKind = PAY, amount: int = 8888, currency: str = "CNY",
           status: str = "succeeded", fee: int | None = None, when: datetime | None = None, ref: str | None = "wx_1",
           attempt_id: str | None = None) -> HubRecord:
    return HubRecord(kind=kind, object_id=object_id, channel_ref=ref, amount=Money(amount, currency), status=status,
                     occurred_at=when or at(12, 0, 2), attempt_id=attempt_id,
                     expected_fee=None if fee is None else Money(fee, currency))


def only(found: list[Discrepancy]) -> Discrepancy:
    assert len(found) == 1, found
    return found[0]


# --- pairs ------------------------------------------------------------------------------------------------


def test_identical_pair_is_matched_and_counted() -> None:
    result = match_day(DAY, [row()], [record()])
    assert result.matched == 1 and result.discrepancies == [] and result.carried == []
    assert result.matched_amount == {"CNY": 8888}


def test_matched_amount_is_payments_minus_refunds_per_currency() -> None:
    rows = [row("att_1", amount=10_000, line=1), row("re_1", kind=REF, amount=3_000, ref="wr_1", line=2),
            row("att_2", amount=500, currency="USD", ref="wx_2", line=3)]
    records = [record("att_1", amount=10_000), record("re_1", kind=REF, amount=3_000, ref="wr_1"),
               record("att_2", amount=500, currency="USD", ref="wx_2")]
    result = match_day(DAY, rows, records)
    assert result.matched == 3 and result.matched_amount == {"CNY": 7_000, "USD": 500}


def test_amount_difference() -> None:
    found = only(match_day(DAY, [row(amount=8880)], [record(amount=8888)]).discrepancies)
    assert found.kind is K.AMOUNT and found.object_kind is PAY and found.object_id == "att_1"
    assert found.reasons == (FieldDiff("amount", "88.88", "88.80"),)
    assert found.row == row(amount=8880) and found.record == record(amount=8888) and found.since is None


def test_currency_difference_also_names_the_amount_when_it_differs() -> None:
    same_minor = only(match_day(DAY, [row(currency="HKD")], [record()]).discrepancies)
    assert same_minor.kind is K.CURRENCY and same_minor.reasons == (FieldDiff("currency", "CNY", "HKD"),)
    both = only(match_day(DAY, [row(currency="HKD", amount=100)], [record()]).discrepancies)
    assert both.kind is K.CURRENCY
    assert both.reasons == (FieldDiff("currency", "CNY", "HKD"), FieldDiff("amount", "88.88", "1.00"))


@pytest.mark.parametrize("hub_status", ["processing", "pending", "failed", "closed"])
def test_channel_success_against_a_hub_record_without_success_is_a_status_difference(hub_status: str) -> None:
    result = match_day(DAY, [row()], [record(status=hub_status)])
    found = only(result.discrepancies)
    assert found.kind is K.STATUS and found.reasons == (FieldDiff("status", hub_status, "succeeded"),)
    assert found.record is not None and found.record.status == hub_status
    assert result.matched == 0 and result.matched_amount == {}


def test_hub_success_against_a_channel_row_without_success_is_a_status_difference() -> None:
    found = only(match_day(DAY, [row("re_1", kind=REF, status="processing")],
                           [record("re_1", kind=REF)]).discrepancies)
    assert found.kind is K.STATUS and found.object_kind is REF
    assert found.reasons == (FieldDiff("status", "succeeded", "processing"),)


def test_no_money_moved_on_either_side_agrees_whatever_the_words() -> None:
    result = match_day(DAY, [row(status="revoked")], [record(status="closed")])
    assert result.discrepancies == [] and result.matched == 1 and result.matched_amount == {}


def test_fee_difference_only_when_the_hub_expects_a_fee() -> None:
    found = only(match_day(DAY, [row(fee=54)], [record(fee=53)]).discrepancies)
    assert found.kind is K.FEE and found.reasons == (FieldDiff("fee", "0.53", "0.54"),)
    missing = only(match_day(DAY, [row(fee=None)], [record(fee=53)]).discrepancies)
    assert missing.reasons == (FieldDiff("fee", "0.53", None),)
    assert match_day(DAY, [row(fee=54)], [record(fee=None)]).discrepancies == []
    assert match_day(DAY, [row(fee=53)], [record(fee=53)]).matched == 1


def test_fee_in_another_currency_names_it() -> None:
    charged = dataclasses.replace(row(), fee=Money(53, "USD"))
    found = only(match_day(DAY, [charged], [record(fee=53)]).discrepancies)
    assert found.reasons == (FieldDiff("fee", "0.53", "0.53 USD"),)


def test_the_first_differing_field_decides_the_kind_and_every_field_is_a_reason() -> None:
    found = only(match_day(DAY, [row(amount=1, fee=2)], [record(status="closed", fee=53)]).discrepancies)
    assert found.kind is K.STATUS
    assert [reason.field for reason in found.reasons] == ["status", "amount", "fee"]


# --- unpaired ---------------------------------------------------------------------------------------------


def test_channel_only_row() -> None:
    result = match_day(DAY, [row("att_9", ref="wx_9")], [record()])
    kinds = sorted((d.kind, d.object_id) for d in result.discrepancies)
    assert kinds == [(K.CHANNEL_ONLY, "att_9"), (K.HUB_ONLY, "att_1")]
    channel_only = next(d for d in result.discrepancies if d.kind is K.CHANNEL_ONLY)
    assert channel_only.reasons == (FieldDiff("status", None, "succeeded"),)
    assert channel_only.row is not None and channel_only.record is None


def test_channel_only_whatever_the_rows_status() -> None:
    found = only(match_day(DAY, [row("re_5", kind=REF, status="processing")], []).discrepancies)
    assert found.kind is K.CHANNEL_ONLY and found.reasons == (FieldDiff("status", None, "processing"),)


def test_hub_only_success_and_silent_non_success() -> None:
    result = match_day(DAY, [], [record("att_1"), record("att_2", status="failed", ref="wx_2"),
                                 record("att_3", status="closed", ref="wx_3")])
    found = only(result.discrepancies)
    assert found.kind is K.HUB_ONLY and found.object_id == "att_1"
    assert found.reasons == (FieldDiff("status", "succeeded", None),)
    assert found.record == record("att_1") and found.row is None


def test_channel_ref_fallback_when_a_row_has_no_object_id() -> None:
    result = match_day(DAY, [row("", ref="wx_1")], [record("att_1", ref="wx_1")])
    assert result.matched == 1 and result.discrepancies == []
    found = only(match_day(DAY, [row("", ref="wx_1", amount=1)], [record("att_1", ref="wx_1")]).discrepancies)
    assert found.kind is K.AMOUNT and found.object_id == "att_1"
    lost = only(match_day(DAY, [row("", ref="wx_404")], []).discrepancies)
    assert lost.kind is K.CHANNEL_ONLY and lost.object_id == "" and lost.row is not None


# --- duplicates -------------------------------------------------------------------------------------------


def test_duplicate_rows_after_the_first() -> None:
    rows = [row(line=3), row(line=8), row(line=9, amount=1)]
    result = match_day(DAY, rows, [record()])
    assert result.matched == 1 and result.matched_amount == {"CNY": 8888}
    assert [(d.kind, d.row.line if d.row else None) for d in result.discrepancies] == [
        (K.DUPLICATE_ROW, 8), (K.DUPLICATE_ROW, 9)]
    assert result.discrepancies[0].reasons == (FieldDiff("duplicate_of", None, "line 3"),)


def test_duplicate_of_an_unpaired_row_and_by_channel_ref() -> None:
    result = match_day(DAY, [row("att_7", ref="wx_7", line=1), row("att_7", ref="wx_7", line=2),
                             row("", ref="wx_8", line=3), row("", ref="wx_8", line=4)], [])
    assert [(d.kind, d.row.line if d.row else None) for d in result.discrepancies] == [
        (K.CHANNEL_ONLY, 3), (K.DUPLICATE_ROW, 4), (K.CHANNEL_ONLY, 1), (K.DUPLICATE_ROW, 2)]


def test_same_id_in_payment_and_refund_is_no_duplicate() -> None:
    result = match_day(DAY, [row("x_1"), row("x_1", kind=REF, line=2)], [record("x_1"), record("x_1", kind=REF)])
    assert result.discrepancies == [] and result.matched == 2


# --- cross-day pool ---------------------------------------------------------------------------------------


def test_near_midnight_row_waits_and_matches_the_next_day() -> None:
    late = row(when=at(23, 50))
    first = match_day(DAY, [late], [])
    assert first.discrepancies == [] and first.carried == [Pooled(since=DAY, row=late)]
    second = match_day(DAY + timedelta(days=1), [], [record(when=at(0, 5, day=DAY + timedelta(days=1)))],
                       first.carried)
    assert second.discrepancies == [] and second.carried == []
    assert second.matched == 1 and second.matched_amount == {"CNY": 8888}


def test_near_midnight_record_waits_on_either_side_of_midnight() -> None:
    early = record(when=at(0, 10))
    result = match_day(DAY, [], [early])
    assert result.discrepancies == [] and result.carried == [Pooled(since=DAY, record=early)]
    next_day = match_day(DAY + timedelta(days=1), [row(amount=1)], [], result.carried)
    found = only(next_day.discrepancies)
    assert found.kind is K.AMOUNT and found.since == DAY and found.record == early


def test_pooled_item_expires_after_carry_days_with_its_first_day() -> None:
    pool = match_day(DAY, [row(when=at(23, 59, 59))], []).carried
    for offset in range(1, CARRY_DAYS):
        result = match_day(DAY + timedelta(days=offset), [], [], pool)
        assert result.discrepancies == [] and [p.since for p in result.carried] == [DAY]
        pool = result.carried
    expired = match_day(DAY + timedelta(days=CARRY_DAYS), [], [], pool)
    found = only(expired.discrepancies)
    assert found.kind is K.CHANNEL_ONLY and found.since == DAY and expired.carried == []


def test_far_from_midnight_is_reported_at_once() -> None:
    result = match_day(DAY, [row("att_1", when=at(23, 29, 59))], [record("att_2", ref="wx_2", when=at(0, 30, 1))])
    assert sorted(d.kind for d in result.discrepancies) == [K.CHANNEL_ONLY, K.HUB_ONLY] and result.carried == []


def test_window_edges_and_width() -> None:
    assert is_near_midnight(at(23, 30)) and is_near_midnight(at(0, 30)) and is_near_midnight(at(0, 0))
    assert not is_near_midnight(at(23, 29, 59)) and not is_near_midnight(at(0, 30, 1))
    assert is_near_midnight(datetime(2024, 5, 19, 15, 50, tzinfo=UTC))  # 23:50 in Beijing
    assert not match_day(DAY, [row(when=at(23, 50))], [], near_midnight=timedelta(minutes=5)).carried
    with pytest.raises(ValueError, match="naive"):
        is_near_midnight(datetime(2024, 5, 19, 23, 50))


def _near_midnight_by_the_clock(moment: datetime, window: timedelta) -> bool:
    """The rule read plainly: the time on a Beijing clock, measured from its last midnight and to its next."""
    local = moment.astimezone(timezone(timedelta(hours=8)))
    since_midnight = local - local.replace(hour=0, minute=0, second=0, microsecond=0)
    return min(since_midnight, timedelta(days=1) - since_midnight) <= window


@given(moment=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30),
                           timezones=st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=59),
                                                                       max_value=timedelta(hours=23, minutes=59)))),
       window=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=13)))
def test_near_midnight_is_the_beijing_clocks_rule_for_any_offset_and_window(moment: datetime, window: timedelta) -> None:
    assert is_near_midnight(moment, window) == _near_midnight_by_the_clock(moment, window)


@given(window=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=11)), after=st.booleans(),
       nudge=st.sampled_from([-1, 0, 1]), offset=st.timedeltas(min_value=timedelta(hours=-12),
                                                              max_value=timedelta(hours=14)))
def test_near_midnight_at_the_windows_edge_to_the_microsecond(window: timedelta, after: bool, nudge: int,
                                                               offset: timedelta) -> None:
    midnight = datetime(2024, 5, 20, tzinfo=timezone(timedelta(hours=8)))
    moment = (midnight + (window if after else -window) + timedelta(microseconds=nudge)).astimezone(timezone(offset))
    assert is_near_midnight(moment, window) == _near_midnight_by_the_clock(moment, window)


def test_pooled_row_already_taken_today_is_a_duplicate_naming_its_day() -> None:
    pool = [Pooled(since=DAY - timedelta(days=1), row=row(line=7, when=at(23, 55, day=DAY - timedelta(days=1))))]
    result = match_day(DAY, [row(line=2)], [record()], pool)
    found = only(result.discrepancies)
    assert found.kind is K.DUPLICATE_ROW and found.row is not None and found.row.line == 2
    assert found.reasons == (FieldDiff("duplicate_of", None, "2024-05-18 line 7"),)
    assert result.matched == 1


def test_todays_copy_of_a_pooled_record_replaces_it() -> None:
    pooled = record(status="processing", when=at(23, 58, day=DAY - timedelta(days=1)))
    pool = [Pooled(since=DAY - timedelta(days=1), record=dataclasses.replace(pooled, status="succeeded"))]
    result = match_day(DAY, [], [pooled], pool)  # today it reads processing: no money moved, nothing to report
    assert result.discrepancies == [] and result.carried == []


def test_pool_must_come_from_earlier_days_and_hold_one_item() -> None:
    with pytest.raises(ValueError, match="not before"):
        match_day(DAY, [], [], [Pooled(since=DAY, row=row())])
    with pytest.raises(ValueError, match="exactly one"):
        match_day(DAY, [], [], [Pooled(since=DAY - timedelta(days=1))])


# --- order, streaming, errors -----------------------------------------------------------------------------


def _mixed_day() -> tuple[list[StatementRow], list[HubRecord]]:
    rows = [row(f"att_{i}", ref=f"wx_{i}", line=i, amount=100 + i, when=at(i % 24, i % 60)) for i in range(1, 60)]
    rows += [row("att_3", ref="wx_3", line=60)]
    records = [record(f"att_{i}", ref=f"wx_{i}", amount=100 + i + (i % 7 == 0), status="closed" if i % 11 == 0 else
                      "succeeded", when=at(i % 24, i % 60)) for i in range(5, 80)]
    return rows, records


def test_same_inputs_in_any_record_order_give_the_same_result() -> None:
    rows, records = _mixed_day()
    expected = match_day(DAY, rows, records)
    assert {d.kind for d in expected.discrepancies} >= {K.AMOUNT, K.STATUS, K.CHANNEL_ONLY, K.HUB_ONLY, K.DUPLICATE_ROW}
    for seed in range(5):
        shuffled = list(records)
        random.Random(seed).shuffle(shuffled)
        assert match_day(DAY, rows, shuffled) == expected


def test_tuple_entry_points_give_what_the_dataclass_ones_give() -> None:
    rows, records = _mixed_day()
    matcher = DayMatcher(DAY)
    assert matcher.add_record_tuples(compact_record(r) for r in records) == len(records)
    found = list(matcher.match_row_tuples(compact_row(r) for r in rows))
    found += matcher.finish()
    assert matcher.result(found) == match_day(DAY, rows, records)


def test_records_rebuilt_from_the_index_equal_the_originals() -> None:
    original = record("re_1", kind=REF, ref=None, attempt_id="att_1", fee=7,
                      when=datetime(2024, 5, 19, 4, 0, 2, 123456, tzinfo=UTC))
    found = only(match_day(DAY, [], [original]).discrepancies)
    assert found.record == original


def test_match_rows_yields_while_streaming() -> None:
    consumed: list[int] = []

    def rows() -> Iterator[StatementRow]:
        for line in range(1, 4):
            consumed.append(line)
            yield row("att_x" if line == 1 else f"att_{line}", ref=f"wx_{line}", line=line)

    matcher = DayMatcher(DAY)
    matcher.add_records([record("att_2", ref="wx_2"), record("att_3", ref="wx_3")])
    stream = matcher.match_rows(rows())
    first = next(stream)
    assert first.kind is K.CHANNEL_ONLY and consumed == [1]
    assert list(stream) == [] and consumed == [1, 2, 3]
    assert list(matcher.finish()) == [] and matcher.matched == 2


def test_misuse_and_bad_input_are_refused() -> None:
    with pytest.raises(ValueError, match="two different hub records"):
        match_day(DAY, [], [record(), record(amount=1)])
    assert match_day(DAY, [row()], [record(), record()]).matched == 1  # the same record twice is harmless
    matcher = DayMatcher(DAY)
    list(matcher.match_rows([]))
    with pytest.raises(RuntimeError, match="before the first statement row"):
        matcher.add_records([record()])
    with pytest.raises(RuntimeError, match="finish"):
        matcher.result([])
    list(matcher.finish())
    with pytest.raises(RuntimeError, match="finished"):
        list(matcher.match_rows([]))
    with pytest.raises(ValueError, match="naive"):
        match_day(DAY, [], [record(when=datetime(2024, 5, 19, 12))])
    with pytest.raises(ValueError, match="separator"):
        match_day(DAY, [], [record(ref="wx\x1f1")])
    bogus = compact_row(row())
    with pytest.raises(ValueError, match="unknown kind"):
        list(DayMatcher(DAY).match_row_tuples([("charge", *bogus[1:])]))  # type: ignore[list-item]


# --- properties -------------------------------------------------------------------------------------------

CURRENCIES = ("CNY", "USD", "JPY")
MUTATIONS = ("amount", "currency", "hub_status", "channel_status", "fee", "drop_row", "drop_record", "duplicate")
EXPECTED = {"amount": K.AMOUNT, "currency": K.CURRENCY, "hub_status": K.STATUS, "channel_status": K.STATUS,
            "fee": K.FEE, "drop_row": K.HUB_ONLY, "drop_record": K.CHANNEL_ONLY, "duplicate": K.DUPLICATE_ROW}


@st.composite
def days(draw: st.DrawFn) -> list[tuple[HubRecord, StatementRow]]:
    count = draw(st.integers(1, 25))
    pairs = []
    for number in range(count):
        kind = draw(st.sampled_from([PAY, REF]))
        currency = draw(st.sampled_from(CURRENCIES))
        amount = draw(st.integers(1, 10**9))
        fee = draw(st.none() | st.integers(0, 10**6))
        second = draw(st.integers(0, 86_399))
        when = datetime(2024, 5, 19, tzinfo=BEIJING) + timedelta(seconds=second)
        object_id = f"{'att' if kind is PAY else 're'}_{number}"
        hub = HubRecord(kind=kind, object_id=object_id, channel_ref=f"ch_{number}", amount=Money(amount, currency),
                        status="succeeded", occurred_at=when + timedelta(seconds=draw(st.integers(0, 5))),
                        attempt_id="att_0" if kind is REF else None,
                        expected_fee=None if fee is None else Money(fee, currency))
        channel = StatementRow(kind=kind, object_id=object_id, channel_ref=f"ch_{number}", amount=Money(amount, currency),
                               status="succeeded", occurred_at=when, fee=None if fee is None else Money(fee, currency),
                               attempt_id=hub.attempt_id, line=number + 2)
        pairs.append((hub, channel))
    return pairs


def _signed_total(pairs: list[tuple[HubRecord, StatementRow]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for hub, _ in pairs:
        sign = 1 if hub.kind is PAY else -1
        totals[hub.amount.currency] = totals.get(hub.amount.currency, 0) + sign * hub.amount.minor
    return dict(sorted(totals.items()))


@settings(max_examples=150, deadline=None)
@given(pairs=days(), shuffle_seed=st.integers(0, 2**32))
def test_property_identical_inputs_have_no_discrepancy(pairs: list[tuple[HubRecord, StatementRow]],
                                                       shuffle_seed: int) -> None:
    records = [hub for hub, _ in pairs]
    random.Random(shuffle_seed).shuffle(records)
    result = match_day(DAY, [channel for _, channel in pairs], records)
    assert result.discrepancies == [] and result.carried == [] and result.matched == len(pairs)
    assert result.matched_amount == _signed_total(pairs)


@settings(max_examples=300, deadline=None)
@given(pairs=days(), mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_property_one_mutation_gives_exactly_one_discrepancy_of_its_class(
        pairs: list[tuple[HubRecord, StatementRow]], mutation: str, data: st.DataObject) -> None:
    target = data.draw(st.integers(0, len(pairs) - 1))
    hub, channel = pairs[target]
    records = [h for h, _ in pairs]
    rows = [c for _, c in pairs]
    if mutation == "amount":
        rows[target] = dataclasses.replace(channel, amount=Money(channel.amount.minor + data.draw(
            st.integers(-channel.amount.minor, 10**6).filter(bool)), channel.amount.currency))
    elif mutation == "currency":
        other = data.draw(st.sampled_from([c for c in CURRENCIES if c != channel.amount.currency]))
        rows[target] = dataclasses.replace(channel, amount=Money(channel.amount.minor, other),
                                           fee=None if channel.fee is None else Money(channel.fee.minor, other))
    elif mutation == "hub_status":
        records[target] = dataclasses.replace(hub, status=data.draw(st.sampled_from(["processing", "failed", "closed"])))
    elif mutation == "channel_status":
        rows[target] = dataclasses.replace(channel, status=data.draw(st.sampled_from(["processing", "revoked"])))
    elif mutation == "fee":
        expected = Money(data.draw(st.integers(0, 10**6)), hub.amount.currency)
        charged = data.draw(st.none() | st.integers(0, 10**6).map(lambda fee: Money(fee, hub.amount.currency))
                            .filter(lambda fee: fee != expected))
        records[target] = dataclasses.replace(hub, expected_fee=expected)
        rows[target] = dataclasses.replace(channel, fee=charged)
    elif mutation == "drop_row":
        del rows[target]
    elif mutation == "drop_record":
        del records[target]
    else:
        rows.append(dataclasses.replace(channel, line=10_000))
    result = match_day(DAY, rows, records)
    unpaired = mutation in ("drop_row", "drop_record")
    moment = channel.occurred_at if mutation == "drop_record" else hub.occurred_at
    if unpaired and is_near_midnight(moment):
        assert result.discrepancies == [] and len(result.carried) == 1
    else:
        found = only(result.discrepancies)
        assert found.kind is EXPECTED[mutation] and found.object_id == hub.object_id and result.carried == []
        assert found.reasons[0].field == {K.AMOUNT: "amount", K.CURRENCY: "currency", K.STATUS: "status",
                                          K.FEE: "fee", K.HUB_ONLY: "status", K.CHANNEL_ONLY: "status",
                                          K.DUPLICATE_ROW: "duplicate_of"}[found.kind]
    assert result.matched == len(pairs) - (0 if mutation == "duplicate" else 1)
