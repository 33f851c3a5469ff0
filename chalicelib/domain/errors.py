"""The hub's error hierarchy: one class per situation, each with an HTTP status and a stable code.

Mapped to the API error body once, at the edge (functions/). Foreign errors are wrapped with
``raise ... from exc`` so the cause stays in the traceback but never in the merchant-facing message.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    http_status = 500
    code = "internal_error"
    retry_after_s: int | None = None  # set on transient failures: the same request may be sent again after this

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(HubError):
    """The request body or a parameter is malformed; ``param`` names the field."""

    http_status = 400
    code = "invalid_request"


class AuthenticationFailed(HubError):
    """Missing or unknown API key."""

    http_status = 401
    code = "authentication_failed"


class NotFound(HubError):
    """No such object for this merchant (another merchant's objects are 404 too, never 403)."""

    http_status = 404
    code = "not_found"


class Conflict(HubError):
    """The request conflicts with the object's current state."""

    http_status = 409
    code = "conflict"


class IdempotencyInFlight(Conflict):
    """A request with the same Idempotency-Key is still being processed."""

    code = "idempotency_in_flight"


class DuplicateMerchantOrderNo(Conflict):
    """``merchant_order_no`` already names another payment of this merchant."""

    code = "duplicate_merchant_order_no"


class DuplicateMerchantRefundNo(Conflict):
    """``merchant_refund_no`` already names another refund of this payment."""

    code = "duplicate_merchant_refund_no"


class InvalidState(Conflict):
    """The object is not in a state that allows this operation."""

    code = "invalid_state"


class StepUpPending(InvalidState):
    """The payer's step-up is under way at its provider (a face check not finished yet): ask again later."""

    code = "step_up_pending"


class Unprocessable(HubError):
    """Well-formed request that cannot be carried out."""

    http_status = 422
    code = "unprocessable"


class IdempotencyKeyReused(Unprocessable):
    """The same Idempotency-Key was sent with a different request body."""

    code = "idempotency_key_reused"


class RefundExceedsCaptured(Unprocessable):
    """The refund would push the refunded total past the captured amount."""

    code = "refund_exceeds_captured"


class DayNotOver(Unprocessable):
    """A Beijing day that has not ended yet cannot be reconciled or settled: its statement would be partial."""

    code = "day_not_over"


class FxRateUnavailable(Unprocessable):
    """No rate snapshot of the pair is valid now: a converted payment cannot lock a rate, so it is not created."""

    code = "fx_rate_unavailable"


class NoChannelAvailable(Unprocessable):
    """No enabled channel account supports the requested method and currency."""

    code = "no_channel_available"


class ChannelError(HubError):
    """The channel answered with an error or could not be reached."""

    http_status = 502
    code = "channel_error"

    def __init__(self, message: str, *, channel_code: str | None = None, retryable: bool = False,
                 refused: bool = False) -> None:
        super().__init__(message)
        self.channel_code = channel_code
        self.retryable = retryable  # a transient failure: the same request may be sent again
        if retryable:  # nothing is known to have happened, and trying again later is the answer: 503
            self.http_status, self.code, self.retry_after_s = 503, "channel_unavailable", 2
        # The channel answered with a definite business refusal (nothing happened there). Anything neither
        # refused nor retryable leaves the outcome unknown, and only a query can tell what happened.
        self.refused = refused


class ChannelOrderExists(ChannelError):
    """A create the channel already holds under our id and will not answer again with the payer's handle (UnionPay's
    duplicate transaction). The hub finds out where that order stands and, if it is unpaid, replaces it."""

    def __init__(self, message: str, *, channel_code: str | None = None) -> None:
        super().__init__(message, channel_code=channel_code)


class CallbackRejected(HubError):
    """A channel callback failed verification (signature, timestamp, decryption, envelope)."""

    http_status = 401
    code = "callback_rejected"


class CardVaultUnavailable(HubError):
    """The key service behind the card vault could not be reached or refused the call; safe to retry."""

    http_status = 503
    code = "card_vault_unavailable"
    retry_after_s = 1


class TemporarilyUnavailable(HubError):
    """A service the hub stores its records in is throttling or briefly unreachable; safe to retry."""

    http_status = 503
    code = "temporarily_unavailable"
    retry_after_s = 1


class CardUnreadable(HubError):
    """A vaulted card failed authentication (tampered record or wrong key): it is never used."""

    http_status = 500
    code = "card_unreadable"


class RiskDenied(HubError):
    """Risk control refused the operation (a deny rule, a block list); nothing was sent to a channel."""

    http_status = 402
    code = "risk_denied"


class StepUpRequired(HubError):
    """Risk control wants the payer verified (payment ``step_up``) before this operation goes ahead."""

    http_status = 402
    code = "step_up_required"


class StepUpFailed(HubError):
    """The payer's step-up answer was wrong, the challenge expired, or its tries are used up."""

    http_status = 422
    code = "step_up_failed"


class StepUpRateLimited(HubError):
    """Too many one-time codes for this payer or phone number; try again later."""

    http_status = 429
    code = "step_up_rate_limited"
    retry_after_s = 60
