"""A local PayPal (REST: OAuth2, Orders v2, Payments v2, webhooks, Transaction Search) for the hub to talk to."""

from .server import PayPalSandbox

__all__ = ["PayPalSandbox"]
