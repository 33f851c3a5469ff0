"""The body of ``POST /v1/invoices`` and of a reversal request, and the checks between fields."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.errors import InvalidRequest
from chalicelib.invoices import credit_code

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

    def check(self) -> None:
        """What one field alone cannot say, each naming its field."""
        if len(set(self.payment_ids)) != len(self.payment_ids):
            raise InvalidRequest("payment_ids: each payment once", param="payment_ids")
        buyer = self.buyer
        if buyer.type == "company":
            if not buyer.tax_no:
                raise InvalidRequest("buyer.tax_no: a company buyer needs its unified social credit code",
                                     param="buyer.tax_no")
            if (problem := credit_code.problem(buyer.tax_no)) is not None:
                raise InvalidRequest(f"buyer.tax_no: not a unified social credit code: {problem}", param="buyer.tax_no")
        elif buyer.tax_no:
            raise InvalidRequest("buyer.tax_no: only for a company buyer", param="buyer.tax_no")
        if self.kind == "special":
            if buyer.type != "company":
                raise InvalidRequest("buyer.type: a special VAT invoice is issued to a company", param="buyer.type")
            for name in ("address", "phone", "bank_account"):
                if not getattr(buyer, name):
                    raise InvalidRequest(f"buyer.{name}: required for a special VAT invoice", param=f"buyer.{name}")


class ReverseInvoiceInput(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    amount: int | None = Field(default=None, gt=0, le=100_000_000_000)  # fen; default: what refunds made due
    reason: Literal["refund", "sales_return", "billing_error", "service_stopped", "discount"] = "refund"
