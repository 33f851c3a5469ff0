"""The two text forms ACP uses on the wire.

Requests and notifications are ``application/x-www-form-urlencoded`` UTF-8 (values URL-encoded).
Synchronous answers are ``k=v&k=v`` with *raw* values; a value that itself contains ``&`` or ``=`` is
wrapped in ``{...}`` (or ``[...]``), so the split on ``&`` only happens outside brackets, the way UnionPay's
SDK reads them. Duplicate keys are refused in both: two values for one signed field is an attack or a bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

_OPEN, _CLOSE = "{[", "}]"


class MalformedMessage(ValueError):
    """The text is not a well-formed ACP message."""


def encode_form(fields: Mapping[str, str]) -> bytes:
    return urlencode(list(fields.items()), encoding="utf-8").encode("ascii")


def decode_form(body: bytes) -> dict[str, str]:
    """A URL-encoded form, exactly as posted (blank values kept: they were signed as sent)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage("body is not a UTF-8 URL-encoded form") from exc
    return _unique(pairs)


def decode_answer(body: bytes) -> dict[str, str]:
    """A synchronous answer: ``k=v&...`` with raw values, ``&`` inside ``{}``/``[]`` not splitting."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise MalformedMessage("answer is not UTF-8") from exc
    if not text:
        raise MalformedMessage("answer is empty")
    pairs: list[tuple[str, str]] = []
    depth, start = 0, 0
    for index, char in enumerate(text + "&"):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth = max(depth - 1, 0)
        elif char == "&" and depth == 0:
            pairs.append(_pair(text[start:index]))
            start = index + 1
    return _unique(pairs)


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise MalformedMessage("answer has an item without key=value")
    return key, value


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise MalformedMessage(f"field {key} appears twice")
        fields[key] = value
    return fields
