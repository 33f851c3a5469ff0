"""The fields of each ACP request the hub sends, before signing (signing adds version/signMethod/certId).

Which transaction is which: ``txnType`` 01 consume, 04 refund, 00 query, 77 SMS code, 76 file download;
``bizType`` 000201 gateway/app, 000301 quick pay (认证支付), 000000 query and files; ``channelType`` 07
internet, 08 mobile. ``accessType`` 0: a merchant connected directly.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.channels.unionpay.states import CNY_NUMERIC, txn_time
from chalicelib.domain.value_class import value_class


@value_class
class Product:
    biz_type: str
    channel_type: str


PRODUCTS: dict[str, Product] = {
    "unionpay.gateway": Product("000201", "07"),
    "unionpay.quickpass": Product("000201", "08"),
    "unionpay.card": Product("000301", "07"),
}
QUERY_BIZ_TYPE = "000000"
INSTALMENT_SUB_TYPE = "03"


def instal_trans_info(count: int) -> str:
    if not 2 <= count <= 99:
        raise ValueError(f"numberOfInstallments is two digits, not {count}")
    return f"{{numberOfInstallments={count:02d}}}"


def _base(merchant_id: str, order_id: str, txn: str) -> dict[str, str]:
    return {"encoding": "UTF-8", "accessType": "0", "merId": merchant_id, "orderId": order_id, "txnTime": txn}


def consume(method: str, merchant_id: str, order_id: str, txn: str, fen: str, *, back_url: str,
            pay_timeout: datetime | None, front_url: str | None = None, instalments: int | None = None,
            ) -> dict[str, str]:
    """``instalments``: a card instalment consume (分期付款), ``txnSubType`` 03 with ``instalTransInfo``
    ``{numberOfInstallments=NN}`` (two digits), as ACP carries it (docs/instalments.md#unionpay)."""
    product = PRODUCTS[method]
    fields = {
        **_base(merchant_id, order_id, txn), "txnType": "01", "txnSubType": "01", "bizType": product.biz_type,
        "channelType": product.channel_type, "txnAmt": fen, "currencyCode": CNY_NUMERIC, "backUrl": back_url,
    }
    if instalments is not None:
        fields.update({"txnSubType": INSTALMENT_SUB_TYPE, "instalTransInfo": instal_trans_info(instalments)})
    if pay_timeout is not None:
        fields["payTimeout"] = txn_time(pay_timeout)
    if front_url:
        fields["frontUrl"] = front_url
    return fields


def consume_sms(merchant_id: str, order_id: str, txn: str, fen: str, pay_timeout: datetime) -> dict[str, str]:
    """消费短信: UnionPay texts a code to the card's phone; the consume that follows repeats orderId and txnTime.
    ``payTimeout`` (the payment's expiry) bounds the whole card payment, authentication included."""
    return {
        **_base(merchant_id, order_id, txn), "txnType": "77", "txnSubType": "02",
        "bizType": PRODUCTS["unionpay.card"].biz_type, "channelType": "07", "txnAmt": fen, "currencyCode": CNY_NUMERIC,
        "payTimeout": txn_time(pay_timeout),
    }


def query(merchant_id: str, order_id: str, txn: str) -> dict[str, str]:
    return {**_base(merchant_id, order_id, txn), "txnType": "00", "txnSubType": "00", "bizType": QUERY_BIZ_TYPE}


def refund(merchant_id: str, order_id: str, txn: str, fen: str, *, orig_query_id: str, biz_type: str,
           back_url: str) -> dict[str, str]:
    return {
        **_base(merchant_id, order_id, txn), "txnType": "04", "txnSubType": "00", "bizType": biz_type,
        "channelType": "07", "txnAmt": fen, "currencyCode": CNY_NUMERIC, "origQryId": orig_query_id,
        "backUrl": back_url,
    }


def file_download(merchant_id: str, settle_date: str, now: datetime) -> dict[str, str]:
    return {
        "encoding": "UTF-8", "accessType": "0", "merId": merchant_id, "txnType": "76", "txnSubType": "01",
        "bizType": QUERY_BIZ_TYPE, "settleDate": settle_date, "fileType": "00", "txnTime": txn_time(now),
    }
