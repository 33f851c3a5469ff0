"""Query parameters read as strictly as the OpenAPI document states them.

``int()`` alone takes " 5", "+5", "5_0" and other digits than 0-9 (Arabic-Indic, full-width); the document says
an integer, so only ASCII digits are an integer here. The same for dates: ``date.fromisoformat`` also takes
"20240101" and week dates, the document says YYYY-MM-DD.
"""

from __future__ import annotations

import re
from datetime import date

from chalicelib.domain.errors import InvalidRequest

_DIGITS = re.compile(r"[0-9]{1,6}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def limit(text: str | None, *, default: int, maximum: int, name: str = "limit") -> int:
    if text is None:
        return default
    if not _DIGITS.fullmatch(text):
        raise InvalidRequest(f"{name} must be an integer", param=name)
    value = int(text)
    if not 1 <= value <= maximum:
        raise InvalidRequest(f"{name} must be between 1 and {maximum}", param=name)
    return value


def day(text: str, *, name: str = "date") -> date:
    if _DAY.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass  # the shape is right but there is no such day (2024-02-30): refused below, like any other
    raise InvalidRequest(f"{name} must be a date as YYYY-MM-DD", param=name)
