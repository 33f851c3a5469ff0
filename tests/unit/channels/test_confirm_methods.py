"""Each adapter's ``confirm_methods`` says which methods have a confirmation step, and the hub refuses a confirm
for the others before risk control decides on it: the declaration must agree with what ``confirm`` itself does."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from chalicelib.channels.base import ConfirmRequest
from chalicelib.channels.registry import ADAPTERS
from chalicelib.domain.errors import InvalidState
from chalicelib.domain.money import Money


class NoNetwork:
    """A transport that fails the test if an adapter reaches for the channel to refuse a confirmation."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a confirm without a confirmation step must not call the channel")


def _adapter(channel: str) -> Any:
    module_name, class_name = ADAPTERS[channel]
    return getattr(importlib.import_module(module_name), class_name)(NoNetwork())


@pytest.mark.parametrize("channel", sorted(ADAPTERS))
def test_the_declared_methods_are_the_channels_own(channel: str) -> None:
    adapter = _adapter(channel)
    assert isinstance(adapter.confirm_methods, frozenset)
    assert adapter.confirm_methods <= adapter.methods


@pytest.mark.parametrize(("channel", "method"), [(channel, method) for channel in sorted(ADAPTERS)
                                                 for method in sorted(_adapter(channel).methods)
                                                 if method not in _adapter(channel).confirm_methods])
def test_a_method_without_a_confirmation_step_is_refused_by_its_adapter_too(channel: str, method: str) -> None:
    request = ConfirmRequest(attempt_id="att_0123456789abcdef", method=method, channel_order_ref="cs_test_123",
                             amount=Money(100, "CNY"), notify_url="https://hub.example/callbacks/x")
    with pytest.raises(InvalidState):
        _adapter(channel).confirm(None, request)


def test_the_methods_with_a_confirmation_step() -> None:
    declared = {channel: sorted(_adapter(channel).confirm_methods) for channel in ADAPTERS}
    assert declared == {"wechatpay": [], "alipay": [], "ecny": [], "unionpay": ["unionpay.card"],
                        "stripe": ["stripe.card"], "paypal": ["paypal.wallet"], "banktransfer": []}


def test_an_adapter_that_declares_nothing_is_asked_for_every_method(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin written before ``confirm_methods`` existed keeps working: its own ``confirm`` decides."""
    from types import SimpleNamespace

    from chalicelib.service import confirmation

    class OlderPlugin:
        methods = frozenset({"toy.wallet"})

    declared = SimpleNamespace(methods=frozenset({"toy.wallet"}), confirm_methods=frozenset[str]())
    attempt = SimpleNamespace(channel="toy", method="toy.wallet")
    monkeypatch.setattr(confirmation, "adapter", lambda channel: OlderPlugin())
    assert confirmation.has_confirmation(attempt)  # type: ignore[arg-type]
    monkeypatch.setattr(confirmation, "adapter", lambda channel: declared)
    assert not confirmation.has_confirmation(attempt)  # type: ignore[arg-type]
