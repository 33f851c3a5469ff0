"""The merchant's request for a checkout session, validated once at the edge; errors name the field.

The classes run the core schemas generated (``input_schemas.py``) from the models of the same names in
``input_models.py``, the source of truth: see chalicelib/validation/light.py.
"""

from __future__ import annotations

from typing import Literal

from chalicelib.service.inputs import PayerInput
from chalicelib.validation.light import LightModel

_MODELS = "chalicelib.checkout.input_models"
_SCHEMAS = "chalicelib.checkout.input_schemas"


class SupportContactInput(LightModel):
    """How the payer reaches the merchant, shown on the page next to the session's support reference."""

    _source, _schemas = f"{_MODELS}:SupportContactInput", _SCHEMAS

    email: str | None
    phone: str | None
    url: str | None


class CreateCheckoutSessionInput(LightModel):
    _source, _schemas = f"{_MODELS}:CreateCheckoutSessionInput", _SCHEMAS

    merchant_order_no: str
    amount: int
    currency: str
    description: str
    allowed_methods: list[str]
    payer: PayerInput
    return_url: str
    cancel_url: str | None
    notify_url: str | None
    expires_in_seconds: int
    locale: Literal["zh-CN", "en"] | None
    metadata: dict[str, str]
    support_contact: SupportContactInput | None
    # The payer's phone on the merchant's file: where an SMS step-up code is sent if risk control asks for one.
    step_up_phone: str | None
