"""Trade bill: fetch with the SHA-1 check, streaming parse by header name, yuan to fen."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechatpay_kit import NOW, FakeTransport, WeChatKit

from chalicelib.channels.base import HttpResponse
from chalicelib.channels.wechatpay import WeChatPayAdapter
from chalicelib.channels.wechatpay.bill import parse_trade_bill
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

Signed = Callable[..., HttpResponse]

ALL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
              "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
              "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
              "手续费,费率,订单金额,申请退款金额,费率备注")
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
PAYMENT_ROW = ("`2024-05-19 10:12:13,`wxd678efh567hg6787,`1900000109,`0,`,`4200002246202405190000000001,`att_01HZX3,"
               "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`CMC,`CNY,`88.88,`0.00,`0,`0,`0.00,`0.00,`,`,"
               "`T恤, 红色,`,`0.53000,`0.60%,`88.88,`0.00,`,`")
REFUND_ROW = ("`2024-05-19 11:00:00,`wxd678efh567hg6787,`1900000109,`0,`,`4200002246202405190000000001,`att_01HZX3,"
              "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`REFUND,`CMC,`CNY,`0.00,`0.00,`50000000382019052709732678859,"
              "`rf_01,`1.00,`0.00,`ORIGINAL,`SUCCESS,`T恤,`,`-0.01000,`0.60%,`0.00,`1.00,`,`")
SUMMARY_ROW = "`2,`88.88,`1.00,`0.00,`0.52000,`88.88,`1.00"


def _bill(newline: str = "\r\n", bom: bool = True) -> bytes:
    text = newline.join([ALL_HEADER, PAYMENT_ROW, REFUND_ROW, SUMMARY_HEADER, SUMMARY_ROW]) + newline
    return ("\ufeff" if bom else "").encode() + text.encode()


def _chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_parse_all_bill() -> None:
    payment, refund, summary = list(parse_trade_bill([_bill()]))
    assert payment["kind"] == "payment" and payment["attempt_id"] == "att_01HZX3"
    assert payment["channel_transaction_id"] == "4200002246202405190000000001"
    assert payment["amount"] == Money(8888, "CNY") and payment["order_amount"] == Money(8888, "CNY")
    assert payment["fee_yuan"] == Decimal("0.53000")
    assert payment["refund_id"] is None and payment["channel_refund_id"] is None  # "0" in a payment row
    assert payment["raw"]["商品名称"] == "T恤, 红色"  # a comma inside a cell does not shift columns
    assert payment["occurred_at"].isoformat() == "2024-05-19T10:12:13+08:00"
    assert refund["kind"] == "refund" and refund["refund_id"] == "rf_01"
    assert refund["refund_amount"] == Money(100, "CNY") and refund["refund_status"] == "SUCCESS"
    assert summary["kind"] == "summary" and summary["count"] == 2
    assert summary["amount"] == Money(8888, "CNY") and summary["refund_amount"] == Money(100, "CNY")
    assert summary["fee_yuan"] == Decimal("0.52000")


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_parse_is_independent_of_chunk_boundaries(size: int) -> None:
    # Small sizes split multi-byte UTF-8 characters and CRLF pairs across chunks.
    assert list(parse_trade_bill(_chunked(_bill(), size))) == list(parse_trade_bill([_bill()]))


def test_parse_lf_without_bom_and_gzip() -> None:
    expected = list(parse_trade_bill([_bill()]))
    assert list(parse_trade_bill([_bill("\n", bom=False)])) == expected
    assert list(parse_trade_bill(_chunked(gzip.compress(_bill()), 50))) == expected


def test_legacy_layout_total_amount_column() -> None:
    header = ALL_HEADER.replace("应结订单金额", "总金额")
    rows = list(parse_trade_bill([(header + "\n" + PAYMENT_ROW + "\n").encode()]))
    assert rows[0]["amount"] == Money(8888, "CNY")


def test_row_with_wrong_cell_count_refused() -> None:
    with pytest.raises(ChannelError, match="line 2"):
        list(parse_trade_bill([(ALL_HEADER + "\n`2024-05-19 10:12:13,`x\n").encode()]))


def test_amount_with_too_many_decimals_refused() -> None:
    with pytest.raises(ChannelError, match="line 2"):
        row = PAYMENT_ROW.replace("`88.88,`0.00", "`88.885,`0.00")
        list(parse_trade_bill([(ALL_HEADER + "\n" + row + "\n").encode()]))


@given(st.integers(min_value=0, max_value=10**11))
def test_yuan_cells_convert_to_fen(minor: int) -> None:
    yuan = Money(minor, "CNY").to_decimal_string()
    row = SUMMARY_ROW.replace("`88.88", f"`{yuan}", 1)
    (summary,) = parse_trade_bill([(SUMMARY_HEADER + "\n" + row + "\n").encode()])
    assert summary["amount"] == Money(minor, "CNY")


# --- fetch -----------------------------------------------------------------------------------------


def _file(data: bytes) -> HttpResponse:
    return HttpResponse(status=200, headers={"content-type": "application/octet-stream"}, body=data)


def _answer(data: bytes, **overrides: Any) -> dict[str, Any]:
    answer = {"hash_type": "SHA1", "hash_value": hashlib.sha1(data).hexdigest(),
              "download_url": "https://elsewhere.example/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2"}
    answer.update(overrides)
    return answer


def test_fetch_checks_hash_and_stays_on_the_api_host(kit: WeChatKit, signed_response: Signed) -> None:
    data = _bill()
    transport = FakeTransport([signed_response(200, _answer(data)), _file(data)])
    chunks = WeChatPayAdapter(transport, clock=lambda: NOW).fetch_statement(kit.account(), "2024-05-19")
    assert b"".join(chunks) == data
    apply_request, download_request = transport.requests
    assert apply_request.url == "https://api.test.invalid/v3/bill/tradebill?bill_date=2024-05-19&bill_type=ALL"
    assert download_request.url == "https://api.test.invalid/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2"
    assert download_request.headers["Authorization"].startswith("WECHATPAY2-SHA256-RSA2048 ")


def test_fetch_refuses_a_file_whose_hash_differs(kit: WeChatKit, signed_response: Signed) -> None:
    data = _bill()
    transport = FakeTransport([signed_response(200, _answer(data)), _file(data + b"`tampered")])
    with pytest.raises(ChannelError, match="SHA-1"):
        WeChatPayAdapter(transport, clock=lambda: NOW).fetch_statement(kit.account(), "2024-05-19")


def test_fetch_refuses_a_bad_day(kit: WeChatKit) -> None:
    with pytest.raises(InvalidRequest):
        WeChatPayAdapter(FakeTransport(), clock=lambda: NOW).fetch_statement(kit.account(), "2024/05/19")


def test_fetch_then_parse(kit: WeChatKit, signed_response: Signed) -> None:
    data = _bill()
    transport = FakeTransport([signed_response(200, _answer(data)), _file(data)])
    adapter = WeChatPayAdapter(transport, clock=lambda: NOW)
    rows = list(adapter.parse_statement(kit.account(), adapter.fetch_statement(kit.account(), "2024-05-19")))
    assert [row["kind"] for row in rows] == ["payment", "refund", "summary"]
    assert json.dumps([row["raw"] for row in rows], ensure_ascii=False)  # raw cells are plain strings
