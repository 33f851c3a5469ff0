"""Reading a request body as JSON, refusing what would hurt later steps before any of them runs.

Python's ``json`` module recurses once per nesting level (a few thousand ``[`` end in ``RecursionError``) and
turns ``"\\ud800"`` into a string that cannot be encoded as UTF-8 (hashing it for the Idempotency-Key, storing
it, or passing it to a channel then fails). Both are refused here as a 400, before the body is hashed, with
the field named where there is one. The limits are far above what any request of the API needs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalicelib.domain.errors import InvalidRequest

MAX_BODY_BYTES = 64 * 1024  # the largest valid request (a payment with 20 metadata entries) is under 16 KiB
MAX_DEPTH = 16  # deepest valid request: payment -> card or payer or metadata -> value (3)

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def read_object(raw: bytes | None, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``). InvalidRequest for anything else. ``max_bytes``: a
    route that takes large bodies (a batch of 10,000 payouts) says so; every other keeps the default."""
    data = raw or b""
    if len(data) > max_bytes:
        raise InvalidRequest(f"request body is larger than {max_bytes} bytes")
    if not data.strip():
        return {}
    if _nesting_depth(data) > MAX_DEPTH:
        raise InvalidRequest(f"request body is nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:  # UnicodeDecodeError is a ValueError; named for the reader
        raise InvalidRequest("request body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("request body must be a JSON object")
    _refuse_lone_surrogates(value)
    return value


def _nesting_depth(data: bytes) -> int:
    """Deepest bracket nesting, counted without parsing: string literals (which may hold brackets) are cut out
    first, then only brackets are walked. Linear in the body, no recursion; malformed bodies are judged by the
    parser afterwards."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data))
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _refuse_lone_surrogates(root: dict[str, Any]) -> None:
    """Every key and string value must be valid Unicode. Paths only ever hold keys already checked."""
    pending: list[tuple[str, Any]] = [("", root)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                if _SURROGATE.search(key):
                    raise InvalidRequest(f"{path or 'body'}: a key is not valid Unicode (lone surrogate)",
                                         param=path or None)
                pending.append((where, item))
        elif isinstance(value, list):
            pending.extend((f"{path}.{index}", item) for index, item in enumerate(value))
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise InvalidRequest(f"{path}: not valid Unicode (lone surrogate)", param=path)

