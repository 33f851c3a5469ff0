"""Every caller of query/close/query_refund hands the adapter the channel references the hub recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.channels.base import PaymentOutcome, PaymentStatus, RefundOutcome, RefundStatus
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.models import Attempt, Refund
from chalicelib.domain.money import Money
from chalicelib.domain.states import AttemptState, RefundState
from chalicelib.service import payments, refunds, status_sync
from chalicelib.service.channel_refs import payment_refs, refund_refs

ACCOUNT = ChannelAccount(ChannelAccountConfig(account_id="stripe-test", channel="stripe", methods=("stripe.card",),
                                              api_base_url="https://api.test.invalid"), ChannelSecrets({}))
ATTEMPT = Attempt(attempt_id="att_1", payment_id="pay_1", merchant_id="mch_1", channel="stripe",
                  account_id="stripe-test", method="stripe.card", amount=1000, currency="USD",
                  status=AttemptState.PENDING, version=1, created_at="2024-05-20T04:00:00Z",
                  updated_at="2024-05-20T04:00:00Z", expires_at="2099-01-01T00:00:00Z",
                  channel_order_ref="pi_3Pabc", channel_transaction_id="pi_3Pabc")
REFUND = Refund(refund_id="re_1", payment_id="pay_1", attempt_id="att_1", merchant_id="mch_1", channel="stripe",
                account_id="stripe-test", amount=300, currency="USD", status=RefundState.PROCESSING, version=1,
                created_at="2024-05-20T05:30:15.123Z", updated_at="2024-05-20T05:30:15Z", merchant_refund_no="r1",
                channel_refund_id="re_3Pstripe")
REFUND_REFS = {"attempt_id": "att_1", "channel_refund_id": "re_3Pstripe", "channel_order_ref": "pi_3Pabc",
               "created_at": datetime(2024, 5, 20, 5, 30, 15, 123000, tzinfo=UTC)}


@dataclass
class RecordingAdapter:
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def query(self, account: ChannelAccount, attempt_id: str, amount: Money, **refs: Any) -> PaymentStatus:
        self.calls.append(("query", attempt_id, refs))
        return PaymentStatus(PaymentOutcome.SUCCEEDED, "succeeded", "pi_3Pabc", amount)

    def close(self, account: ChannelAccount, attempt_id: str, **refs: Any) -> None:
        self.calls.append(("close", attempt_id, refs))

    def query_refund(self, account: ChannelAccount, refund_id: str, amount: Money, **refs: Any) -> RefundStatus:
        self.calls.append(("query_refund", refund_id, refs))
        return RefundStatus(RefundOutcome.SUCCEEDED, "succeeded", "re_3Pstripe", amount)


@pytest.fixture
def channel(monkeypatch: pytest.MonkeyPatch) -> RecordingAdapter:
    fake = RecordingAdapter()
    monkeypatch.setattr(status_sync, "adapter", lambda name: fake)
    monkeypatch.setattr(payments, "adapter", lambda name: fake)
    monkeypatch.setattr(status_sync, "account_or_error", lambda account_id: ACCOUNT)
    monkeypatch.setattr(status_sync.state_repo, "get_attempt", lambda attempt_id: ATTEMPT)
    monkeypatch.setattr(status_sync.state_repo, "get_attempt_and_payment", lambda attempt_id: (ATTEMPT, None))
    monkeypatch.setattr(status_sync.state_repo, "get_refund", lambda refund_id: REFUND)
    monkeypatch.setattr(status_sync, "apply_attempt_status", lambda *args, **kwargs: "applied")
    monkeypatch.setattr(refunds, "apply_refund_status", lambda *args, **kwargs: "applied")
    return fake


def test_status_sync_queries_with_the_attempts_channel_order_ref(channel: RecordingAdapter) -> None:
    status_sync.sync_attempt("att_1")
    assert channel.calls == [("query", "att_1", {"channel_order_ref": "pi_3Pabc"})]


def test_close_closes_with_the_attempts_channel_order_ref(channel: RecordingAdapter) -> None:
    status_sync.close_attempt("att_1", source="merchant_close")
    assert channel.calls == [("close", "att_1", {"channel_order_ref": "pi_3Pabc"})]


def test_refund_sync_queries_with_the_refunds_references(channel: RecordingAdapter) -> None:
    status_sync.sync_refund("re_1")
    assert channel.calls == [("query_refund", "re_1", REFUND_REFS)]


def test_reference_helpers() -> None:
    assert payment_refs(ATTEMPT) == {"channel_order_ref": "pi_3Pabc"}
    assert refund_refs(REFUND, ATTEMPT) == REFUND_REFS
    assert refund_refs(REFUND, None)["channel_order_ref"] is None
    # An unreadable or zone-less stamp gives no reference rather than a wrong one.
    assert refund_refs(REFUND.evolve(created_at="t"), ATTEMPT)["created_at"] is None
    assert refund_refs(REFUND.evolve(created_at="2024-05-20T05:30:15"), ATTEMPT)["created_at"] is None
