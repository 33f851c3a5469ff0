"""Stripe's error answers: ``{"error": {"type", "code", "message", "param", "decline_code", ...}}`` with the
HTTP status Stripe uses for each type (docs.stripe.com/api/errors)."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """``stored``: whether an answer with this error is kept under the request's Idempotency-Key (a request that
    fails validation is not; one that failed after the endpoint started working is; docs/channels/stripe.md#idempotency-keys)."""

    http_status = 400
    error_type = "invalid_request_error"
    stored = True

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 decline_code: str | None = None, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.param, self.decline_code = message, code, param, decline_code
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        for name in ("code", "param", "decline_code"):
            if getattr(self, name):
                error[name] = getattr(self, name)
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(StripeError):
    """A parameter is missing or malformed; nothing was done."""

    stored = False


class Refused(StripeError):
    """Well-formed, but the object does not allow it (over-refund, already refunded): a stored answer."""


class NotFound(StripeError):
    http_status = 404
    stored = False

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, code="resource_missing", param=param)


class UnexpectedState(StripeError):
    """The object is not in a state that allows the operation (cancel a succeeded intent, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="payment_intent_unexpected_state")


class AuthenticationError(StripeError):
    http_status = 401
    stored = False
    error_type = "invalid_request_error"  # Stripe reports bad keys as invalid_request_error with 401


class CardError(StripeError):
    http_status = 402
    error_type = "card_error"


class IdempotencyError(StripeError):
    error_type = "idempotency_error"
    stored = False


class IdempotencyInFlight(StripeError):
    http_status = 409
    error_type = "idempotency_error"
    stored = False

    def __init__(self, message: str) -> None:
        super().__init__(message, code="idempotency_key_in_use", headers={"Stripe-Should-Retry": "true"})


class ApiError(StripeError):
    http_status = 500
    error_type = "api_error"
