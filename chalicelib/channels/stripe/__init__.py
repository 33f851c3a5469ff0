"""Stripe PaymentIntents (``stripe.card``): cards with 3-D Secure, refunds, signed webhooks, balance reports."""

from chalicelib.channels.stripe.adapter import StripeAdapter

__all__ = ["StripeAdapter"]
