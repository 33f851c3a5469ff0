"""Every call the hub makes to a channel, counted per channel account (``observability.channel_call``).

The adapters are shared by all accounts of a channel, and every operation that reaches the channel takes the
account as its first argument: wrapping those methods on the one adapter instance measures each account
without touching the seven adapters. The instance stays the same object, so protocol checks
(``isinstance(adapter, ChecksAmounts)``) see what they saw before.

A call *fails* when the channel could not be reached, answered with an error, or answered something the hub
cannot trust; a definite business refusal (``refused``: nothing happened there) and UnionPay's "order already
exists" are answers, not failures. An answer that fails its signature check or names another order is also a
security event: either the channel is broken or someone sits between it and us.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import ChannelError, ChannelOrderExists
from chalicelib.observability import channel_call, security_event

MEASURED_OPERATIONS = ("create", "query", "close", "refund", "query_refund", "confirm")
log = logging.getLogger(__name__)
UNTRUSTED_ANSWER_CODES = frozenset({"RESPONSE_SIGNATURE_INVALID", "ANSWER_MISMATCH", "ORDER_MISMATCH",
                                    "ATTEMPT_MISMATCH", "REFUND_MISMATCH"})


def instrument(adapter: Any, channel: str) -> Any:
    for operation in MEASURED_OPERATIONS:
        if callable(getattr(type(adapter), operation, None)):
            setattr(adapter, operation, _measured(adapter, channel, operation))
    return adapter


def _measured(adapter: Any, channel: str, operation: str) -> Callable[..., Any]:
    cls = type(adapter)

    @functools.wraps(getattr(cls, operation))
    def call(account: Any, *args: Any, **kwargs: Any) -> Any:
        # Looked up on the class at each call, so a method replaced there later (a test's fault) still runs.
        method = getattr(cls, operation).__get__(adapter, cls)
        account_id = getattr(account, "account_id", None) or "unknown"
        started = time.monotonic()
        failed, code = False, None
        try:
            return method(account, *args, **kwargs)
        except ChannelOrderExists:
            code = "ORDER_EXISTS"
            raise
        except ChannelError as exc:
            failed, code = not exc.refused, exc.channel_code
            if code in UNTRUSTED_ANSWER_CODES:
                log.warning("channel answer rejected: %s", exc.message, extra=security_event(
                    "answer_rejected", channel=channel, account=account_id, operation=operation, channel_code=code))
            raise
        except Exception as exc:
            failed, code = True, type(exc).__name__
            raise
        finally:
            channel_call(channel, account_id, operation, failed=failed,
                         elapsed_ms=(time.monotonic() - started) * 1000, code=code)

    return call
