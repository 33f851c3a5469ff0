"""Bodies of the operator API's write routes: validated, unknown fields refused, errors naming the field.

The classes run the core schemas generated (``operator_input_schemas.py``) from the models of the same names in
``operator_input_models.py``, the source of truth: see chalicelib/validation/light.py.
"""

from __future__ import annotations

from chalicelib.validation.light import LightModel

_MODELS = "chalicelib.service.operator_input_models"
_SCHEMAS = "chalicelib.service.operator_input_schemas"


class CreateApiKeyInput(LightModel):
    _source, _schemas = f"{_MODELS}:CreateApiKeyInput", _SCHEMAS

    name: str | None


class RotateInput(LightModel):
    """A rotation: the old key (or webhook secret) keeps working for ``overlap_seconds`` more."""

    _source, _schemas = f"{_MODELS}:RotateInput", _SCHEMAS

    overlap_seconds: int
    name: str | None


class WebhookSecretRotateInput(LightModel):
    _source, _schemas = f"{_MODELS}:WebhookSecretRotateInput", _SCHEMAS

    overlap_seconds: int
