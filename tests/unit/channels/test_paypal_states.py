"""PayPal amounts on the wire (property-tested), status mappings (exhaustive; unknown -> query again) and the
webhook events reduced to notifications."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paypal_kit import MERCHANT_ID, capture, event, order, refund

from chalicelib.channels.base import NotificationKind, PaymentOutcome, RefundOutcome
from chalicelib.channels.paypal import amounts, notifications, states
from chalicelib.domain.errors import CallbackRejected
from chalicelib.domain.money import Money, exponent

CURRENCIES = sorted(amounts.PAYPAL_CURRENCIES)


@given(st.sampled_from(CURRENCIES), st.integers(min_value=1, max_value=10**15))
def test_wire_round_trip_is_exact_and_uses_paypals_decimals(currency, minor):
    money = Money(minor, currency)
    if currency in amounts.NO_DECIMALS and exponent(currency) and minor % 10 ** exponent(currency):
        with pytest.raises(ValueError):
            amounts.to_wire(money)
        return
    wire = amounts.to_wire(money)
    assert wire["currency_code"] == currency
    value = wire["value"]
    decimals = amounts.wire_decimals(currency)
    assert ("." in value) == (decimals > 0) and (not decimals or len(value.split(".")[1]) == decimals)
    assert Decimal(value) * 10 ** exponent(currency) == minor  # the same amount, no float anywhere
    assert amounts.from_wire(wire) == money


@given(st.integers(min_value=1, max_value=10**12))
def test_zero_decimal_currencies(minor):
    assert amounts.to_wire(Money(minor, "JPY"))["value"] == str(minor)
    assert amounts.to_wire(Money(minor * 100, "TWD"))["value"] == str(minor)


@pytest.mark.parametrize("money", [Money(0, "USD"), Money(-5, "USD"), Money(100, "KRW"), Money(1001, "KWD")])
def test_amounts_paypal_refuses(money):
    with pytest.raises(ValueError):
        amounts.to_wire(money)


@pytest.mark.parametrize("block", [{"currency_code": "USD", "value": "1.005"}, {"currency_code": "JPY", "value": "10.5"},
                                   {"currency_code": "USD", "value": "1e3"}, {"currency_code": "USD", "value": "-1.00"},
                                   {"currency_code": "USD", "value": 10}, {"value": "1.00"}, "10.00",
                                   {"currency_code": "USD", "value": " 1.00"}, {"currency_code": "USD", "value": "NaN"}])
def test_malformed_wire_amounts_are_refused(block):
    with pytest.raises(ValueError):
        amounts.from_wire(block)


def test_signed_wire_amounts_for_reports():
    assert amounts.from_wire({"currency_code": "USD", "value": "-2.50"}, signed=True) == Money(-250, "USD")


@pytest.mark.parametrize(("status", "outcome"), [*states.ORDER_STATES.items(), ("COMPLETED", PaymentOutcome.PENDING),
                                                  ("SOMETHING_NEW", PaymentOutcome.PENDING), ("", PaymentOutcome.PENDING)])
def test_order_states(status, outcome):
    assert states.order_outcome(status) is outcome


def test_every_mapping_is_exhaustive_and_unknowns_never_succeed():
    assert set(states.CAPTURE_STATES) == {"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED", "PENDING", "DECLINED", "FAILED"}
    assert set(states.REFUND_STATES) == {"COMPLETED", "PENDING", "FAILED", "CANCELLED"}
    assert set(states.ORDER_STATES) == {"CREATED", "SAVED", "PAYER_ACTION_REQUIRED", "APPROVED", "VOIDED"}
    for unknown in ("", "UNKNOWN", "completed", "SUCCESS"):
        assert states.capture_outcome(unknown) is PaymentOutcome.PENDING
        assert states.order_outcome(unknown) is PaymentOutcome.PENDING
        assert states.refund_outcome(unknown) is RefundOutcome.PROCESSING


@pytest.mark.parametrize(("event_type", "resource", "kind", "outcome"), [
    ("CHECKOUT.ORDER.APPROVED", order("APPROVED"), NotificationKind.PAYMENT, PaymentOutcome.REQUIRES_CONFIRMATION),
    ("PAYMENT.CAPTURE.COMPLETED", capture("COMPLETED"), NotificationKind.PAYMENT, PaymentOutcome.SUCCEEDED),
    ("PAYMENT.CAPTURE.PENDING", capture("PENDING"), NotificationKind.PAYMENT, PaymentOutcome.PROCESSING),
    ("PAYMENT.CAPTURE.DENIED", capture("DECLINED"), NotificationKind.PAYMENT, PaymentOutcome.FAILED),
    ("PAYMENT.CAPTURE.REFUNDED", refund("COMPLETED"), NotificationKind.REFUND, RefundOutcome.SUCCEEDED),
])
def test_events_become_notifications(event_type, resource, kind, outcome):
    parsed = notifications.parse_event(event(event_type, resource))
    assert parsed.kind is kind and parsed.channel_merchant_id == MERCHANT_ID
    status = parsed.payment if kind is NotificationKind.PAYMENT else parsed.refund
    assert status is not None and status.outcome is outcome
    assert parsed.object_id == ("att_test0001" if kind is NotificationKind.PAYMENT else "re_test0001")


def test_a_reversal_is_never_one_of_our_refunds_and_never_final():
    reversal = {"id": "8MC585209K746392H", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "10.00"},
                "payer": {"merchant_id": MERCHANT_ID}}
    parsed = notifications.parse_event(event("PAYMENT.CAPTURE.REVERSED", reversal))
    assert parsed.kind is NotificationKind.REFUND and parsed.object_id == "8MC585209K746392H"
    assert parsed.refund is not None and parsed.refund.outcome is RefundOutcome.PROCESSING
    assert parsed.alert == "chargeback"  # the hub raises it for a person and never applies it


def test_only_a_reversal_carries_an_alert():
    assert notifications.parse_event(event("PAYMENT.CAPTURE.COMPLETED", capture())).alert is None
    assert notifications.parse_event(event("PAYMENT.CAPTURE.REFUNDED", refund("COMPLETED"))).alert is None


@pytest.mark.parametrize("bad", [
    event("PAYMENT.SALE.COMPLETED", capture()),
    event("PAYMENT.CAPTURE.COMPLETED", {k: v for k, v in capture().items() if k != "custom_id"}),
    event("PAYMENT.CAPTURE.COMPLETED", {k: v for k, v in capture().items() if k != "payee"}),
    event("PAYMENT.CAPTURE.COMPLETED", capture(value="10.001")),
    {"event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": capture()},
    event("CHECKOUT.ORDER.APPROVED", {"id": "X", "status": "APPROVED", "purchase_units": []}),
])
def test_malformed_or_unsupported_events_are_rejected(bad):
    with pytest.raises(CallbackRejected):
        notifications.parse_event(bad)


def test_acknowledgement_is_a_plain_status():
    assert notifications.acknowledgement(True).status == 200
    assert notifications.acknowledgement(False).status == 400
