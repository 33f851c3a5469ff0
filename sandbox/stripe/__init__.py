"""Stripe sandbox (PaymentIntents, refunds, webhooks, reporting): ``StripeSandbox().start()`` or
``python -m sandbox.stripe``."""

from .server import DEFAULT_PORT, StripeSandbox

__all__ = ["DEFAULT_PORT", "StripeSandbox"]
