"""Request bodies of the merchant API, validated once at the edge. Errors name the offending field.

Each class runs the core schema pydantic builds for the model of the same name in ``input_models.py`` (the source
of truth, and the OpenAPI document's schemas), generated into ``input_schemas.py``: the same values, coercions
and errors, without pydantic's model machinery on the request path (chalicelib/validation/light.py).
"""

from __future__ import annotations

from typing import Any, Literal

from chalicelib.validation.light import LightModel

_MODELS = "chalicelib.service.input_models"
_SCHEMAS = "chalicelib.service.input_schemas"


class PayerInput(LightModel):
    _source, _schemas = f"{_MODELS}:PayerInput", _SCHEMAS

    user_id: str | None
    openid: str | None
    ip: str | None
    city: str | None
    device_id: str | None


class CardInput(LightModel):
    """A payer's card for methods that take it server-side (``unionpay.card``). Errors never echo the input."""

    _source, _schemas = f"{_MODELS}:CardInput", _SCHEMAS

    number: str
    exp_month: int
    exp_year: int
    cvv: str | None
    holder_name: str | None
    phone: str | None
    id_type: str | None
    id_number: str | None


class InstalmentsInput(LightModel):
    """Pay by instalments (Alipay Huabei, UnionPay card): how many, and who pays the fee (docs/instalments.md)."""

    _source, _schemas = f"{_MODELS}:InstalmentsInput", _SCHEMAS

    count: Literal[3, 6, 12]
    fee_payer: Literal["buyer", "seller"]


class CreatePaymentInput(LightModel):
    _source, _schemas = f"{_MODELS}:CreatePaymentInput", _SCHEMAS

    merchant_order_no: str
    amount: int
    currency: str
    description: str
    method: str
    payer: PayerInput
    notify_url: str | None
    return_url: str | None
    expires_in_seconds: int
    metadata: dict[str, str]
    card: CardInput | None
    payment_method: str | None
    instalments: InstalmentsInput | None
    settlement_currency: str | None


class CreateRefundInput(LightModel):
    _source, _schemas = f"{_MODELS}:CreateRefundInput", _SCHEMAS

    amount: int
    merchant_refund_no: str
    reason: str | None


class ConfirmPaymentInput(LightModel):
    """What the payer typed for the confirmation step, relayed by the merchant; never stored."""

    _source, _schemas = f"{_MODELS}:ConfirmPaymentInput", _SCHEMAS

    sms_code: str | None
    cvv: str | None


class StartStepUpInput(LightModel):
    """Which step-up the payer chose (one of the payment's ``step_up.methods``); ``phone`` for SMS."""

    _source, _schemas = f"{_MODELS}:StartStepUpInput", _SCHEMAS

    method: Literal["sms", "face", "webauthn"]
    phone: str | None


class VerifyStepUpInput(LightModel):
    """The payer's answer: the SMS code, the WebAuthn assertion, or nothing (face: the hub queries the provider)."""

    _source, _schemas = f"{_MODELS}:VerifyStepUpInput", _SCHEMAS

    code: str | None
    credential: dict[str, Any] | None
    cvv: str | None


class RegisterAuthenticatorInput(LightModel):
    """A platform authenticator's attestation (PublicKeyCredential JSON) answering the registration options."""

    _source, _schemas = f"{_MODELS}:RegisterAuthenticatorInput", _SCHEMAS

    credential: dict[str, Any]
