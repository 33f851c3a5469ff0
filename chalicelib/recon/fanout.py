"""The daily schedule of a channel: one ``recon`` queue message per enabled account, for yesterday (Beijing)."""

from __future__ import annotations

from datetime import date, datetime

from chalicelib.recon.schedule import previous_beijing_day
from chalicelib.storage import config_repo, outbox

QUEUE = "recon"


def enqueue(account_id: str, day: date) -> None:
    outbox.send(QUEUE, {"account_id": account_id, "day": day.isoformat()})


def fan_out(channel: str, now: datetime) -> list[str]:
    """Enqueue a run of the previous Beijing day for every enabled account of ``channel``; returns their ids."""
    day = previous_beijing_day(now)
    accounts = [config.account_id for config in config_repo.list_channel_accounts()
                if config.channel == channel and config.enabled]
    for account_id in accounts:
        enqueue(account_id, day)
    return accounts
