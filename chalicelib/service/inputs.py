"""Request bodies of the merchant API, validated once at the edge. Errors name the offending field."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from chalicelib.domain.cards import expired, luhn_valid
from chalicelib.domain.clock import utcnow
from chalicelib.domain.money import SUPPORTED_CURRENCIES

_Str64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PayerInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, max_length=64)
    openid: str | None = Field(default=None, max_length=128)
    ip: str | None = Field(default=None, max_length=45)
    city: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, max_length=64)


class CardInput(BaseModel):
    """A payer's card for methods that take it server-side (``unionpay.card``). Errors never echo the input."""

    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    number: Annotated[str, StringConstraints(pattern=r"^[0-9]{12,19}$")] = Field(repr=False)
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=1000, le=9999)
    cvv: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")] | None = Field(default=None, repr=False)
    holder_name: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(default=None, repr=False)
    phone: Annotated[str, StringConstraints(pattern=r"^[0-9]{5,20}$")] | None = Field(default=None, repr=False)
    id_type: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,4}$")] | None = None
    id_number: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,32}$")] | None = Field(default=None, repr=False)

    @field_validator("number")
    @classmethod
    def _luhn(cls, value: str) -> str:
        if not luhn_valid(value):
            raise ValueError("card number fails its check digit")
        return value

    @field_validator("exp_year")
    @classmethod
    def _not_expired(cls, value: int, info: ValidationInfo) -> int:
        month = info.data.get("exp_month", 12)  # absent when the month itself was invalid: judge the year alone
        if expired(month, value, utcnow().date()):
            raise ValueError("card has expired")
        return value


class CreatePaymentInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    merchant_order_no: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-|*]{1,32}$")]
    amount: int = Field(gt=0, le=10**12)
    currency: str
    description: Annotated[str, StringConstraints(min_length=1, max_length=127)]
    method: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+\.[a-z0-9_]+$")]
    payer: PayerInput = Field(default_factory=PayerInput)
    notify_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=512)] | None = None
    return_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=512)] | None = None
    expires_in_seconds: int = Field(default=7200, ge=60, le=7 * 24 * 3600)
    metadata: dict[_Str64, Annotated[str, StringConstraints(max_length=500)]] = Field(default_factory=dict, max_length=20)
    card: CardInput | None = None
    payment_method: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,255}$")] | None = None

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in SUPPORTED_CURRENCIES:
            raise ValueError(f"unsupported currency {value!r}")
        return value


class CreateRefundInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int = Field(gt=0, le=10**12)
    merchant_refund_no: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-|*@]{1,64}$")]
    reason: Annotated[str, StringConstraints(max_length=80)] | None = None


class ConfirmPaymentInput(BaseModel):
    """What the payer typed for the confirmation step, relayed by the merchant; never stored."""

    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    sms_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{4,8}$")] | None = Field(default=None, repr=False)
    cvv: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")] | None = Field(default=None, repr=False)
