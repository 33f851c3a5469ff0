"""The check that a channel's answer is about what we asked (its echoed order or refund number).

A signature proves the channel wrote an answer, not that it answered *this* request: answers that carry no
request nonce or a loose time window could be replayed by anyone on the path. Every channel's answers echo our
numbers, and the adapter holds them to it here, one rule for all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.errors import ChannelError


def require_echo(channel: str, answer: Mapping[str, Any], field: str, expected: str, *, required: bool = True) -> None:
    """Raise (outcome unknown: neither refused nor retryable) unless ``answer[field]`` is ``expected``.
    ``required=False``: an answer that omits the field passes (the channel does not always echo it)."""
    value = answer.get(field)
    if value is None and not required:
        return
    if value != expected:
        raise ChannelError(f"{channel} answer is about another {field} than the one asked for",
                           channel_code="ANSWER_MISMATCH")
