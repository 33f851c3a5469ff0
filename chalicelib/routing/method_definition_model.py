"""A payment method defined by configuration, as stored (``chalicelib/routing/methods.py`` says what it means).

This pydantic model is the source of truth; the hub reads definitions with the light class of
``method_definition.py``, which runs the core schema generated from it (``method_definition_schema.py``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.routing.methods import METHOD_PATTERN


class MethodDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    method: str = Field(pattern=METHOD_PATTERN)
    protocol_method: str = Field(pattern=METHOD_PATTERN)
    enabled: bool = True
    settings: dict[str, str] = Field(default_factory=dict)
    title: dict[str, str] = Field(default_factory=dict)  # by locale, for the checkout page
