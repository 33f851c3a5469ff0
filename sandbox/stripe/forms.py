"""Decoding Stripe's form bodies: ``a[b]=c`` nests, ``a[]=x`` and ``a[0]=x`` build lists (stripe-python sends
indexed lists, curl users send ``[]``), repeated plain keys are refused the way Stripe does."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import InvalidRequest

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def _parts(key: str) -> list[str]:
    match = _KEY.match(key)
    if not match:
        raise InvalidRequest(f"Invalid parameter name: {key}", param=key)
    return [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))


def _listify(value: Any) -> Any:
    """Dicts whose keys are all indices (or the ``[]`` marker) become lists, recursively."""
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return value


def decode(body: bytes | str) -> dict[str, Any]:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    root: dict[str, Any] = {}
    append_counters: dict[tuple[str, ...], int] = {}
    for key, value in parse_qsl(text, keep_blank_values=True, strict_parsing=False):
        parts = _parts(key)
        node = root
        path: tuple[str, ...] = ()
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":  # a[]=x: next free index
                counter = append_counters.get(path, 0)
                append_counters[path] = counter + 1
                part = str(counter)
            path = (*path, part)
            if last:
                if part in node:
                    raise InvalidRequest(f"Received repeated parameter: {key}", param=key)
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise InvalidRequest(f"Invalid parameter: {key}", param=key)
                node = child
    result = _listify(root)
    assert isinstance(result, dict)
    return result
