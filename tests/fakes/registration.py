"""Put the fake ``cardtest`` channel behind the hub for one test: registry entry, card method, channel account.

Used by the ``cardtest`` fixtures of the e2e tests. The hub's API server runs in the test process, so the
monkeypatched registry is what it serves. On the way out, queued work for the fake's attempts is drained and
they leave the status-sync index, so no later test's worker meets a channel that is no longer registered.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from chalicelib.channels import registry
from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.config.settings import settings
from chalicelib.domain import cards
from chalicelib.domain.money import Money
from chalicelib.storage import config_repo, records, state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import to_item
from tests.fakes.card_channel import BOOK, CARD_METHOD, CHANNEL, MERCHANT_ID, WALLET_METHOD, notification_body, sign

ACCOUNT_ID = "cardtest-main"


@dataclass
class CardTestChannel:
    api_url: str
    account_id: str
    callback_key: str

    def callback(self, attempt_id: str, outcome: str, amount: Money, **options: object) -> requests.Response:
        body = notification_body(attempt_id, outcome, amount, **options)  # type: ignore[arg-type]
        return requests.post(f"{self.api_url}/callbacks/{CHANNEL}/{self.account_id}", data=body,
                             headers={"content-type": "application/json",
                                      "x-fake-signature": sign(body, self.callback_key)}, timeout=30)


def register(monkeypatch: pytest.MonkeyPatch, api_url: str) -> Iterator[CardTestChannel]:
    from infra.local.workers import drain

    monkeypatch.setitem(registry.ADAPTERS, CHANNEL, ("tests.fakes.card_channel", "FakeCardChannel"))
    monkeypatch.setitem(registry.METHOD_PREFIXES, CHANNEL, CHANNEL)
    monkeypatch.setattr(registry, "METHODS", (*registry.METHODS, CARD_METHOD, WALLET_METHOD))
    monkeypatch.setattr(cards, "CARD_METHODS", cards.CARD_METHODS | {CARD_METHOD})
    registry.adapter.cache_clear()
    key = secrets.token_hex(16)
    config_repo.put_channel_account(ChannelAccountConfig(
        account_id=ACCOUNT_ID, channel=CHANNEL, methods=(CARD_METHOD, WALLET_METHOD), currencies=("CNY",),
        api_base_url="https://fake.invalid", settings={"merchant_id": MERCHANT_ID}), {"callback_key": key})
    try:
        yield CardTestChannel(api_url, ACCOUNT_ID, key)
    finally:
        BOOK.confirm_faults.clear()
        drain()  # while the fake is still registered: nothing of it is left queued for later tests
        dynamodb = client("dynamodb")
        for attempt_id in list(BOOK.orders):
            try:
                dynamodb.update_item(TableName=state_repo.state_table(), Key=to_item(records.attempt_key(attempt_id)),
                                     UpdateExpression="REMOVE sync_shard, sync_due_at",
                                     ConditionExpression="attribute_exists(pk)")
            except dynamodb.exceptions.ConditionalCheckFailedException:
                continue  # made at the channel, never recorded (a refused or lost create)
        BOOK.orders.clear()
        dynamodb.delete_item(TableName=settings().names.config_table,
                             Key=to_item({"pk": "CHANNEL_ACCOUNTS", "sk": ACCOUNT_ID}))
        config_repo.invalidate_cache()
        registry.adapter.cache_clear()
