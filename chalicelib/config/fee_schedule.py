"""A channel account's fee schedule: the setting ``fee_rate_bps`` (basis points of the payment amount, rounded
half up to the minor unit, as channels charge). The capture books each payment's fee from it; reconciliation
checks each statement row's fee against it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig
from chalicelib.domain.money import Money

FEE_RATE_SETTING = "fee_rate_bps"


def fee_rate_bps(account: ChannelAccount | ChannelAccountConfig) -> int | None:
    config = account.config if isinstance(account, ChannelAccount) else account
    text = config.settings.get(FEE_RATE_SETTING)
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
