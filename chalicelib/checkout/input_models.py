"""The merchant's request for a checkout session as pydantic models: the source of truth for its validation and
schema. The API validates with the light classes of ``inputs.py`` (the core schemas generated from these, in
``input_schemas.py``); errors name the field."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from chalicelib.checkout.input_checks import page_methods
from chalicelib.checkout.methods import PAGE_METHODS
from chalicelib.domain.money import SUPPORTED_CURRENCIES
from chalicelib.service.input_checks import known_currency
from chalicelib.service.input_models import _METADATA_KEY, _METADATA_VALUE, _URL, Int, PayerInput, _enum, _text

LOCALES = ("zh-CN", "en")
_PAGE_METHOD_ENUM: dict[str, Any] = {"enum": list(PAGE_METHODS)}


class SupportContactInput(BaseModel):
    """How the payer reaches the merchant, shown on the page next to the session's support reference."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)

    email: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}$")] | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 -]{5,24}$")] | None = None
    url: _URL | None = None


class CreateCheckoutSessionInput(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True, hide_input_in_errors=True)

    merchant_order_no: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-|*]{1,32}$")]
    amount: Int = Field(gt=0, le=10**12)
    currency: str = Field(json_schema_extra=_enum(sorted(SUPPORTED_CURRENCIES)))
    description: Annotated[str, _text(127, min_length=1)]
    allowed_methods: list[Annotated[str, Field(json_schema_extra=_PAGE_METHOD_ENUM)]] = Field(
        min_length=1, max_length=len(PAGE_METHODS), json_schema_extra={"uniqueItems": True})
    payer: PayerInput = Field(default_factory=PayerInput)
    return_url: _URL
    cancel_url: _URL | None = None
    notify_url: _URL | None = None
    expires_in_seconds: Int = Field(default=1800, ge=60, le=7 * 24 * 3600)
    locale: Literal["zh-CN", "en"] | None = None
    metadata: dict[Annotated[str, _METADATA_KEY], Annotated[str, _METADATA_VALUE]] = Field(
        default_factory=dict, max_length=20)
    support_contact: SupportContactInput | None = None
    # The payer's phone on the merchant's file: where an SMS step-up code is sent if risk control asks for one.
    step_up_phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{6,20}$")] | None = None

    # module-level functions, attached as they are: the generated schema calls them by name
    _known_currency = field_validator("currency")(known_currency)
    _page_methods = field_validator("allowed_methods")(page_methods)
