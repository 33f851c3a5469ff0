"""The hub's side of a day: indexed attempts and refunds of one account, read page by page as ``HubRecord``.

``expected_fee`` comes from the account's fee schedule when it has one: the setting ``fee_rate_bps`` (basis
points of the payment amount, rounded half up to the minor unit, as channels charge). Refund fees are not
predicted (channels differ on returning them), so refund rows are never fee-checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from chalicelib.channels.base import StatementKind
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.money import Money
from chalicelib.recon.model import HubRecord
from chalicelib.storage import recon_index, state_repo

FEE_RATE_SETTING = "fee_rate_bps"


def fee_rate_bps(account: ChannelAccount) -> int | None:
    text = account.config.settings.get(FEE_RATE_SETTING)
    if text is None:
        return None
    try:
        rate = int(text)
    except ValueError as exc:
        raise ValueError(f"account {account.account_id}: setting {FEE_RATE_SETTING} must be an integer") from exc
    if not 0 <= rate <= 10_000:
        raise ValueError(f"account {account.account_id}: setting {FEE_RATE_SETTING} must be 0..10000")
    return rate


def expected_fee(amount: Money, rate_bps: int | None) -> Money | None:
    if rate_bps is None:
        return None
    fee = (Decimal(amount.minor) * rate_bps / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return Money(int(fee), amount.currency)


def record_from_item(item: Mapping[str, Any], rate_bps: int | None = None) -> HubRecord:
    """An indexed attempt or refund item (state table) as the matching engine sees it."""
    kind, _, object_id = str(item["recon_sk"]).partition("#")
    amount = Money(int(item["amount"]), str(item["currency"]))
    if kind == StatementKind.PAYMENT:
        return HubRecord(kind=StatementKind.PAYMENT, object_id=object_id, channel_ref=item.get("channel_transaction_id"),
                         amount=amount, status=str(item["status"]), occurred_at=parse_iso(str(item["recon_at"])),
                         expected_fee=expected_fee(amount, rate_bps))
    return HubRecord(kind=StatementKind.REFUND, object_id=object_id, channel_ref=item.get("channel_refund_id"),
                     amount=amount, status=str(item["status"]), occurred_at=parse_iso(str(item["recon_at"])),
                     attempt_id=item.get("attempt_id"))


def hub_records(account: ChannelAccount, day: date) -> Iterator[HubRecord]:
    """Every record of the account's day, streamed one query page at a time."""
    rate = fee_rate_bps(account)
    for page in recon_index.day_pages(state_repo.state_table(), account.account_id, day):
        for item in page:
            yield record_from_item(item, rate)
