"""Request bodies of the merchant API as pydantic models: the source of truth for their validation and schemas.

The API validates bodies with the light classes of ``inputs.py``, which run the core schemas generated from
these models (``input_schemas.py``, by ``python -m chalicelib.validation.codegen``) without loading pydantic's
model machinery. These models are also the OpenAPI document's request schemas (``model_json_schema``): every rule is a
constraint the schema can state (length, pattern, enum, range, no extra properties), so the document accepts
exactly what validation accepts. The one exception, lone UTF-16 surrogates, cannot be stated in JSON Schema
and is refused by the body reader (``json_body``) before a model sees the body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator, model_validator

from chalicelib.channels import registry
from chalicelib.domain.cards import CARD_METHODS
from chalicelib.domain.money import SUPPORTED_CURRENCIES
from chalicelib.service import input_checks, input_patterns


def _text(max_length: int, min_length: int = 0) -> StringConstraints:
    """Free text: any characters but control characters, within the lengths."""
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=input_patterns.TEXT)


# The validators are input_checks' module-level functions, attached as they are (no method around them): the
# generated schemas call them by name.
Int = Annotated[int, BeforeValidator(input_checks.integral)]
_URL = Annotated[str, StringConstraints(pattern=input_patterns.URL, max_length=512)]
_METADATA_KEY = _text(64, min_length=1)
_METADATA_VALUE = _text(500)

# What a method needs from the payer besides the common fields, and the methods that need a card: checked by
# the model and stated in its schema (``if method is … then required``), so the document refuses what
# validation refuses. Validation reads the registry and the card methods when it runs (tests add a channel).
_PAYER_NEEDS = input_checks.PAYER_NEEDS


def _enum(values: list[Any]) -> dict[str, Any]:
    """A field checked by a validator against a list, stated in the schema as that list."""
    return {"enum": values}


def _metadata_schema(schema: dict[str, Any]) -> None:
    """pydantic states a constrained key type as ``patternProperties``, which leaves keys that do not match
    the pattern unconstrained; ``propertyNames`` is what says every key must match."""
    schema.pop("patternProperties", None)
    schema["propertyNames"] = {"type": "string", "minLength": _METADATA_KEY.min_length,
                               "maxLength": _METADATA_KEY.max_length, "pattern": _METADATA_KEY.pattern}
    schema["additionalProperties"] = {"type": "string", "maxLength": _METADATA_VALUE.max_length,
                                      "pattern": _METADATA_VALUE.pattern}


def _method_needs_schema(schema: dict[str, Any]) -> None:
    def when(methods: list[str]) -> dict[str, Any]:
        return {"required": ["method"], "properties": {"method": {"enum": methods}}}

    rules: list[dict[str, Any]] = [
        {"if": when([method]), "then": {"required": ["payer"], "properties": {"payer": {
            "required": [name], "properties": {name: {"type": "string", "minLength": 1}}}}}}
        for method, name in _PAYER_NEEDS.items()]
    rules.append({"if": when(sorted(CARD_METHODS)), "then": {"required": ["card"], "properties": {
        "card": {"type": "object"}}}})
    # a card only with a method that takes it: the payer enters it at the channel otherwise
    rules.append({"if": {"required": ["method"], "properties": {"method": {"not": {"enum": sorted(CARD_METHODS)}}}},
                  "then": {"properties": {"card": {"type": "null"}}}})
    schema["allOf"] = rules


class PayerInput(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    user_id: Annotated[str, _text(64)] | None = None
    openid: Annotated[str, _text(128)] | None = None
    ip: Annotated[str, _text(45)] | None = None
    city: Annotated[str, _text(64)] | None = None
    device_id: Annotated[str, _text(64)] | None = None


class CardInput(BaseModel):
    """A payer's card for methods that take it server-side (``unionpay.card``). Errors never echo the input."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True, hide_input_in_errors=True)

    number: Annotated[str, StringConstraints(pattern=r"^[0-9]{12,19}$")] = Field(
        repr=False, description="its last digit must be the Luhn check digit of the others")
    exp_month: Int = Field(ge=1, le=12)
    exp_year: Int = Field(ge=1000, le=9999, description="a card that has expired is refused")
    cvv: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")] | None = Field(default=None, repr=False)
    holder_name: Annotated[str, _text(64, min_length=1)] | None = Field(default=None, repr=False)
    phone: Annotated[str, StringConstraints(pattern=r"^[0-9]{5,20}$")] | None = Field(default=None, repr=False)
    id_type: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,4}$")] | None = None
    id_number: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,32}$")] | None = Field(default=None, repr=False)

    _luhn = field_validator("number")(input_checks.luhn)
    _not_expired = field_validator("exp_year")(input_checks.not_expired)


