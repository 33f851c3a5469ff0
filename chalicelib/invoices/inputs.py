"""The body of ``POST /v1/invoices`` and of a reversal request, and the checks between fields.

The classes run the core schemas generated (``input_schemas.py``) from the models of the same names in
``input_models.py``, the source of truth: see chalicelib/validation/light.py.
"""

from __future__ import annotations

from typing import Literal

from chalicelib.domain.errors import InvalidRequest
from chalicelib.invoices import credit_code
from chalicelib.validation.light import LightModel

_MODELS = "chalicelib.invoices.input_models"
_SCHEMAS = "chalicelib.invoices.input_schemas"


class BuyerInput(LightModel):
    _source, _schemas = f"{_MODELS}:BuyerInput", _SCHEMAS

    type: Literal["person", "company"]
    name: str
    tax_no: str | None  # a company's unified social credit code
    address: str | None
    phone: str | None
    bank_account: str | None  # bank name and account number
    email: str | None


class LineInput(LightModel):
    _source, _schemas = f"{_MODELS}:LineInput", _SCHEMAS

    description: str
    tax_code: str  # 税收分类编码: 19 digits
    tax_rate: Literal["0.13", "0.09", "0.06", "0.05", "0.03", "0.01", "0"]
    amount: int  # fen, tax included
    unit: str | None


class CreateInvoiceInput(LightModel):
    _source, _schemas = f"{_MODELS}:CreateInvoiceInput", _SCHEMAS

    merchant_invoice_no: str
    kind: Literal["ordinary", "special"]  # 数电普票 / 数电专票
    payment_ids: list[str]
    buyer: BuyerInput
    lines: list[LineInput]
    remark: str | None

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


class ReverseInvoiceInput(LightModel):
    _source, _schemas = f"{_MODELS}:ReverseInvoiceInput", _SCHEMAS

    amount: int | None  # fen; default: what refunds made due
    reason: Literal["refund", "sales_return", "billing_error", "service_stopped", "discount"]
