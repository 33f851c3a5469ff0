"""PayPal's error answers: ``{"name", "message", "debug_id", "details": [{"issue", "description"}]}``."""

from __future__ import annotations

import secrets
from typing import Any


class PayPalError(Exception):
    def __init__(self, status: int, name: str, issue: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.name, self.issue, self.message = status, name, issue, message

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "message": self.message, "debug_id": secrets.token_hex(6)}
        if self.issue:
            body["details"] = [{"issue": self.issue, "description": self.message}]
        return body


def invalid_request(issue: str, message: str) -> PayPalError:
    return PayPalError(400, "INVALID_REQUEST", issue, message)


def unprocessable(issue: str, message: str) -> PayPalError:
    return PayPalError(422, "UNPROCESSABLE_ENTITY", issue, message)


def not_found(message: str) -> PayPalError:
    return PayPalError(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", message)


def authentication_failure() -> PayPalError:
    return PayPalError(401, "AUTHENTICATION_FAILURE", None,
                       "Authentication failed due to invalid authentication credentials or a missing Authorization header.")


def internal_error() -> PayPalError:
    return PayPalError(500, "INTERNAL_SERVER_ERROR", None, "An internal server error has occurred.")


class IllegalTransition(Exception):
    """A payer or control action the order's state does not allow (a control-API 409)."""
