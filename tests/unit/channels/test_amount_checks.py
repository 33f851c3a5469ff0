"""``ChecksAmounts``: the adapters whose channel cannot express every ISO amount say so before a refund is reserved,
with exactly the rule their ``refund`` applies when it converts the amount; every other adapter takes any amount."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.channels.base import ChecksAmounts
from chalicelib.channels.paypal import PayPalAdapter
from chalicelib.channels.paypal import amounts as paypal_amounts
from chalicelib.channels.registry import ADAPTERS
from chalicelib.channels.stripe import StripeAdapter
from chalicelib.channels.stripe import amounts as stripe_amounts
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money


class NoNetwork:
    def send(self, *_: object, **__: object) -> object:
        raise AssertionError("an amount check must not call the channel")


STRIPE = StripeAdapter(NoNetwork())  # type: ignore[arg-type]
PAYPAL = PayPalAdapter(NoNetwork())  # type: ignore[arg-type]


@pytest.mark.parametrize(("adapter", "money"), [
    (STRIPE, Money(1235, "KWD")),  # 1.235 KWD: Stripe needs the thousandths digit to be 0
    (STRIPE, Money(1, "BHD")),
    (STRIPE, Money(100, "LYD")),  # not a Stripe currency
    (PAYPAL, Money(1050, "TWD")),  # 10.50 TWD: PayPal takes no decimals for TWD
    (PAYPAL, Money(1, "TWD")),
    (PAYPAL, Money(100, "KRW")),  # not a PayPal currency
])
def test_amounts_the_channel_cannot_express_are_refused_naming_amount(adapter, money):
    with pytest.raises(InvalidRequest) as refused:
        adapter.check_amount(money)
    assert refused.value.param == "amount" and refused.value.http_status == 400


@pytest.mark.parametrize(("adapter", "money"), [
    (STRIPE, Money(1240, "KWD")), (STRIPE, Money(1, "USD")), (STRIPE, Money(7, "JPY")),
    (PAYPAL, Money(1000, "TWD")), (PAYPAL, Money(1, "USD")), (PAYPAL, Money(7, "JPY")),
])
def test_amounts_the_channel_can_express_pass(adapter, money):
    assert adapter.check_amount(money) is None


@given(st.sampled_from(sorted(SUPPORTED_CURRENCIES)), st.integers(min_value=1, max_value=10**9))
def test_the_check_is_exactly_the_conversion_refund_makes(currency, minor):
    money = Money(minor, currency)
    for adapter, to_wire in ((STRIPE, stripe_amounts.to_wire), (PAYPAL, paypal_amounts.to_wire)):
        try:
            to_wire(money)
            convertible = True
        except ValueError:
            convertible = False
        try:
            adapter.check_amount(money)
            accepted = True
        except InvalidRequest:
            accepted = False
        assert accepted is convertible, (adapter.channel, money)


def test_only_stripe_and_paypal_check_amounts():
    checking = {channel for channel, (module, name) in ADAPTERS.items()
                if issubclass(getattr(importlib.import_module(module), name), ChecksAmounts)}
    assert checking == {"stripe", "paypal"}
