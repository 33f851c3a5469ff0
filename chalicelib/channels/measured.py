"""Every call the hub makes to a channel, counted per channel account (``observability.channel_call``).

The adapters are shared by all accounts of a channel, and every operation that reaches the channel takes the
account as its first argument: giving the one adapter instance a measuring subclass of its own class measures
each account without touching the adapters. The instance stays the same object and an instance of its class,
so protocol checks (``isinstance(adapter, ChecksAmounts)``) see what they saw before.

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
    """Give ``adapter`` a subclass of its class whose channel operations are measured (same object, same
    protocols); the class's own methods are looked up at each call, so one replaced there later still runs."""
    adapter.__class__ = _measured_class(type(adapter), channel)
    return adapter


_CLASSES: dict[tuple[type, str], type] = {}


def _measured_class(cls: type, channel: str) -> type:
    if (cls, channel) in _CLASSES:
        return _CLASSES[cls, channel]
    operations = {op: _measured(cls, channel, op) for op in MEASURED_OPERATIONS if callable(getattr(cls, op, None))}
    measured = _CLASSES[cls, channel] = type(f"Measured{cls.__name__}", (cls,), {**operations, "__module__": __name__})
    return measured


def _measured(cls: type, channel: str, operation: str) -> Callable[..., Any]:
    @functools.wraps(getattr(cls, operation))
    def call(self: Any, account: Any, *args: Any, **kwargs: Any) -> Any:
        method = getattr(cls, operation).__get__(self, cls)  # the adapter's own, never this wrapper
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
