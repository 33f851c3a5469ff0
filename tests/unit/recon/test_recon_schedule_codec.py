"""Schedules (which day, at what time per channel), the codec of pool entries, and hub items as records."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.channels.base import StatementKind, StatementRow
from chalicelib.channels.registry import ADAPTERS
from chalicelib.config.fee_schedule import expected_fee
from chalicelib.domain.money import Money
from chalicelib.recon import hub_records
from chalicelib.recon.codec import pooled_from_dict, pooled_to_dict
from chalicelib.recon.day_records import record_from_item
from chalicelib.recon.model import HubRecord, Pooled
from chalicelib.recon.schedule import due_today, fetch_after, previous_beijing_day, utc_cron
from chalicelib.storage.recon_index import beijing_day, index_fields
from chalicelib.storage.shards import shard_of

BEIJING = timezone(timedelta(hours=8))


@pytest.mark.parametrize(("now", "day"), [
    (datetime(2024, 5, 19, 15, 59, tzinfo=UTC), date(2024, 5, 18)),  # 23:59 Beijing on the 19th
    (datetime(2024, 5, 19, 16, 0, tzinfo=UTC), date(2024, 5, 19)),  # 00:00 Beijing on the 20th
    (datetime(2024, 5, 20, 2, 30, tzinfo=UTC), date(2024, 5, 19)),  # the WeChat run, 10:30 Beijing
])
def test_a_scheduled_run_reconciles_yesterday_in_beijing(now: datetime, day: date) -> None:
    assert previous_beijing_day(now) == day


def test_every_channel_runs_after_its_statement_time_with_a_cron_in_utc() -> None:
    assert utc_cron("wechatpay") == "cron(30 2 * * ? *)"
    for channel in ADAPTERS:
        beijing = fetch_after(channel)
        minute, hour = (int(part) for part in utc_cron(channel)[5:].split()[:2])
        assert (hour + 8) % 24 == beijing.hour and minute == beijing.minute
    assert fetch_after("a_channel_added_later").hour == 12


def test_due_today_follows_the_beijing_clock() -> None:
    assert not due_today("wechatpay", datetime(2024, 5, 20, 2, 29, tzinfo=UTC))
    assert due_today("wechatpay", datetime(2024, 5, 20, 2, 30, tzinfo=UTC))


_moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
_money = st.builds(Money, st.integers(-10**12, 10**12), st.sampled_from(["CNY", "USD", "JPY"]))


@given(st.builds(StatementRow, kind=st.sampled_from(list(StatementKind)), object_id=st.text(min_size=1, max_size=8),
                 channel_ref=st.none() | st.text(max_size=8), amount=_money, status=st.sampled_from(["succeeded", "x"]),
                 occurred_at=_moments, fee=st.none() | _money, attempt_id=st.none() | st.text(max_size=5),
                 line=st.integers(0, 10**6)),
       st.dates(date(2020, 1, 1), date(2030, 1, 1)))
def test_pooled_rows_round_trip(row: StatementRow, since: date) -> None:
    # Times are stored as UTC ISO text with milliseconds, as everywhere in the hub.
    row = dataclasses.replace(row, occurred_at=row.occurred_at.replace(microsecond=row.occurred_at.microsecond // 1000 * 1000))
    assert pooled_from_dict(pooled_to_dict(Pooled(since, row=row))) == Pooled(since, row=row)


def test_pooled_records_round_trip() -> None:
    record = HubRecord(kind=StatementKind.REFUND, object_id="re_1", channel_ref=None, amount=Money(5, "CNY"),
                       status="processing", occurred_at=datetime(2024, 5, 19, 16, 0, 0, 123000, tzinfo=UTC),
                       attempt_id="att_1", expected_fee=Money(-1, "CNY"))
    assert pooled_from_dict(pooled_to_dict(Pooled(date(2024, 5, 19), record=record))).record == record


def test_the_index_files_a_record_under_its_beijing_day() -> None:
    late = datetime(2024, 5, 19, 16, 0, 1, tzinfo=UTC)  # 00:00:01 on the 20th in Beijing
    assert beijing_day(late) == "2024-05-20" and beijing_day(late.replace(tzinfo=None)) == "2024-05-20"
    fields = index_fields("wechat-demo", "payment", "att_1", late, count=512)
    assert fields == {"recon_pk": "wechat-demo#2024-05-20", "recon_spk": f"wechat-demo#2024-05-20#{shard_of('att_1', 512)}",
                      "recon_sk": "payment#att_1", "recon_at": "2024-05-19T16:00:01.000Z"}


def test_an_indexed_item_reads_back_as_the_record_the_engine_matches() -> None:
    item = {"attempt_id": "att_1", "amount": 8888, "currency": "CNY", "status": "succeeded",
            "channel_transaction_id": "4200", **index_fields("wechat-demo", "payment", "att_1",
                                                             datetime(2024, 5, 19, 4, tzinfo=UTC))}
    record = record_from_item(item, 60)
    assert (record.kind, record.object_id, record.channel_ref, record.amount, record.expected_fee) == (
        StatementKind.PAYMENT, "att_1", "4200", Money(8888, "CNY"), Money(53, "CNY"))
    refund = record_from_item({**item, "refund_id": "re_1", "channel_refund_id": "50",
                               **index_fields("wechat-demo", "refund", "re_1", datetime(2024, 5, 19, 4, tzinfo=UTC))}, 60)
    assert (refund.kind, refund.object_id, refund.attempt_id, refund.expected_fee) == (
        StatementKind.REFUND, "re_1", "att_1", None)


@given(st.integers(0, 10**12), st.integers(0, 10_000))
def test_the_expected_fee_is_the_same_whether_a_run_reads_the_index_or_an_export(amount: int, rate: int) -> None:
    fee = expected_fee(Money(amount, "CNY"), rate)
    assert fee is not None and fee.minor == hub_records.expected_fee_minor(amount, rate)


def test_the_local_stack_fires_each_channel_once_a_day_after_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.local import workers

    fired: list[str] = []
    # Each channel's reconciliation fan-out, the monthly statements' job at 15:00 Beijing, the settlement at 16:00.
    monkeypatch.setattr(workers, "_resolve",
                        lambda path: lambda event, context: fired.append(event.get("channel") or event["job"]))
    daily = workers.DailySchedules(datetime(2024, 5, 20, 1, 0, tzinfo=UTC))  # 09:00 Beijing: nothing due yet
    assert daily.fire_due(datetime(2024, 5, 20, 1, 0, tzinfo=UTC)) == [] and fired == []
    daily.fire_due(datetime(2024, 5, 20, 2, 31, tzinfo=UTC))  # 10:31 Beijing
    assert sorted(fired) == ["alipay", "unionpay", "wechatpay"]
    daily.fire_due(datetime(2024, 5, 20, 2, 45, tzinfo=UTC))
    assert sorted(fired) == ["alipay", "unionpay", "wechatpay"]  # once a day
    daily.fire_due(datetime(2024, 5, 20, 7, 59, tzinfo=UTC))  # 15:59 Beijing
    assert sorted(fired) == ["alipay", "ecny", "paypal", "statements", "stripe", "unionpay", "wechatpay"]
    daily.fire_due(datetime(2024, 5, 20, 8, 0, tzinfo=UTC))  # 16:00 Beijing
    assert sorted(fired) == ["alipay", "ecny", "paypal", "settlement", "statements", "stripe", "unionpay", "wechatpay"]
    daily.fire_due(datetime(2024, 5, 21, 2, 31, tzinfo=UTC))
    assert sorted(fired).count("wechatpay") == 2
    late_start = workers.DailySchedules(datetime(2024, 5, 20, 8, 0, tzinfo=UTC))  # started after every time
    assert late_start.fire_due(datetime(2024, 5, 20, 8, 1, tzinfo=UTC)) == []
