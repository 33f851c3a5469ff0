"""Refusals of the bills API, each with its status and stable code (mapped at the edge like every HubError)."""

from __future__ import annotations

from chalicelib.domain.errors import HubError, InvalidState, NotFound


class BillNotAvailable(InvalidState):
    """No money has moved yet (a pending, failed or closed payment; a refund not succeeded): nothing to bill."""

    code = "bill_not_available"


class LinkExpired(HubError):
    """A payer link past its expiry: the merchant can make a new one."""

    http_status = 410
    code = "link_expired"


class LinkInvalid(NotFound):
    """A link the hub did not make (altered, truncated or guessed): answered like any unknown page."""

    code = "not_found"


class StatementNotReady(NotFound):
    code = "statement_not_ready"
