"""The UnionPay sandbox takes a card instalment consume as ACP carries it: ``txnSubType`` 03 with a signed
``instalTransInfo`` ``{numberOfInstallments=NN}``, recorded and told back by the query and the notify; a malformed
one (or instalment information on a plain consume) refused with respCode 10."""

from __future__ import annotations

import pytest

from tests.sandbox.test_unionpay_sandbox import (  # noqa: F401
    _clean,
    consume,
    control,
    merchant,
    new_order_id,
    receiver,
    sandbox,
    wait_for,
)


def test_an_instalment_consume_is_recorded_queried_and_notified(sandbox, merchant, receiver):  # noqa: F811
    order_id = new_order_id()
    fields = consume(order_id, 60_000, receiver.url, channel_type="07", txnSubType="03",
                     instalTransInfo="{numberOfInstallments=06}")
    page = merchant.post("/gateway/api/frontTransReq.do", merchant.signed(fields))
    assert page.status_code == 200, page.text
    assert control(sandbox, "GET", f"/orders/{order_id}").json()["order"]["instalments"] == 6
    assert control(sandbox, "POST", "/pay", json={"out_trade_no": order_id}).status_code == 200
    answer = merchant.call("/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000",
                                                          "orderId": order_id, "txnTime": fields["txnTime"]})
    assert (answer["txnSubType"], answer["instalTransInfo"]) == ("03", "{numberOfInstallments=06}")
    notified = wait_for(lambda: receiver.for_order(order_id))
    assert notified[0]["txnSubType"] == "03"


@pytest.mark.parametrize("more", [
    {"txnSubType": "03"},
    {"txnSubType": "03", "instalTransInfo": "{numberOfInstallments=6}"},
    {"txnSubType": "03", "instalTransInfo": "{numberOfInstallments=01}"},
    {"txnSubType": "01", "instalTransInfo": "{numberOfInstallments=06}"},
    {"txnSubType": "05"},
])
def test_a_malformed_instalment_consume_is_refused_with_10(sandbox, merchant, receiver, more):  # noqa: F811
    order_id = new_order_id()
    page = merchant.post("/gateway/api/frontTransReq.do",
                         merchant.signed(consume(order_id, 60_000, receiver.url, channel_type="07", **more)))
    assert page.status_code == 400 and page.headers["X-Sandbox-RespCode"] == "10", page.text
    assert control(sandbox, "GET", f"/orders/{order_id}").status_code == 404
