"""Time as the hub stores it: UTC ISO 8601 strings with milliseconds, which sort as they compare."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8))  # China Standard Time, no daylight saving: the channels' day


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def later(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)


def beijing_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(BEIJING).date()


def require_day_over(day: date, *, param: str = "day", now: datetime | None = None) -> None:
    """Refuse ``day`` unless it has ended in Beijing: a channel's statement of a day still running is partial,
    and settling it would pay money that has not finished arriving."""
    from chalicelib.domain.errors import DayNotOver

    today = beijing_today(now)
    if day >= today:
        raise DayNotOver(f"{day.isoformat()} has not ended in Beijing yet (it is {today.isoformat()} there); "
                         "a day can be reconciled or settled from the next Beijing midnight", param=param)
