"""The body of ``POST /v1/invoices`` and of a reversal request as pydantic models: the source of truth for their
validation and schemas. The API validates with the light classes of ``inputs.py`` (the core schemas generated from
these, in ``input_schemas.py``), which also hold the checks between fields."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

_TEXT = r"^[^\x00-\x1f\x7f]*$"


class BuyerInput(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    type: Literal["person", "company"]
    name: str = Field(min_length=1, max_length=100, pattern=_TEXT)
    tax_no: str | None = Field(default=None, max_length=20)  # a company's unified social credit code
    address: str | None = Field(default=None, max_length=100, pattern=_TEXT)
    phone: str | None = Field(default=None, max_length=30, pattern=r"^[0-9+\- ]*$")
    bank_account: str | None = Field(default=None, max_length=100, pattern=_TEXT)  # bank name and account number
    email: str | None = Field(default=None, max_length=100, pattern=r"^[^@\s]+@[^@\s]+$")


class LineInput(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    description: str = Field(min_length=1, max_length=90, pattern=_TEXT)
    tax_code: str = Field(pattern=r"^\d{19}$")  # 税收分类编码: 19 digits
    tax_rate: Literal["0.13", "0.09", "0.06", "0.05", "0.03", "0.01", "0"]
    amount: int = Field(gt=0, le=100_000_000_000)  # fen, tax included
    unit: str | None = Field(default=None, max_length=20, pattern=_TEXT)


class CreateInvoiceInput(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    merchant_invoice_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    kind: Literal["ordinary", "special"]  # 数电普票 / 数电专票
    payment_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")]] = Field(min_length=1, max_length=20)
    buyer: BuyerInput
    lines: list[LineInput] = Field(min_length=1, max_length=100)
    remark: str | None = Field(default=None, max_length=200, pattern=_TEXT)


class ReverseInvoiceInput(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    amount: int | None = Field(default=None, gt=0, le=100_000_000_000)  # fen; default: what refunds made due
    reason: Literal["refund", "sales_return", "billing_error", "service_stopped", "discount"] = "refund"
