"""Checks the account model's schema calls by name (a module with no pydantic model: the generated schema imports
it)."""

from __future__ import annotations


def not_empty(values: tuple[str, ...]) -> tuple[str, ...]:
    if not values:
        raise ValueError("at least one is required")
    return values
