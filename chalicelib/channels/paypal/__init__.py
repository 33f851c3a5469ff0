"""PayPal Checkout (REST, Orders v2): OAuth2 client credentials, capture on approval, webhook certificates."""

from chalicelib.channels.paypal.adapter import PayPalAdapter

__all__ = ["PayPalAdapter"]
