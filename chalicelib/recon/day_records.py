"""The hub's side of a day: indexed attempts and refunds of one account, read page by page as ``HubRecord``
(``hub_records``) or as the engine's ``CompactRecord`` tuples (``hub_record_tuples``, what a run reads).

``expected_fee`` comes from the account's fee schedule when it has one (chalicelib/config/fee_schedule.py). Refund fees are not
predicted (channels differ on returning them), so refund rows are never fee-checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from chalicelib.channels.base import StatementKind
from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.fee_schedule import fee_rate_bps
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.money import SUPPORTED_CURRENCIES
from chalicelib.recon.hub_records import expected_fee_minor, hub_record
from chalicelib.recon.matching import CompactRecord
from chalicelib.recon.model import HubRecord
from chalicelib.storage import recon_index, state_repo


def record_from_item(item: Mapping[str, Any], rate_bps: int | None = None) -> HubRecord:
    """An indexed attempt or refund item (state table) as the matching engine sees it."""
    return hub_record(record_tuple_from_item(item, rate_bps))


def record_tuple_from_item(item: Mapping[str, Any], rate_bps: int | None = None) -> CompactRecord:
    """``record_from_item`` as the engine's ``CompactRecord`` tuple (no dataclass, no ``Decimal``)."""
    kind, _, object_id = str(item["recon_sk"]).partition("#")
    amount, currency = int(item["amount"]), str(item["currency"])
    if currency not in SUPPORTED_CURRENCIES:
        raise ValueError(f"unsupported currency {currency!r}")
    status, occurred_at = str(item["status"]), parse_iso(str(item["recon_at"]))
    if kind == StatementKind.PAYMENT:
        fee = None if rate_bps is None else expected_fee_minor(amount, rate_bps)
        return ("payment", object_id, item.get("channel_transaction_id"), amount, currency, status, occurred_at, None,
                fee, None if fee is None else currency)
    return ("refund", object_id, item.get("channel_refund_id"), amount, currency, status, occurred_at,
            item.get("attempt_id"), None, None)


def hub_records(account: ChannelAccount, day: date) -> Iterator[HubRecord]:
    """Every record of the account's day, streamed one query page at a time."""
    return (hub_record(record) for record in hub_record_tuples(account, day))


def hub_record_tuples(account: ChannelAccount, day: date) -> Iterator[CompactRecord]:
    """``hub_records`` as ``CompactRecord`` tuples: what a run feeds the engine."""
    rate = fee_rate_bps(account)
    for page in recon_index.day_pages(state_repo.state_table(), account.account_id, day):
        for item in page:
            yield record_tuple_from_item(item, rate)
