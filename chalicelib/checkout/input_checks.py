"""The checkout request's checks that a constraint cannot state, as module-level functions: the model
(``input_models.py``) attaches them and the schema generated from it (``input_schemas.py``) calls them by name."""

from __future__ import annotations

from chalicelib.checkout.methods import check_allowed


def page_methods(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("each method may be listed once")
    check_allowed(value)
    return value
