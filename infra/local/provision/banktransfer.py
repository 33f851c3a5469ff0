"""Bank transfer: a channel account taking ``bank.transfer`` into a reserve whose bank account is configured
(``infra.local.provision.cmbbank``). It has no sandbox of its own and no keys: orders are sub-accounts at the
reserve's bank, and what the bank needs lives with the bank account."""

from __future__ import annotations

from chalicelib.banks.accounts import bank_account
from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.storage import config_repo

ACCOUNT_ID = "banktransfer-demo"


def provision(*, reserve_id: str, account_id: str = ACCOUNT_ID, bank_name: str = "招商银行深圳分行",
              priority: int = 100, merchant_ids: tuple[str, ...] = ()) -> ChannelAccountConfig:
    """Store the channel account (refused when the reserve has no bank account: orders could not be opened)."""
    found = bank_account(reserve_id)
    if found is None:
        raise ValueError(f"reserve {reserve_id} has no bank account; provision it first (cmbbank.provision)")
    config = ChannelAccountConfig(
        account_id=account_id, channel="banktransfer", priority=priority, methods=("bank.transfer",),
        currencies=("CNY",), api_base_url=found.config.api_base_url, merchant_ids=merchant_ids,
        settings={"reserve_id": reserve_id, "bank_name": bank_name},
    )
    config_repo.put_channel_account(config, {})
    return config
