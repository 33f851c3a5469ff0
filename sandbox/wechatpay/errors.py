"""WeChat Pay v3 error answers: one class per situation, each with its HTTP status and WeChat ``code``.

Statuses follow WeChat's published tables where docs/channels/wechatpay.md#error-codes lists the code; where the real channel's
status is not confirmed, the choice is noted on the class.
"""

from __future__ import annotations


class WeChatPayError(Exception):
    """Base: rendered once, at the edge, as ``{"code", "message"}`` with ``http_status``."""

    http_status = 400
    code = "PARAM_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SignError(WeChatPayError):
    """Authorization header missing, malformed, stale, for an unknown merchant/serial, or not verifying."""

    http_status = 401
    code = "SIGN_ERROR"


class ParamError(WeChatPayError):
    """A field is missing or malformed."""

    http_status = 400
    code = "PARAM_ERROR"


class InvalidRequest(WeChatPayError):
    """Well-formed but not allowed now: reused out_trade_no/out_refund_no with other data, over-refund."""

    http_status = 400
    code = "INVALID_REQUEST"


class OrderPaid(WeChatPayError):
    """The order is already paid (403, as the hub must not treat it as a retryable parameter problem)."""

    http_status = 403
    code = "ORDERPAID"


class OrderClosed(WeChatPayError):
    """The order was closed; it can no longer be paid or re-created."""

    http_status = 400
    code = "ORDER_CLOSED"


class OrderNotExist(WeChatPayError):
    """No such order for this merchant."""

    http_status = 404
    code = "ORDER_NOT_EXIST"


class ResourceNotExists(WeChatPayError):
    """No such refund (or order, on the refund endpoints) for this merchant."""

    http_status = 404
    code = "RESOURCE_NOT_EXISTS"


class NotEnough(WeChatPayError):
    """The merchant's balance in the sandbox ledger cannot cover the refund."""

    http_status = 403
    code = "NOT_ENOUGH"


class NoStatementExist(WeChatPayError):
    """No movements that day, so WeChat generates no bill."""

    http_status = 400
    code = "NO_STATEMENT_EXIST"


class SystemError_(WeChatPayError):  # noqa: N801 - trailing underscore avoids shadowing the builtin
    """Injected 5xx: the channel failed; the client should retry with the same parameters."""

    http_status = 500
    code = "SYSTEM_ERROR"
