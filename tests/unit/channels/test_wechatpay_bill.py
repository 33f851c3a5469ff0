"""Trade bill: fetch with the SHA-1 check, streaming parse by header name, yuan to fen."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechatpay_kit import NOW, FakeTransport, WeChatKit

from chalicelib.channels.base import HttpResponse, StatementKind, StatementRow, StatementSummary
from chalicelib.channels.wechatpay import WeChatPayAdapter
from chalicelib.channels.wechatpay.bill import parse_trade_bill
from chalicelib.channels.wechatpay.orders import BEIJING
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
    assert isinstance(payment, StatementRow) and isinstance(refund, StatementRow)
    assert payment == StatementRow(
        kind=StatementKind.PAYMENT, object_id="att_01HZX3", channel_ref="4200002246202405190000000001",
        amount=Money(8888, "CNY"), status="succeeded", occurred_at=datetime(2024, 5, 19, 10, 12, 13, tzinfo=BEIJING),
        fee=Money(53, "CNY"), line=2)
    assert payment.occurred_at.isoformat() == "2024-05-19T10:12:13+08:00"
    assert refund == StatementRow(
        kind=StatementKind.REFUND, object_id="rf_01", channel_ref="50000000382019052709732678859",
        amount=Money(100, "CNY"), status="succeeded", occurred_at=datetime(2024, 5, 19, 11, tzinfo=BEIJING),
        fee=Money(-1, "CNY"), attempt_id="att_01HZX3", line=3)
    assert summary == StatementSummary(count=2, payments=Money(8888, "CNY"), refunds=Money(100, "CNY"),
                                       fees=Money(52, "CNY"))


def test_comma_inside_a_cell_does_not_shift_columns() -> None:
    row = PAYMENT_ROW.replace("`T恤, 红色", "`T恤, 红色, 大, 号")
    (payment,) = parse_trade_bill([(ALL_HEADER + "\n" + row + "\n").encode()])
    assert isinstance(payment, StatementRow) and payment.amount == Money(8888, "CNY")


@pytest.mark.parametrize(("cell", "status"), [("`PROCESSING", "processing"), ("`ABNORMAL", "abnormal"),
                                              ("`CLOSED", "closed")])
def test_refund_status_is_the_channels_word_unless_success(cell: str, status: str) -> None:
    row = REFUND_ROW.replace("`SUCCESS", cell)
    (refund,) = parse_trade_bill([(ALL_HEADER + "\n" + row + "\n").encode()])
    assert isinstance(refund, StatementRow) and (refund.kind, refund.status) == (StatementKind.REFUND, status)


def test_revoked_and_unknown_trade_states_are_payments_that_did_not_succeed() -> None:
    for state in ("REVOKED", "SOMETHING_NEW"):
        row = PAYMENT_ROW.replace("`SUCCESS", f"`{state}")
        (payment,) = parse_trade_bill([(ALL_HEADER + "\n" + row + "\n").encode()])
        assert isinstance(payment, StatementRow) and payment.status == state.lower() != "succeeded"


def test_currency_column_sets_the_currency() -> None:
    row = PAYMENT_ROW.replace("`CNY", "`USD")
    (payment,) = parse_trade_bill([(ALL_HEADER + "\n" + row + "\n").encode()])
    assert isinstance(payment, StatementRow) and payment.amount == Money(8888, "USD")


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_parse_is_independent_of_chunk_boundaries(size: int) -> None:
    # Small sizes split multi-byte UTF-8 characters and CRLF pairs across chunks.
    assert list(parse_trade_bill(_chunked(_bill(), size))) == list(parse_trade_bill([_bill()]))


def test_parse_lf_without_bom_and_gzip() -> None:
    expected = list(parse_trade_bill([_bill()]))
    assert list(parse_trade_bill([_bill("\n", bom=False)])) == expected
    assert list(parse_trade_bill(_chunked(gzip.compress(_bill()), 50))) == expected


def test_empty_stream_has_no_rows() -> None:
    assert list(parse_trade_bill([])) == []


def test_legacy_layout_total_amount_column() -> None:
    header = ALL_HEADER.replace("应结订单金额", "总金额")
    rows = list(parse_trade_bill([(header + "\n" + PAYMENT_ROW + "\n").encode()]))
    assert isinstance(rows[0], StatementRow) and rows[0].amount == Money(8888, "CNY")


def test_row_with_wrong_cell_count_refused() -> None:
    with pytest.raises(ChannelError, match="line 2"):
        list(parse_trade_bill([(ALL_HEADER + "\n`2024-05-19 10:12:13,`x\n").encode()]))


def test_amount_with_too_many_decimals_refused() -> None:
    with pytest.raises(ChannelError, match="line 2"):
        row = PAYMENT_ROW.replace("`88.88,`0.00", "`88.885,`0.00")
        list(parse_trade_bill([(ALL_HEADER + "\n" + row + "\n").encode()]))


@pytest.mark.parametrize(("mutation", "line"), [
    (lambda bill: bill.replace(b"2024-05-19 11:00:00", b"2024-05-19T11:00"), "line 3"),  # bad time
    (lambda bill: bill.replace(b"`rf_01", b"`0"), "line 3"),  # refund row without our refund number
    (lambda bill: bill.replace(b"`2,`88.88", b"`two,`88.88"), "line 5"),  # summary count not a number
    (lambda bill: bill.replace(b"`0.53000", b"`abc"), "line 2"),  # fee not a number
    (lambda bill: bill.replace("T恤".encode(), b"\xff\xfe"), "line 2"),  # not UTF-8
])
def test_malformed_files_name_the_line(mutation: Callable[[bytes], bytes], line: str) -> None:
    with pytest.raises(ChannelError, match=line):
        list(parse_trade_bill([mutation(_bill())]))


def test_truncated_gzip_is_malformed() -> None:
    packed = gzip.compress(_bill())
    with pytest.raises(ChannelError, match="trade bill line"):
        list(parse_trade_bill([packed[:-20] + b"\x00" * 20]))


@given(st.integers(min_value=0, max_value=10**11))
def test_yuan_cells_convert_to_fen(minor: int) -> None:
    yuan = Money(minor, "CNY").to_decimal_string()
    row = SUMMARY_ROW.replace("`88.88", f"`{yuan}", 1)
    (summary,) = parse_trade_bill([(SUMMARY_HEADER + "\n" + row + "\n").encode()])
    assert isinstance(summary, StatementSummary) and summary.payments == Money(minor, "CNY")


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_fees_round_half_up_to_the_fen(millifen: int) -> None:
    sign = "-" if millifen < 0 else ""
    text = f"{sign}{abs(millifen) // 100_000}.{abs(millifen) % 100_000:05d}"
    row = PAYMENT_ROW.replace("`0.53000", f"`{text}")
    (payment,) = parse_trade_bill([(ALL_HEADER + "\n" + row + "\n").encode()])
    assert isinstance(payment, StatementRow) and payment.fee is not None
    whole, rest = divmod(abs(millifen), 1000)
    expected = whole + (1 if rest >= 500 else 0)
    assert payment.fee == Money(expected if millifen >= 0 else -expected, "CNY")


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
    assert [type(row).__name__ for row in rows] == ["StatementRow", "StatementRow", "StatementSummary"]
    assert [row.kind for row in rows if isinstance(row, StatementRow)] == [StatementKind.PAYMENT, StatementKind.REFUND]


def _error(status: int, code: str) -> HttpResponse:
    return HttpResponse(status=status, headers={"content-type": "application/json"},
                        body=json.dumps({"code": code, "message": "x"}).encode())


def test_a_day_without_movement_is_an_empty_statement(kit: WeChatKit) -> None:
    transport = FakeTransport([_error(400, "NO_STATEMENT_EXIST")])
    adapter = WeChatPayAdapter(transport, clock=lambda: NOW)
    assert list(adapter.parse_statement(kit.account(), adapter.fetch_statement(kit.account(), "2024-05-19"))) == []


def test_a_bill_still_being_generated_is_retryable(kit: WeChatKit) -> None:
    transport = FakeTransport([_error(400, "STATEMENT_CREATING")])
    with pytest.raises(ChannelError) as raised:
        WeChatPayAdapter(transport, clock=lambda: NOW).fetch_statement(kit.account(), "2024-05-19")
    assert raised.value.retryable
