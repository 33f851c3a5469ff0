"""Callbacks function: channel notifications, verified over the raw bytes, answered the channel's way."""

from __future__ import annotations

from chalice import Response
from chalice.app import Request

from chalicelib.service.callbacks import handle_callback
from functions.standalone import Route, standalone_app

# Channels post JSON (WeChat, Stripe, PayPal), forms (Alipay, UnionPay) or XML; the adapter reads raw bytes.
CHANNEL_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain", "text/xml",
                         "application/xml")


def channel_callback(request: Request, channel: str, account: str) -> Response:
    reply = handle_callback(channel, account, dict(request.headers), request.raw_body or b"")
    return Response(body=reply.body, status_code=reply.status, headers=dict(reply.headers))


ROUTES: list[Route] = [("/callbacks/{channel}/{account}", "POST", channel_callback, CHANNEL_CONTENT_TYPES)]
app = standalone_app("payhub-callbacks", __name__, ROUTES)
