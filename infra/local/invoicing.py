"""Set a merchant up for invoicing against the local Nuonuo sandbox: register an app for the merchant's tax
number there, then store the invoicing document and credentials the way ``payhub invoicing put`` does."""

from __future__ import annotations

import secrets

from chalicelib.invoices import config, credit_code
from sandbox.nuonuo.server import control

DEMO_SELLER_TAX_NO = "91350100M000100Y43"  # the example code printed in GB 32100-2015


def new_credit_code() -> str:
    """A well-formed unified social credit code (enterprise, 福州 division) for a test seller of its own."""
    body = "91350100" + "".join(secrets.choice(credit_code.ALPHABET) for _ in range(9))
    return body + credit_code.check_character(body)


def provision(merchant_id: str, sandbox_url: str, *, red_letter: str = "auto",
              seller_tax_no: str = DEMO_SELLER_TAX_NO) -> config.InvoicingSettings:
    app = control(sandbox_url, "/_sandbox/apps", {"tax_no": seller_tax_no})
    settings = config.InvoicingSettings(
        merchant_id=merchant_id, provider="nuonuo", api_base_url=sandbox_url, app_key=app["app_key"],
        seller_tax_no=seller_tax_no, seller_name="福州茶舍有限公司", seller_address="福州市鼓楼区五四路 88 号",
        seller_phone="0591-88888888", seller_bank_account="中国工商银行福州分行 1402000000000000000",
        drawer="林晓", red_letter=red_letter)
    config.put(settings, {"app_secret": app["app_secret"], "access_token": app["access_token"]})
    return settings
