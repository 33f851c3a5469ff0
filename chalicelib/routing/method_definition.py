"""A payment method defined by configuration, as stored (``chalicelib/routing/methods.py`` says what it means).

A module of its own so that resolving a built-in method, which every attempt's close, confirm and refund does,
loads none of it: only reading the configured methods does. The class runs the core schema generated from the
pydantic model of ``method_definition_model.py`` (the source of truth): see chalicelib/validation/light.py.
"""

from __future__ import annotations

from chalicelib.validation.light import LightModel


class MethodDefinition(LightModel):
    _source = "chalicelib.routing.method_definition_model:MethodDefinition"
    _schemas = "chalicelib.routing.method_definition_schema"
    _frozen = True

    method: str
    protocol_method: str
    enabled: bool
    settings: dict[str, str]
    title: dict[str, str]  # by locale, for the checkout page
