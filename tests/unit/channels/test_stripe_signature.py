"""Stripe-Signature verification (docs/channels/stripe.md#webhook-signature) and webhook events reduced to notifications."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from stripe_kit import (
    ACCT,
    NOW,
    NOW_TS,
    WHSEC,
    WHSEC_OLD,
    callback,
    event,
    intent,
    make_account,
    refund,
    stripe_signature,
)

from chalicelib.channels.base import NotificationKind, PaymentOutcome, RefundOutcome
from chalicelib.channels.stripe import StripeAdapter
from chalicelib.channels.stripe.signature import SignatureInvalid, expected_signature, parse_header, verify
from chalicelib.config.secret import Secret
from chalicelib.domain.errors import CallbackRejected
from chalicelib.domain.money import Money


@pytest.fixture
def adapter() -> StripeAdapter:
    return StripeAdapter(transport=None)  # type: ignore[arg-type]  # callbacks never touch the network


BODY = event("payment_intent.succeeded", intent("succeeded"))


def test_fixed_vector_matches_hmac_sha256_over_t_dot_body() -> None:
    # Known answer computed independently: HMAC-SHA256(key = whole secret incl. "whsec_", "1700000000." + body).
    body = b'{"id":"evt_test","object":"event"}'
    reference = hmac.new(b"whsec_test_secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert expected_signature("whsec_test_secret", "1700000000", body) == reference
    frozen = NOW.replace(year=2023, month=11, day=14, hour=22, minute=13, second=20)  # 1700000000
    assert int(frozen.timestamp()) == 1700000000
    assert verify(f"t=1700000000,v1={reference}", body, [Secret("whsec_test_secret")], frozen) == 1700000000


def test_valid_event_parses_to_a_payment_notification(adapter: StripeAdapter) -> None:
    header = stripe_signature(BODY, [WHSEC])
    [notification] = adapter.verify_and_parse_notification(make_account(), callback(BODY, header))
    assert notification.kind is NotificationKind.PAYMENT
    assert (notification.event_id, notification.object_id, notification.channel_merchant_id) == (
        "evt_1PkitEvent", "att_test1", ACCT)
    assert notification.payment is not None
    assert notification.payment.outcome is PaymentOutcome.SUCCEEDED
    assert notification.payment.amount == Money(1000, "USD")
    assert notification.payment.channel_transaction_id == "pi_3PkitIntent000001"


@pytest.mark.parametrize("header", [
    None, "", "t=,v1=", f"t={NOW_TS}", f"v1={'0' * 64}", "garbage",
    f"t={NOW_TS},v0=" + "0" * 64,  # only the legacy scheme: no v1 at all
])
def test_missing_or_malformed_headers_are_rejected(adapter: StripeAdapter, header: str | None) -> None:
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(make_account(), callback(BODY, header))


def test_whitespace_after_comma_is_not_tolerated() -> None:
    header = stripe_signature(BODY, [WHSEC]).replace(",v1=", ", v1=")
    with pytest.raises(SignatureInvalid):
        verify(header, BODY, [Secret(WHSEC)], NOW)


def test_v0_is_ignored_and_extra_v1_values_are_fine() -> None:
    header = stripe_signature(BODY, [WHSEC], extra=",v0=deadbeef,v1=" + "ab" * 32 + ",x=unknown")
    assert verify(header, BODY, [Secret(WHSEC)], NOW) == NOW_TS


@pytest.mark.parametrize("change", [
    lambda b: b.replace(b'"amount": 1000', b'"amount": 1001'),
    lambda b: b.replace(b"att_test1", b"att_other"),
    lambda b: b.replace(b"succeeded", b"processing"),
    lambda b: b + b"\n",
    lambda b: b.replace(b"  ", b" "),  # whitespace alone: the signature covers the exact bytes
])
def test_each_tampered_body_is_rejected(adapter: StripeAdapter, change) -> None:
    header = stripe_signature(BODY, [WHSEC])
    tampered = change(BODY)
    assert tampered != BODY
    with pytest.raises(CallbackRejected, match="signature"):
        adapter.verify_and_parse_notification(make_account(), callback(tampered, header))


def test_tampered_timestamp_is_rejected(adapter: StripeAdapter) -> None:
    header = stripe_signature(BODY, [WHSEC]).replace(f"t={NOW_TS}", f"t={NOW_TS + 1}")
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(make_account(), callback(BODY, header))


def test_forged_with_another_secret_is_rejected(adapter: StripeAdapter) -> None:
    header = stripe_signature(BODY, ["whsec_attacker_guess"])
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(make_account(), callback(BODY, header))


@pytest.mark.parametrize(("offset_s", "accepted"), [
    (-301, False), (-299, True), (0, True), (299, True), (301, False), (3600, False),
])
def test_timestamp_tolerance_in_both_directions(adapter: StripeAdapter, offset_s: int, accepted: bool) -> None:
    header = stripe_signature(BODY, [WHSEC], ts=NOW_TS + offset_s)
    if accepted:
        assert adapter.verify_and_parse_notification(make_account(), callback(BODY, header))
    else:
        with pytest.raises(CallbackRejected, match="tolerance"):
            adapter.verify_and_parse_notification(make_account(), callback(BODY, header))


def test_window_is_judged_at_arrival_not_when_processed(adapter: StripeAdapter) -> None:
    header = stripe_signature(BODY, [WHSEC], ts=NOW_TS - 200)
    assert adapter.verify_and_parse_notification(make_account(), callback(BODY, header, NOW))
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(make_account(), callback(BODY, header, NOW + timedelta(seconds=200)))


def test_secret_rotation_with_overlap() -> None:
    adapter = StripeAdapter(transport=None)  # type: ignore[arg-type]
    signed_by_old = stripe_signature(BODY, [WHSEC_OLD])
    signed_by_new = stripe_signature(BODY, [WHSEC])
    signed_by_both = stripe_signature(BODY, [WHSEC, WHSEC_OLD])  # what Stripe sends during the overlap
    before = make_account(webhook_secrets=[WHSEC_OLD])
    during = make_account(webhook_secrets=[WHSEC, WHSEC_OLD])
    after = make_account(webhook_secrets=[WHSEC])
    assert adapter.verify_and_parse_notification(before, callback(BODY, signed_by_old))
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(before, callback(BODY, signed_by_new))
    for header in (signed_by_old, signed_by_new, signed_by_both):
        assert adapter.verify_and_parse_notification(during, callback(BODY, header))
    assert adapter.verify_and_parse_notification(after, callback(BODY, signed_by_new))
    assert adapter.verify_and_parse_notification(after, callback(BODY, signed_by_both))
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(after, callback(BODY, signed_by_old))


def test_no_secret_configured_rejects_everything(adapter: StripeAdapter) -> None:
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(make_account(webhook_secrets=[]), callback(BODY, stripe_signature(BODY, [WHSEC])))


def test_parse_header_splits_on_first_equals_only() -> None:
    assert parse_header("t=1,v1=a=b,v1=c") == ("1", ["a=b", "c"])
    with pytest.raises(SignatureInvalid):
        parse_header("t=1,t=2,v1=a")


def test_livemode_mismatch_is_rejected(adapter: StripeAdapter) -> None:
    body = event("payment_intent.succeeded", intent(), livemode=True)
    with pytest.raises(CallbackRejected, match="livemode"):
        adapter.verify_and_parse_notification(make_account(), callback(body, stripe_signature(body, [WHSEC])))


def test_event_for_another_account_carries_that_account_for_the_hub_cross_check(adapter: StripeAdapter) -> None:
    body = event("payment_intent.succeeded", intent(), account="acct_SOMEBODYELSE")
    [notification] = adapter.verify_and_parse_notification(make_account(), callback(body, stripe_signature(body, [WHSEC])))
    assert notification.channel_merchant_id == "acct_SOMEBODYELSE"


def test_direct_account_events_without_account_use_the_configured_id(adapter: StripeAdapter) -> None:
    body = event("payment_intent.succeeded", intent(), account=None)
    [notification] = adapter.verify_and_parse_notification(make_account(), callback(body, stripe_signature(body, [WHSEC])))
    assert notification.channel_merchant_id == ACCT


@pytest.mark.parametrize(("event_type", "obj", "outcome"), [
    ("payment_intent.succeeded", intent("succeeded"), PaymentOutcome.SUCCEEDED),
    ("payment_intent.processing", intent("processing"), PaymentOutcome.PROCESSING),
    ("payment_intent.canceled", intent("canceled"), PaymentOutcome.CLOSED),
    ("payment_intent.requires_action", intent("requires_action"), PaymentOutcome.PENDING),
    ("payment_intent.amount_capturable_updated", intent("requires_capture"), PaymentOutcome.REQUIRES_CONFIRMATION),
    ("payment_intent.payment_failed",
     intent("requires_payment_method", confirmation_method="manual",
            last_payment_error={"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}),
     PaymentOutcome.FAILED),
    # A Stripe.js (automatic confirmation) decline: the payer may try another card, so not a failure yet.
    ("payment_intent.payment_failed",
     intent("requires_payment_method", confirmation_method="automatic",
            last_payment_error={"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}),
     PaymentOutcome.PENDING),
])
def test_payment_events(adapter: StripeAdapter, event_type: str, obj: dict, outcome: PaymentOutcome) -> None:
    body = event(event_type, obj)
    [notification] = adapter.verify_and_parse_notification(make_account(), callback(body, stripe_signature(body, [WHSEC])))
    assert notification.payment is not None and notification.payment.outcome is outcome
    if outcome is PaymentOutcome.FAILED:
        assert notification.payment.raw_status == "requires_payment_method:insufficient_funds"


@pytest.mark.parametrize(("event_type", "status", "outcome"), [
    ("refund.created", "pending", RefundOutcome.PROCESSING),
    ("refund.updated", "succeeded", RefundOutcome.SUCCEEDED),
    ("refund.failed", "failed", RefundOutcome.FAILED),
    ("refund.updated", "canceled", RefundOutcome.FAILED),
    ("refund.updated", "requires_action", RefundOutcome.PROCESSING),
])
def test_refund_events(adapter: StripeAdapter, event_type: str, status: str, outcome: RefundOutcome) -> None:
    body = event(event_type, refund(status))
    [notification] = adapter.verify_and_parse_notification(make_account(), callback(body, stripe_signature(body, [WHSEC])))
    assert (notification.kind, notification.object_id) == (NotificationKind.REFUND, "re_ourRefund1")
    assert notification.refund is not None and notification.refund.outcome is outcome
    assert notification.refund.channel_refund_id == "re_3PkitRefund00001"


def test_charge_refunded_with_embedded_refunds_gives_one_notification_per_refund(adapter: StripeAdapter) -> None:
    charge = {"id": "ch_1", "object": "charge", "amount": 1000, "currency": "usd", "payment_intent": "pi_1",
              "refunds": {"object": "list", "data": [refund("succeeded", refund_id="re_a"),
                                                     {**refund("pending", refund_id="re_b"), "id": "re_stripe_b"},
                                                     {**refund(), "metadata": {}}]}}
    body = event("charge.refunded", charge)
    found = adapter.verify_and_parse_notification(make_account(), callback(body, stripe_signature(body, [WHSEC])))
    assert [(n.object_id, n.event_id) for n in found] == [
        ("re_a", "evt_1PkitEvent:re_3PkitRefund00001"), ("re_b", "evt_1PkitEvent:re_stripe_b")]


def test_events_the_hub_does_not_act_on_are_acknowledged_without_notifications(adapter: StripeAdapter) -> None:
    for body in (event("charge.refunded", {"id": "ch_1", "object": "charge", "amount": 1, "currency": "usd"}),
                 event("customer.created", {"id": "cus_1", "object": "customer"}),
                 event("payment_intent.succeeded", {**intent(), "metadata": {}})):
        assert adapter.verify_and_parse_notification(make_account(), callback(body, stripe_signature(body, [WHSEC]))) == []


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"object":"event"}', event("payment_intent.succeeded", refund()),
    event("payment_intent.succeeded", intent(currency="xyz")), event("refund.updated", refund(amount=-5)),
])
def test_verified_but_malformed_events_are_rejected(adapter: StripeAdapter, body: bytes) -> None:
    with pytest.raises(CallbackRejected):
        adapter.verify_and_parse_notification(make_account(), callback(body, stripe_signature(body, [WHSEC])))


def test_acknowledgement() -> None:
    adapter = StripeAdapter(transport=None)  # type: ignore[arg-type]
    assert adapter.acknowledge(True).status == 200
    assert adapter.acknowledge(False).status == 400