class InstalmentsInput(BaseModel):
    """Pay by instalments (Alipay Huabei, UnionPay card): how many, and who pays the fee (docs/instalments.md)."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)

    count: Literal[3, 6, 12]
    fee_payer: Literal["buyer", "seller"] = "buyer"


class CreatePaymentInput(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True, hide_input_in_errors=True,
                              json_schema_extra=_method_needs_schema)

    merchant_order_no: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-|*]{1,32}$")]
    amount: Int = Field(gt=0, le=10**12)
    currency: str = Field(json_schema_extra=_enum(sorted(SUPPORTED_CURRENCIES)))
    description: Annotated[str, _text(127, min_length=1)]
    method: str = Field(json_schema_extra=_enum(list(registry.METHODS)))
    payer: PayerInput = Field(default_factory=PayerInput)
    notify_url: _URL | None = None
    return_url: _URL | None = None
    expires_in_seconds: Int = Field(default=7200, ge=60, le=7 * 24 * 3600)
    metadata: dict[Annotated[str, _METADATA_KEY], Annotated[str, _METADATA_VALUE]] = Field(
        default_factory=dict, max_length=20, json_schema_extra=_metadata_schema)
    card: CardInput | None = None
    payment_method: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,255}$")] | None = None
    instalments: InstalmentsInput | None = None
    # FX (docs/fx.md): the currency the merchant is paid in, converted at a rate locked at creation.
    settlement_currency: str | None = Field(default=None, json_schema_extra=_enum([*sorted(SUPPORTED_CURRENCIES), None]))

    _known_currency = field_validator("currency")(input_checks.known_currency)
    _known_settlement_currency = field_validator("settlement_currency")(input_checks.known_settlement_currency)
    # The schema's enum lists the built-in methods; a plugin's methods and configured methods are taken too.
    _known_method = field_validator("method")(input_checks.known_method)
    _what_the_method_needs = model_validator(mode="after")(input_checks.what_the_method_needs)


class CreateRefundInput(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)

    amount: Int = Field(gt=0, le=10**12)
    merchant_refund_no: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-|*@]{1,64}$")]
    reason: Annotated[str, _text(80)] | None = None


class ConfirmPaymentInput(BaseModel):
    """What the payer typed for the confirmation step, relayed by the merchant; never stored."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True, hide_input_in_errors=True)

    sms_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{4,8}$")] | None = Field(default=None, repr=False)
    cvv: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")] | None = Field(default=None, repr=False)


class StartStepUpInput(BaseModel):
    """Which step-up the payer chose (one of the payment's ``step_up.methods``); ``phone`` for SMS."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)

    method: Literal["sms", "face", "webauthn"]
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{6,20}$")] | None = Field(default=None, repr=False)


class VerifyStepUpInput(BaseModel):
    """The payer's answer: the SMS code, the WebAuthn assertion (PublicKeyCredential JSON), or nothing (face:
    the hub queries the provider)."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True, hide_input_in_errors=True)

    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")] | None = Field(default=None, repr=False)
    credential: dict[str, Any] | None = None
    # A card payment held at create goes to the channel now; the CVV is never stored, so the payer types it again.
    cvv: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")] | None = Field(default=None, repr=False)


class RegisterAuthenticatorInput(BaseModel):
    """A platform authenticator's attestation (PublicKeyCredential JSON) answering the registration options."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)

    credential: dict[str, Any]
