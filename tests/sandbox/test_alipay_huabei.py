"""The Alipay sandbox takes Huabei instalments the way Alipay does: ``extend_params`` inside ``biz_content`` with
``hb_fq_num`` 3, 6 or 12 and ``hb_fq_seller_percent`` 0 or 100, recorded on the order and told by the trade query;
any other term or share refused; the same order number presented again with other instalments refused."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.sandbox.test_alipay_sandbox import clean_faults, merchant, order_no, pay, sandbox  # noqa: F401


def precreate(merchant: Any, number: str, extend: Any) -> dict[str, Any]:  # noqa: F811
    biz = {"out_trade_no": number, "total_amount": "600.00", "subject": "沙发", "extend_params": extend}
    return dict(merchant.call("alipay.trade.precreate", biz))


@pytest.mark.parametrize(("count", "percent"), [("3", "0"), ("6", "100"), ("12", None)])
def test_huabei_terms_are_recorded_and_queried(sandbox, merchant, count, percent):  # noqa: F811
    number = order_no()
    extend = {"hb_fq_num": count, **({"hb_fq_seller_percent": percent} if percent is not None else {})}
    assert precreate(merchant, number, extend)["code"] == "10000"
    order = requests.get(f"{sandbox.base_url}/_sandbox/orders/{number}", timeout=10).json()["order"]
    assert (order["hb_fq_num"], order["hb_fq_seller_percent"]) == (count, percent or "0")
    assert pay(sandbox, number).status_code == 200
    queried = merchant.call("alipay.trade.query", {"out_trade_no": number})
    assert (queried["hb_fq_num"], queried["hb_fq_seller_percent"]) == (count, percent or "0")
    refunded = merchant.call("alipay.trade.refund", {"out_trade_no": number, "refund_amount": "100.00",
                                                      "out_request_no": number + "r"})
    assert (refunded["code"], refunded["fund_change"]) == ("10000", "Y")  # refunded like any trade, in part


@pytest.mark.parametrize("extend", [{"hb_fq_num": "5"}, {"hb_fq_num": "24"}, {"hb_fq_num": "6", "hb_fq_seller_percent": "50"},
                                    {"hb_fq_seller_percent": "100"}, {"hb_fq_num": True}])
def test_other_terms_or_shares_are_refused_as_alipay_refuses_them(sandbox, merchant, extend):  # noqa: F811
    answer = precreate(merchant, order_no(), extend)
    assert (answer["code"], answer["sub_code"]) == ("40004", "ACQ.INVALID_PARAMETER"), answer


def test_an_order_presented_again_with_other_instalments_is_refused(sandbox, merchant):  # noqa: F811
    number = order_no()
    assert precreate(merchant, number, {"hb_fq_num": "3", "hb_fq_seller_percent": "0"})["code"] == "10000"
    again = precreate(merchant, number, {"hb_fq_num": "6", "hb_fq_seller_percent": "0"})
    assert again["sub_code"] == "ACQ.CONTEXT_INCONSISTENT"
