"""The gateway's JSON answer, read without re-serialising: Alipay signs the exact text of the
``<method>_response`` value (docs/channels/alipay.md#answers), so we need where that value starts and ends in the raw body.

``members`` walks the top-level object with the stdlib JSON scanner and returns each member's raw text.
"""

from __future__ import annotations

import json

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


class MalformedAnswer(ValueError):
    """The body is not a JSON object the way the gateway writes them."""


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def members(text: str) -> dict[str, str]:
    """Top-level key -> the value's raw text, exactly as received. Duplicate keys are refused: which of two
    ``sign`` members a verifier and a parser picked could differ."""
    index = _skip(text, 0)
    if index >= len(text) or text[index] != "{":
        raise MalformedAnswer("answer is not a JSON object")
    index = _skip(text, index + 1)
    found: dict[str, str] = {}
    if index < len(text) and text[index] == "}":
        return found
    while True:
        if index >= len(text) or text[index] != '"':
            raise MalformedAnswer("expected a member name")
        try:
            key, index = _DECODER.raw_decode(text, index)
            index = _skip(text, index)
            if index >= len(text) or text[index] != ":":
                raise MalformedAnswer("expected ':' after a member name")
            start = _skip(text, index + 1)
            _, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            raise MalformedAnswer(f"answer is not JSON: {exc.msg}") from None
        if key in found:
            raise MalformedAnswer(f"duplicate member {key!r}")
        found[key] = text[start:end]
        index = _skip(text, end)
        if index < len(text) and text[index] == ",":
            index = _skip(text, index + 1)
            continue
        if index < len(text) and text[index] == "}":
            if _skip(text, index + 1) != len(text):
                raise MalformedAnswer("trailing data after the answer")
            return found
        raise MalformedAnswer("expected ',' or '}'")


def response_key(method: str) -> str:
    """``alipay.trade.query`` answers under ``alipay_trade_query_response``."""
    return method.replace(".", "_") + "_response"
