"""Callbacks function: channel notifications, verified over the raw bytes, answered the channel's way."""

from __future__ import annotations

import logging

from chalice import Response
from chalice.app import Request

from chalicelib.channels import registry
from chalicelib.domain.errors import NotFound
from chalicelib.service.callbacks import handle_callback
from functions.edge import error_response, request_id
from functions.standalone import Route, standalone_app

log = logging.getLogger(__name__)

# Channels post JSON (WeChat, Stripe, PayPal), forms (Alipay, UnionPay) or XML; the adapter reads raw bytes.
CHANNEL_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain", "text/xml",
                         "application/xml")


def channel_callback(request: Request, channel: str, account: str) -> Response:
    if not registry.is_channel(channel):  # no channel speaks here, so there is no channel-shaped answer to give
        log.warning("callback rejected: unknown channel", extra={"security_event": "callback_rejected",
                                                                 "channel": channel[:64], "account": account[:64]})
        return error_response(NotFound("no such channel", param="channel"), request_id(request))
    reply = handle_callback(channel, account, dict(request.headers), request.raw_body or b"")
    return Response(body=reply.body, status_code=reply.status, headers=dict(reply.headers))


ROUTES: list[Route] = [("/callbacks/{channel}/{account}", "POST", channel_callback, CHANNEL_CONTENT_TYPES)]
app = standalone_app("payhub-callbacks", __name__, ROUTES)
