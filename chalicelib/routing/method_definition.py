"""A payment method defined by configuration, as stored (``chalicelib/routing/methods.py`` says what it means).

A module of its own so that resolving a built-in method, which every attempt's close, confirm and refund does,
loads no pydantic: only reading the configured methods does.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.routing.methods import METHOD_PATTERN


class MethodDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = Field(pattern=METHOD_PATTERN)
    protocol_method: str = Field(pattern=METHOD_PATTERN)
    enabled: bool = True
    settings: dict[str, str] = Field(default_factory=dict)
    title: dict[str, str] = Field(default_factory=dict)  # by locale, for the checkout page
