"""What every sandbox's control API (``/_sandbox/...``) shares: its error and how it reads a JSON body.

Plain JSON, no signatures: the control API stands for things that happen on the channel's side (a payer
paying, an outage), not for anything a merchant could call. Errors are ``{"code", "message"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.common.httpserver import Request


class ControlError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(400, "PARAM_ERROR", "body must be JSON") from exc
    if not isinstance(body, dict):
        raise ControlError(400, "PARAM_ERROR", "body must be a JSON object")
    return body


def required_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(400, "PARAM_ERROR", f"{name} is required (non-empty string)")
    return value
