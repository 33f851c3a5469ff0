"""Stripe webhook verification cases: ``StripeAdapter.verify_and_parse_notification`` (Stripe-Signature parse,
timestamp window both ways, HMAC-SHA256 over ``t.`` + raw body for each configured secret, constant-time compares,
event JSON parse, livemode/account checks, PaymentIntent amount conversion).

Events and signatures come from tests/unit/channels/stripe_kit.py (no network, no AWS).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from chalicelib.channels.base import NotificationKind
from chalicelib.channels.stripe import StripeAdapter
from chalicelib.channels.transport import UrllibTransport

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_ROOT, "tests", "unit", "channels"))
import stripe_kit  # noqa: E402


def cases() -> list[tuple[str, Callable[[], object]]]:
    adapter = StripeAdapter(UrllibTransport())
    body = stripe_kit.event("payment_intent.succeeded", stripe_kit.intent("succeeded"))
    refund_body = stripe_kit.event("refund.updated", stripe_kit.refund("succeeded"), event_id="evt_1PkitRefund")
    one_secret = stripe_kit.make_account()
    rotating = stripe_kit.make_account(webhook_secrets=[stripe_kit.WHSEC, stripe_kit.WHSEC_OLD])
    signed_once = stripe_kit.callback(body, stripe_kit.stripe_signature(body, [stripe_kit.WHSEC]))
    signed_by_old = stripe_kit.callback(body, stripe_kit.stripe_signature(body, [stripe_kit.WHSEC_OLD]))
    refund_callback = stripe_kit.callback(refund_body, stripe_kit.stripe_signature(refund_body, [stripe_kit.WHSEC]))

    def run(account: object, callback: object, kind: NotificationKind) -> Callable[[], object]:
        def verify() -> object:
            [notification] = adapter.verify_and_parse_notification(account, callback)  # type: ignore[arg-type]
            assert notification.kind is kind
            return notification

        verify()  # the case must work before it is timed
        return verify

    return [
        ("payment_intent.succeeded, one secret", run(one_secret, signed_once, NotificationKind.PAYMENT)),
        ("payment_intent.succeeded, two secrets (rotation), old one signed",
         run(rotating, signed_by_old, NotificationKind.PAYMENT)),
        ("refund.updated, one secret", run(one_secret, refund_callback, NotificationKind.REFUND)),
    ]
