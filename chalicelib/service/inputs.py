"""Request bodies of the merchant API, validated once at the edge. Errors name the offending field."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from chalicelib.domain.money import SUPPORTED_CURRENCIES

_Str64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PayerInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, max_length=64)
    openid: str | None = Field(default=None, max_length=128)
    ip: str | None = Field(default=None, max_length=45)
    city: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, max_length=64)


class CreatePaymentInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

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
