"""Pick the channel account that takes a payment: enabled, supports the method and currency, open to the
merchant; an account dedicated to the merchant wins over shared ones, then the best priority."""

from __future__ import annotations

from chalicelib.channels.registry import adapter, channel_for_method
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import InvalidRequest, NoChannelAvailable
from chalicelib.storage import config_repo


def choose_account(method: str, currency: str, merchant_id: str) -> ChannelAccount:
    channel = channel_for_method(method)
    if method not in adapter(channel).methods:
        raise InvalidRequest(f"unknown payment method {method!r}", param="method")
    candidates = [
        config for config in config_repo.list_channel_accounts()  # sorted by priority
        if config.enabled and config.channel == channel and method in config.methods and currency in config.currencies
        and (not config.merchant_ids or merchant_id in config.merchant_ids)
    ]
    candidates.sort(key=lambda config: not config.merchant_ids)  # stable: dedicated first, priority order kept
    for config in candidates:
        account = config_repo.channel_account(config.account_id)
        if account is not None:
            return account
    raise NoChannelAvailable(f"no enabled channel account takes {method} in {currency}", param="method")


def account_or_error(account_id: str) -> ChannelAccount:
    account = config_repo.channel_account(account_id)
    if account is None:
        raise LookupError(f"channel account {account_id} is not configured")
    return account


def callback_url(public_base_url: str, channel: str, account_id: str) -> str:
    return f"{public_base_url}/callbacks/{channel}/{account_id}"
