"""Bodies of the operator API's write routes as pydantic models (unknown fields refused, errors naming the field):
the source of truth for their validation and schemas; the API validates with the light classes of
``operator_inputs.py``, which run the core schemas generated from these (``operator_input_schemas.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.service.api_keys import MAX_OVERLAP_S


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)


class CreateApiKeyInput(_Strict):
    name: str | None = Field(default=None, max_length=100)


class RotateInput(_Strict):
    """A rotation: the old key (or webhook secret) keeps working for ``overlap_seconds`` more."""

    overlap_seconds: int = Field(ge=0, le=MAX_OVERLAP_S)
    name: str | None = Field(default=None, max_length=100)


class WebhookSecretRotateInput(_Strict):
    overlap_seconds: int = Field(ge=0, le=MAX_OVERLAP_S)
