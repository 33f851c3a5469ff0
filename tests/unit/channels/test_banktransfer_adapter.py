"""The bank transfer channel's adapter where it speaks to nobody: the bank sends no callbacks, the channel has no
statement of its own (the reserve's is reconciled), no confirmation step, CNY only, and an account must name its
reserve."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.channels.banktransfer import BankTransferAdapter
from chalicelib.channels.base import CreateRequest, InboundCallback, Payer
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.errors import CallbackRejected, ChannelError
from chalicelib.domain.money import Money


def account(**settings: str) -> ChannelAccount:
    return ChannelAccount(ChannelAccountConfig(
        account_id="bt-1", channel="banktransfer", enabled=True, priority=100, methods=("bank.transfer",),
        currencies=("CNY",), api_base_url="http://127.0.0.1:1", merchant_ids=(), settings=settings), ChannelSecrets({}))


def no_bank(reserve_id: str) -> Any:
    raise AssertionError("no bank call expected")


def test_a_callback_is_always_refused() -> None:
    adapter = BankTransferAdapter(object(), bank=no_bank)  # type: ignore[arg-type]
    with pytest.raises(CallbackRejected, match="no callbacks"):
        adapter.verify_and_parse_notification(account(reserve_id="rsv"), InboundCallback(
            headers={}, body=b'{"credit": 1}', received_at=datetime.now(UTC)))


def test_there_is_no_channel_statement() -> None:
    adapter = BankTransferAdapter(object(), bank=no_bank)  # type: ignore[arg-type]
    with pytest.raises(ChannelError) as raised:
        adapter.fetch_statement(account(reserve_id="rsv"), "2026-12-01")
    assert raised.value.channel_code == "NO_STATEMENT" and not raised.value.retryable


def test_an_order_needs_a_reserve_and_cny() -> None:
    adapter = BankTransferAdapter(object(), bank=no_bank)  # type: ignore[arg-type]
    request = CreateRequest(attempt_id="att_1", method="bank.transfer", amount=Money(100, "CNY"), description="x",
                            notify_url="https://hub.example/cb", expires_at=datetime.now(UTC), payer=Payer())
    with pytest.raises(ChannelError) as raised:
        adapter.create(account(), request)
    assert raised.value.channel_code == "NO_RESERVE"
    with pytest.raises(ChannelError) as raised:
        adapter.create(account(reserve_id="rsv"), CreateRequest(**{**request.__dict__, "amount": Money(100, "USD")}))
    assert raised.value.channel_code == "CURRENCY"
