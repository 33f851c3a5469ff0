"""Object ids and the hub's time strings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.clock import iso, later, parse_iso, utcnow
from chalicelib.domain.ids import event_id, is_hub_id, new_attempt_id, new_id, payment_id_of

ID_BODY = re.compile(r"^[a-z2-7]{24}$")


def test_new_id_shape_fits_wechat_out_trade_no() -> None:
    for prefix in ("pay", "att", "re", "mch", "aud"):
        value = new_id(prefix)
        head, body = value.split("_", 1)
        assert head == prefix and ID_BODY.match(body)
        assert len(value) <= 32  # WeChat out_trade_no / out_refund_no limit
        assert re.fullmatch(r"[A-Za-z0-9_\-|*@]+", value)


def test_is_hub_id_accepts_what_new_id_makes_and_nothing_else() -> None:
    made = new_id("att")
    assert is_hub_id(made, "att") and is_hub_id(new_id("re"), "re")
    assert not is_hub_id(made, "re")  # another kind's id
    for other in ("8MC585209K746392H", "att_", "att", made.upper(), made + "a", made[:-1], made.replace("_", "-"),
                  "att_" + "1" * 24, "xatt_" + made[4:], "re_test0001", ""):
        assert not is_hub_id(other, "att"), other


def test_an_attempt_id_names_its_payment_and_fits_every_channels_order_number() -> None:
    payment_id = new_id("pay")
    attempt_id = new_attempt_id(payment_id)
    assert payment_id_of(attempt_id) == payment_id
    assert attempt_id.startswith("att_" + payment_id[4:]) and len(attempt_id) == 31  # WeChat allows 32
    assert is_hub_id(attempt_id, "att") and not is_hub_id(attempt_id, "pay")
    # A payment's attempts differ from each other; the older unnamed shape names no payment but is still ours.
    assert len({new_attempt_id(payment_id) for _ in range(50)}) > 45
    older = new_id("att")
    assert is_hub_id(older, "att") and payment_id_of(older) is None
    for other in (attempt_id + "a", attempt_id[:-1], attempt_id.upper(), "re_" + attempt_id[4:]):
        assert payment_id_of(other) is None, other


def test_only_a_payment_id_can_have_attempts() -> None:
    for bad in ("re_" + new_id("pay")[4:], "pay_short", new_id("att"), ""):
        try:
            new_attempt_id(bad)
        except ValueError as exc:
            assert "not a payment id" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")


def test_new_ids_are_unique() -> None:
    values = {new_id("att") for _ in range(2000)}
    assert len(values) == 2000


def test_event_id_is_deterministic_per_object_and_type() -> None:
    assert event_id("pay_1", "payment.succeeded") == event_id("pay_1", "payment.succeeded")
    assert event_id("pay_1", "payment.succeeded") != event_id("pay_1", "payment.failed")
    assert event_id("pay_1", "payment.succeeded") != event_id("pay_2", "payment.succeeded")
    assert re.fullmatch(r"evt_[a-z2-7]{24}", event_id("pay_1", "payment.succeeded"))


UTC_MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])


def test_iso_format() -> None:
    assert iso(datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)) == "2024-03-05T07:08:09.123Z"
    assert iso(datetime(2024, 3, 5, 15, 0, 0, tzinfo=timezone(timedelta(hours=8)))) == "2024-03-05T07:00:00.000Z"


@given(moment=UTC_MOMENTS, zone=ZONES)
def test_iso_round_trips_to_the_millisecond(moment: datetime, zone: timezone) -> None:
    text = iso(moment.astimezone(zone))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    parsed = parse_iso(text)
    assert parsed == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert iso(parsed) == text


@given(first=UTC_MOMENTS, second=UTC_MOMENTS, zone=ZONES)
def test_iso_strings_sort_as_the_moments_compare(first: datetime, second: datetime, zone: timezone) -> None:
    a, b = iso(first.astimezone(zone)), iso(second.astimezone(zone))
    if first <= second:
        assert a <= b
    else:
        assert a >= b


def test_utcnow_is_aware_utc_and_later_adds_seconds() -> None:
    now = utcnow()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert later(now, 90) - now == timedelta(seconds=90)
    assert later(now, 0.5) - now == timedelta(milliseconds=500)
