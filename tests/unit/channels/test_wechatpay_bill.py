"""Trade bill: fetch with the SHA-1 check, streaming parse by header name, yuan to fen."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechatpay_kit import NOW, FakeTransport, WeChatKit

from chalicelib.channels.base import HttpResponse, StatementKind, StatementRow, StatementSummary
from chalicelib.channels.wechatpay import WeChatPayAdapter
from chalicelib.channels.wechatpay.bill import _decimal_fee, bill_time, fee_minor, parse_trade_bill, parse_trade_bill_rows
from chalicelib.channels.wechatpay.orders import BEIJING
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money
from chalicelib.recon.matching import compact_row

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


# --- rows as tuples (what a reconciliation run reads) -------------------------------------------


def _varied_bill() -> bytes:
    """Payments and refunds of every shape the parser distinguishes, a legacy second layout, and the summary."""
    rows = [
        PAYMENT_ROW,
        REFUND_ROW,
        PAYMENT_ROW.replace("`SUCCESS", "`REVOKED").replace("`0.53000", "`"),  # no fee cell
        PAYMENT_ROW.replace("`CNY", "`USD").replace("`att_01HZX3", "`att_usd").replace("`88.88,`0.00", "`7.5,`0.00"),
        PAYMENT_ROW.replace("`2024-05-19 10:12:13", "`2024-05-19 10:12:13").replace("`0.53000", "`0.00500"),  # same time
        PAYMENT_ROW.replace("`att_01HZX3", "`att_jpy").replace("`CNY", "`JPY").replace("`88.88,`0.00", "`500,`0.00"),
        PAYMENT_ROW.replace("`4200002246202405190000000001", "`").replace("`88.88,`0.00", "`1_000.00,`0.00"),  # Decimal path
        REFUND_ROW.replace("`SUCCESS", "`PROCESSING").replace("`-0.01000", "`-0.00500").replace("`rf_01", "`rf_02"),
        REFUND_ROW.replace("`50000000382019052709732678859", "`0").replace("`att_01HZX3", "`").replace("`rf_01", "`rf_03"),
        REFUND_ROW.replace("`2024-05-19 11:00:00", "`2024-05-19 23:59:59").replace("`-0.01000", "`1e-3"),
        PAYMENT_ROW.replace("`T恤, 红色", "`T恤, 红色, 大号") + ",`",  # a comma in a cell, a trailing empty cell
    ]
    legacy_header = ALL_HEADER.replace("应结订单金额", "总金额").replace("交易时间,", "").replace(",手续费", "") + ",交易时间"
    cells = PAYMENT_ROW[1:].split(",`")[: len(ALL_HEADER.split(","))]  # without the trailing empty cell
    legacy_row = "`" + ",`".join(cell for index, cell in enumerate(cells) if index not in (0, 22))
    legacy_row += ",`2024-05-19 12:00:00"
    lines = [ALL_HEADER, *rows, "", legacy_header, legacy_row, SUMMARY_HEADER, SUMMARY_ROW]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


def test_tuple_rows_and_statement_rows_are_the_same_rows() -> None:
    data = _varied_bill()
    rows = list(parse_trade_bill([data]))
    tuples = list(parse_trade_bill_rows(_chunked(data, 97)))
    assert [compact_row(row) if isinstance(row, StatementRow) else row for row in rows] == tuples
    assert [type(row).__name__ for row in rows] == ["StatementRow"] * 12 + ["StatementSummary"]
    assert [row.line for row in rows if isinstance(row, StatementRow)] == [*range(2, 13), 15]
    legacy = rows[11]
    assert isinstance(legacy, StatementRow) and legacy.fee is None and legacy.amount == Money(8888, "CNY")
    assert legacy.occurred_at == datetime(2024, 5, 19, 12, tzinfo=BEIJING)


def test_tuple_rows_hold_plain_values() -> None:
    payment, refund, summary = parse_trade_bill_rows([_bill()])
    assert payment == ("payment", "att_01HZX3", "4200002246202405190000000001", 8888, "CNY", "succeeded", 53, "CNY",
                       datetime(2024, 5, 19, 10, 12, 13, tzinfo=BEIJING), None, 2)
    assert refund == ("refund", "rf_01", "50000000382019052709732678859", 100, "CNY", "succeeded", -1, "CNY",
                      datetime(2024, 5, 19, 11, tzinfo=BEIJING), "att_01HZX3", 3)
    assert isinstance(summary, StatementSummary) and summary.count == 2


def test_columns_are_found_again_for_each_header() -> None:
    # The same row under a header in another column order reads the same.
    header, row = ALL_HEADER.split(","), PAYMENT_ROW[1:].split(",`")
    order = list(reversed(range(len(header))))
    shuffled = ",".join(header[i] for i in order) + "\n`" + ",`".join(row[i] for i in order) + "\n"
    data = (ALL_HEADER + "\n" + PAYMENT_ROW + "\n" + shuffled).encode()
    first, second = parse_trade_bill_rows([data])
    assert first[:10] == second[:10] and (first[10], second[10]) == (2, 4)


def test_a_row_repeating_the_previous_time_still_fails_on_a_bad_time() -> None:
    bad = PAYMENT_ROW.replace("`2024-05-19 10:12:13", "`2024-05-19 10:12")
    with pytest.raises(ChannelError, match="line 4: time data"):
        list(parse_trade_bill_rows([(ALL_HEADER + "\n" + PAYMENT_ROW + "\n" + PAYMENT_ROW + "\n" + bad + "\n").encode()]))


@pytest.mark.parametrize(("header", "row", "message"), [
    (ALL_HEADER.replace("交易时间,", "x,"), PAYMENT_ROW, "line 2: '交易时间'"),
    (ALL_HEADER, PAYMENT_ROW.replace("`88.88,`0.00", "`,`0.00"), "line 2: no amount in 应结订单金额 or 总金额"),
    (ALL_HEADER, REFUND_ROW.replace("`1.00,`0.00,`ORIGINAL", "`,`0.00,`ORIGINAL"), "line 2: no amount in 退款金额"),
    (ALL_HEADER, PAYMENT_ROW.replace("`CNY", "`XXX"), "line 2: unsupported currency 'XXX'"),
    (ALL_HEADER, PAYMENT_ROW.replace("`88.88,`0.00", "`-,`0.00"), "line 2: '-' is not a decimal amount"),
    (ALL_HEADER, PAYMENT_ROW.replace("`0.53000", "`NaN"), "line 2: bad fee 'NaN'"),
    (ALL_HEADER, PAYMENT_ROW.replace("`2024-05-19 10:12:13", "`2024-02-30 10:12:13"), "line 2: day is out of range"),
])
def test_row_errors_name_the_line_and_the_reason(header: str, row: str, message: str) -> None:
    data = (header + "\n" + row + "\n").encode()
    for parse in (parse_trade_bill, parse_trade_bill_rows):
        with pytest.raises(ChannelError, match=message):
            list(parse([data]))


def test_data_before_any_header_is_malformed() -> None:
    with pytest.raises(ChannelError, match="line 1: data before any header"):
        list(parse_trade_bill_rows([(PAYMENT_ROW + "\n").encode()]))


@given(st.builds(lambda units, places: str(Decimal(units).scaleb(-places)), st.integers(-10**15, 10**15),
                 st.integers(0, 7)) | st.sampled_from(
    ["5.", ".5", "-.5", "+0.5", " 0.5", "1_0.5", "-0", "1e-3", "0.5e1", "٣.5", "-0.00500", "0.999995",
     "12345678901234567890.12345", "1234567890123456789012345678.5"]))
def test_fee_cells_read_without_decimal_as_decimal_reads_them(text: str) -> None:
    try:
        expected: Any = _decimal_fee(text)
    except ValueError as exc:
        expected = str(exc)
    try:
        found: Any = fee_minor(text)
    except ValueError as exc:
        found = str(exc)
    assert found == expected


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_bill_times_read_as_strptime_reads_them(moment: datetime) -> None:
    text = moment.strftime("%Y-%m-%d %H:%M:%S") if moment.year >= 1000 else f"{moment.year:04d}" + moment.strftime(
        "-%m-%d %H:%M:%S")
    assert bill_time(text) == datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    assert bill_time(text).utcoffset() == BEIJING.utcoffset(None)


@pytest.mark.parametrize("text", ["2024-5-19 1:2:3", "2024-05-19T10:12:13", "2024-05-19 10:12:13.5", "2024-W20-7 10:12:13",
                                  "2024-13-01 00:00:00", "2024-05-19 10:12:60", " 2024-05-19 10:12:13", ""])
def test_irregular_bill_times_get_strptimes_answer(text: str) -> None:
    try:
        expected: Any = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError as exc:
        expected = str(exc)
    try:
        found: Any = bill_time(text)
    except ValueError as exc:
        found = str(exc)
    assert found == expected


def _reference(data: bytes) -> list[Any]:
    """The bill's rules read the plain way (a dict per row, ``Decimal``, ``strptime``): the oracle for the parser's
    index-based fast paths. Returns the rows, then the error text if the bill is refused."""
    found: list[Any] = []
    header: list[str] = []
    for number, line in enumerate(data.decode("utf-8-sig").replace("\r", "").split("\n"), start=1):
        if not line.startswith("`"):
            header = [cell.strip() for cell in line.split(",")] if line.strip() else header
            continue
        cells = line[1:].split(",`")
        while len(cells) > len(header) and cells[-1] == "":
            cells.pop()
        row = dict(zip(header, cells, strict=True))
        try:
            currency = row.get("货币种类") or "CNY"
            at = datetime.strptime(row["交易时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
            refund = row.get("交易状态", "") == "REFUND"
            if refund and row.get("商户退款单号", "") in ("", "0"):
                raise ValueError("refund row without 商户退款单号")
            names = ("退款金额",) if refund else ("应结订单金额", "总金额")
            text = next((row[name] for name in names if row.get(name)), None)
            if text is None:
                raise ValueError(f"no amount in {' or '.join(names)}")
            amount = Money.from_decimal_string(text, currency)
            fee = Money(_reference_fee(row["手续费"]), currency) if row.get("手续费") else None
        except (KeyError, ValueError) as exc:
            return [*found, f"line {number}: {exc}"]
        word = row.get("退款状态", "") if refund else row.get("交易状态", "")
        found.append(StatementRow(
            kind=StatementKind.REFUND if refund else StatementKind.PAYMENT,
            object_id=row["商户退款单号"] if refund else row.get("商户订单号", ""),
            channel_ref=(None if row.get("微信退款单号", "") in ("", "0") else row["微信退款单号"]) if refund
            else row.get("微信订单号") or None,
            amount=amount, status="succeeded" if word == "SUCCESS" else word.lower(), occurred_at=at, fee=fee,
            attempt_id=(row.get("商户订单号") or None) if refund else None, line=number))
    return found


def _reference_fee(text: str) -> int:
    try:
        yuan = Decimal(text)
        fen = int(yuan.scaleb(2).quantize(Decimal(1), rounding="ROUND_HALF_UP")) if yuan.is_finite() else None
    except ArithmeticError:  # not a number, or past the 28-digit context
        fen = None
    if fen is None:
        raise ValueError(f"bad fee {text!r}")
    return fen


CELLS = {
    "交易时间": ["2024-05-19 10:12:13", "2024-05-19 23:59:59", "2024-5-19 1:2:3", "2024-05-19T10:12:13", "",
             "2024-13-01 00:00:00", "2024-05-19 10:12:60", "2024-W20-7 10:12:13"],
    "交易状态": ["SUCCESS", "REFUND", "REVOKED", "", "Success"], "货币种类": ["CNY", "", "JPY", "KWD", "USD", "XXX"],
    "应结订单金额": ["88.88", "88.8", "88", "0.00", "5.", ".5", "1_000.00", "1e2", "-1.00", "88.885", "88.880", "", "NaN"],
    "退款金额": ["1.00", "", "0.5", "1.005", "abc"], "手续费": ["0.53000", "-0.00500", "0.00499", "", "5", "1e-3", "abc", "-0"],
    "商户退款单号": ["rf_1", "0", ""], "微信退款单号": ["503", "0", ""], "退款状态": ["SUCCESS", "PROCESSING", ""],
    "商户订单号": ["att_1", ""], "微信订单号": ["4200", ""],
}


@given(st.lists(st.fixed_dictionaries({name: st.sampled_from(values) for name, values in CELLS.items()}),
                min_size=1, max_size=4),
       st.sampled_from([ALL_HEADER, ALL_HEADER.replace("应结订单金额", "总金额"), ALL_HEADER.replace(",手续费", ",x"),
                        ALL_HEADER.replace("货币种类", "x")]))
def test_the_parser_reads_varied_rows_as_the_plain_rules_do(rows: list[dict[str, str]], header: str) -> None:
    columns = header.split(",")
    lines = [header, *("`" + ",`".join(row.get(name, "-") for name in columns) for row in rows)]
    data = ("\r\n".join(lines) + "\r\n").encode()
    found: list[Any] = []
    try:
        found.extend(parse_trade_bill([data]))
    except ChannelError as exc:
        found.append(str(exc).removeprefix("trade bill "))
    assert found == _reference(data)


def test_the_adapter_offers_the_tuple_rows(kit: WeChatKit) -> None:
    adapter = WeChatPayAdapter(FakeTransport(), clock=lambda: NOW)
    assert list(adapter.parse_statement_compact(kit.account(), [_bill()])) == list(parse_trade_bill_rows([_bill()]))


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


def test_a_day_without_movement_is_an_empty_statement(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(400, {"code": "NO_STATEMENT_EXIST", "message": "x"})])
    adapter = WeChatPayAdapter(transport, clock=lambda: NOW)
    assert list(adapter.parse_statement(kit.account(), adapter.fetch_statement(kit.account(), "2024-05-19"))) == []


def test_a_bill_still_being_generated_is_retryable(kit: WeChatKit, signed_response: Signed) -> None:
    transport = FakeTransport([signed_response(400, {"code": "STATEMENT_CREATING", "message": "x"})])
    with pytest.raises(ChannelError) as raised:
        WeChatPayAdapter(transport, clock=lambda: NOW).fetch_statement(kit.account(), "2024-05-19")
    assert raised.value.retryable


def test_an_unsigned_no_statement_answer_is_not_an_empty_statement(kit: WeChatKit) -> None:
    """An empty statement would turn every hub success of the day into a query; only WeChat may say there is none."""
    transport = FakeTransport([_error(400, "NO_STATEMENT_EXIST")])
    with pytest.raises(ChannelError) as raised:
        WeChatPayAdapter(transport, clock=lambda: NOW).fetch_statement(kit.account(), "2024-05-19")
    assert raised.value.channel_code == "HTTP_400"


def test_an_unsigned_tradebill_answer_is_refused_and_nothing_is_downloaded(kit: WeChatKit,
                                                                           signed_response: Signed) -> None:
    data = _bill()
    transport = FakeTransport([signed_response(200, _answer(data), sign=False), _file(data)])
    with pytest.raises(ChannelError) as raised:
        WeChatPayAdapter(transport, clock=lambda: NOW).fetch_statement(kit.account(), "2024-05-19")
    assert raised.value.channel_code == "RESPONSE_UNSIGNED" and len(transport.requests) == 1


def test_the_bill_file_is_the_one_unsigned_answer_accepted(kit: WeChatKit, signed_response: Signed) -> None:
    """WeChat does not sign the file; the SHA-1 in the signed tradebill answer vouches for it."""
    data = _bill()
    transport = FakeTransport([signed_response(200, _answer(data)), _file(data)])
    assert "wechatpay-signature" not in _file(data).headers
    assert b"".join(WeChatPayAdapter(transport, clock=lambda: NOW).fetch_statement(kit.account(), "2024-05-19")) == data


def test_gzip_members_one_after_another_are_one_bill_and_a_cut_stream_is_refused() -> None:
    """``gzip -d`` reads concatenated members as one stream: so does the parser (it once read the first member only,
    and a bill cut at a member's end lost its other rows). A stream cut inside a member names the line it reached."""
    plain = _bill()
    expected = list(parse_trade_bill_rows([plain]))
    at = plain.index(b"\n", len(plain) // 2) + 1  # members split at a line's end and inside a line
    for cut in (at, at + 7):
        members = gzip.compress(plain[:cut]) + gzip.compress(plain[cut:])
        assert list(parse_trade_bill_rows([members[i:i + 50] for i in range(0, len(members), 50)])) == expected
    with pytest.raises(ChannelError, match="trade bill line"):
        list(parse_trade_bill_rows([gzip.compress(plain)[:-20]]))
