"""When each channel's statement for yesterday can be fetched, and which day a scheduled run reconciles.

One EventBridge schedule per channel (infra/resources.py builds them from this table) fires at the Beijing
time below and fans out one message per enabled account of the channel for the previous Beijing day. A
channel without an entry (one added later) gets ``DEFAULT_FETCH_AFTER``; a statement that is still not
published makes the adapter raise a retryable ``ChannelError`` and the run is retried from the queue.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

BEIJING = timezone(timedelta(hours=8))

# Beijing time after which the previous day's statement is reliably published (with a margin).
FETCH_AFTER: dict[str, time] = {
    "wechatpay": time(10, 30),  # bills made after 09:00; fetch after 10:00 (docs/channels/wechatpay.md#trade-bill)
    "alipay": time(10, 30),  # dailies T+1, fetch after about 10:00 (docs/channels/alipay.md#bill-files)
    "unionpay": time(10, 30),  # fileDownload reconciliation file of the previous settlement date
    "ecny": time(11, 0),  # operator (bank) files, typically mid-morning
    "stripe": time(12, 0),  # balance report data for a day is complete a few hours after it ends
    "paypal": time(14, 0),  # settlement reports are generated the following day, by early afternoon
}
DEFAULT_FETCH_AFTER = time(12, 0)


def fetch_after(channel: str) -> time:
    return FETCH_AFTER.get(channel, DEFAULT_FETCH_AFTER)


def utc_cron(channel: str) -> str:
    """The EventBridge schedule expression (UTC) firing daily at the channel's Beijing fetch time."""
    beijing = datetime.combine(date(2000, 1, 2), fetch_after(channel), tzinfo=BEIJING).astimezone(UTC)
    return f"cron({beijing.minute} {beijing.hour} * * ? *)"


def previous_beijing_day(now: datetime) -> date:
    """The statement day a run at ``now`` reconciles: yesterday, in Beijing."""
    return now.astimezone(BEIJING).date() - timedelta(days=1)


def due_today(channel: str, now: datetime) -> bool:
    """Has today's (Beijing) fetch time of ``channel`` passed at ``now``? (the local stack's scheduler)"""
    local = now.astimezone(BEIJING)
    return local.time() >= fetch_after(channel)
