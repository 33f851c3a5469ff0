"""Gateway error answers: one class per code with its HTTP status. Business refusals are HTTP 200 with a
``code`` (the bank-gateway convention); authentication failures are 401; outages 5xx."""

from __future__ import annotations


class GatewayError(Exception):
    http_status = 200
    code = "PARAM_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ParamError(GatewayError):
    """A field is missing or malformed."""

    code = "PARAM_ERROR"


class SignInvalid(GatewayError):
    """Signature headers missing, malformed or not verifying."""

    code = "SIGN_INVALID"
    http_status = 401


class TimestampExpired(GatewayError):
    """X-ECNY-Timestamp is outside the 300 s window."""

    code = "TIMESTAMP_EXPIRED"
    http_status = 401


class NonceReplayed(GatewayError):
    """The nonce was already used inside the window (a replayed request)."""

    code = "NONCE_REPLAYED"
    http_status = 401


class MerchantInvalid(GatewayError):
    """Unknown merchant id or key serial."""

    code = "MERCHANT_INVALID"
    http_status = 401


class OrderNotFound(GatewayError):
    """No such order for this merchant."""

    code = "ORDER_NOT_FOUND"


class RefundNotFound(GatewayError):
    """No such refund for this merchant."""

    code = "REFUND_NOT_FOUND"


class OrderPaid(GatewayError):
    """The order is paid: it cannot be closed or pre-ordered again."""

    code = "ORDER_PAID"


class OrderClosed(GatewayError):
    """The order is closed and cannot be pre-ordered again."""

    code = "ORDER_CLOSED"


class OrderExists(GatewayError):
    """out_order_no already used with other parameters."""

    code = "ORDER_EXISTS"


class OrderNotPaid(GatewayError):
    """Refund of an order that was never paid."""

    code = "ORDER_NOT_PAID"


class RefundExceeds(GatewayError):
    """Refunds would exceed the order amount."""

    code = "REFUND_EXCEEDS"


class RefundExists(GatewayError):
    """out_refund_no already used with other parameters."""

    code = "REFUND_EXISTS"


class BalanceInsufficient(GatewayError):
    """The merchant wallet cannot cover the refund."""

    code = "BALANCE_INSUFFICIENT"


class StatementNotReady(GatewayError):
    """That day's file is not generated yet."""

    code = "STATEMENT_NOT_READY"


class SystemError_(GatewayError):  # noqa: N801 - trailing underscore avoids shadowing the builtin
    """Injected outage: resend unchanged later."""

    code = "SYSTEM_ERROR"
    http_status = 500
