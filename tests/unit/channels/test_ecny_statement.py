"""The reconciliation file: fetched with its SM3 check, parsed as a stream by header name; anything malformed
is a ChannelError that names the line."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from ecny_kit import ATTEMPT, COLUMNS, MERCHANT_ID, NOW, FakeGateway, make_kit, pay_row, refund_row, statement_file
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import HttpResponse, StatementKind, StatementRow, StatementSummary
from chalicelib.channels.ecny import ECNYAdapter
from chalicelib.channels.ecny.states import BEIJING
from chalicelib.crypto.sm import sm3_digest
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

KIT = make_kit()
ADAPTER = ECNYAdapter(FakeGateway(), clock=lambda: NOW)
OFFLINE = pay_row("att_offline0000000000000001", "5.00", 离线标识="Y", 交易时间="20240519231500",
                  入账时间="20240520080000")
ROWS = [pay_row(), refund_row(), OFFLINE]


def _parse(data: bytes, chunk: int = 1 << 16) -> list[StatementRow | StatementSummary]:
    return list(ADAPTER.parse_statement(KIT.account(), (data[i:i + chunk] for i in range(0, len(data), chunk))))


def _fails(data: bytes, line: int, reason: str) -> None:
    with pytest.raises(ChannelError, match=f"line {line}: .*{reason}"):
        _parse(data)


def test_rows_and_summary_of_the_real_format() -> None:
    *rows, summary = _parse(statement_file(ROWS))
    pay, back, offline = rows
    assert pay == StatementRow(
        kind=StatementKind.PAYMENT, object_id=ATTEMPT, channel_ref="EO2024052012000012345678",
        amount=Money(8888, "CNY"), status="succeeded", occurred_at=datetime(2024, 5, 20, 12, 1, 2, tzinfo=BEIJING),
        fee=Money(0, "CNY"), attempt_id=None, line=3)
    assert (back.kind, back.object_id, back.attempt_id, back.channel_ref, back.amount) == (
        StatementKind.REFUND, "re_01hz8k3m4n5p6q7r8s9t0v1w2x", ATTEMPT, "ER2024052013000012345678", Money(888, "CNY"))
    assert offline.occurred_at == datetime(2024, 5, 20, 8, 0, tzinfo=BEIJING)  # the day the bank booked it
    assert summary == StatementSummary(count=3, payments=Money(9388, "CNY"), refunds=Money(888, "CNY"),
                                       fees=Money(0, "CNY"), settlement=Money(8500, "CNY"))


def test_an_empty_day_is_a_file_with_a_zero_trailer() -> None:
    assert _parse(statement_file([])) == [StatementSummary(count=0, payments=Money(0, "CNY"), refunds=Money(0, "CNY"),
                                                           fees=Money(0, "CNY"), settlement=Money(0, "CNY"))]


def test_columns_are_found_by_name() -> None:
    reordered = list(reversed(COLUMNS)) + ["备注"]
    rows = [{**row, "备注": "新增列"} for row in ROWS]
    assert _parse(statement_file(rows, columns=reordered))[:-1] == _parse(statement_file(ROWS))[:-1]


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=97))
def test_any_chunking_gives_the_same_result(chunk: int) -> None:
    """Chunks split lines, and GBK characters, anywhere."""
    data = statement_file(ROWS)
    assert _parse(data, chunk) == _parse(data)


def test_other_statuses_and_currencies_are_reported_not_refused() -> None:
    """A status or currency difference is reconciliation's to classify, not a parse failure."""
    rows = _parse(statement_file([pay_row(交易状态="REVERSED", 币种="USD")]))
    assert rows[0].status == "reversed" and rows[0].amount == Money(8888, "USD")


@pytest.mark.parametrize(("change", "line", "reason"), [
    ({"交易金额": "88.8"}, 3, "交易金额"), ({"交易金额": "8888"}, 3, "交易金额"), ({"交易金额": "1e3"}, 3, "交易金额"),
    ({"手续费": "abc"}, 3, "手续费"), ({"入账时间": "2024-05-20 12:01:02"}, 3, "入账时间"),
    ({"交易类型": "TRANSFER"}, 3, "交易类型"), ({"商户订单号": ""}, 3, "merchant order"),
])
def test_a_malformed_row_names_its_line(change: dict, line: int, reason: str) -> None:
    _fails(statement_file([pay_row(**change)]), line, reason)


def test_a_row_with_a_missing_cell_names_its_line() -> None:
    data = statement_file(ROWS).replace(b"|N|************9012\r\n", b"|N\r\n", 1)
    _fails(data, 3, "13 cells for 14 columns")


def test_integrity_failures() -> None:
    good = statement_file(ROWS)
    _fails(statement_file(ROWS, digest="0" * 64), 6, "SM3 digest")
    _fails(good.replace(b"88.88|0.00", b"88.89|0.00", 1), 6, "SM3 digest")  # a changed row, the old trailer
    trailer_at = good.index("合计".encode("gbk"))
    _fails(good[:trailer_at], 6, "without its 合计 trailer")
    _fails(statement_file(ROWS, trailer="合计|总笔数=2|支付笔数=2|支付金额=93.88|退款笔数=1|退款金额=8.88|手续费=0.00"
                                        "|结算金额=85.00|SM3=" + "0" * 64), 6, "counts 2 rows")
    _fails(good + b"PAY|late\r\n", 7, "after the trailer")


@pytest.mark.parametrize(("data", "line", "reason"), [
    (b"NOTECNY|1.0|EC|20240520|x\r\n", 1, "file header"),
    (statement_file(ROWS, merchant_id="EC0000000000000"), 1, "another merchant"),
    (statement_file(ROWS).replace(b"|1.0|", b"|2.0|", 1), 1, "version"),
    (statement_file(ROWS).replace("交易金额".encode("gbk"), "金额".encode("gbk"), 1), 2, "lacks 交易金额"),
    (statement_file(ROWS).replace(b"88.88|", b"\xff\xff.88|", 1), 3, "GBK"),
    (statement_file(ROWS).replace("合计|总笔数=3".encode("gbk"), "合计|总笔数".encode("gbk"), 1), 6, "name=value"),
])
def test_malformed_files(data: bytes, line: int, reason: str) -> None:
    _fails(data, line, reason)


# -- fetch ---------------------------------------------------------------------------------------------


def _apply_answer(content: bytes, **changes) -> dict:
    return {"bill_date": "20240520", "file_name": f"ECNY_{MERCHANT_ID}_20240520.txt", "file_size": len(content),
            "digest_alg": "SM3", "digest": sm3_digest(content).hex(), "download_token": "tok", **changes}


def _file(content: bytes):
    """The download answer: the raw file, unsigned."""
    return lambda request: HttpResponse(status=200, headers={"content-type": "text/plain; charset=GBK"}, body=content)


def test_fetch_applies_downloads_and_checks_the_digest() -> None:
    content = statement_file(ROWS)
    gateway = FakeGateway([KIT.success(_apply_answer(content)), _file(content)])
    chunks = list(ECNYAdapter(gateway, clock=lambda: NOW).fetch_statement(KIT.account(), "2024-05-20"))
    assert b"".join(chunks) == content
    assert json.loads(gateway.requests[0].body) == {"merchant_id": MERCHANT_ID, "bill_date": "20240520"}
    assert json.loads(gateway.requests[1].body) == {"merchant_id": MERCHANT_ID, "download_token": "tok"}
    assert gateway.requests[1].url.endswith("/ecny/v1/statements/download")


@pytest.mark.parametrize("changes", [{"digest": "0" * 64}, {"file_size": 1}])
def test_fetch_refuses_a_file_that_does_not_match_the_signed_digest(changes: dict) -> None:
    content = statement_file(ROWS)
    gateway = FakeGateway([KIT.success(_apply_answer(content, **changes)), _file(content)])
    with pytest.raises(ChannelError, match="SM3") as caught:
        list(ECNYAdapter(gateway, clock=lambda: NOW).fetch_statement(KIT.account(), "2024-05-20"))
    assert caught.value.retryable


def test_fetch_before_the_file_exists_is_retryable() -> None:
    gateway = FakeGateway([KIT.failure("STATEMENT_NOT_READY")])
    with pytest.raises(ChannelError) as caught:
        ECNYAdapter(gateway, clock=lambda: NOW).fetch_statement(KIT.account(), "2024-05-20")
    assert caught.value.retryable


def test_fetch_refuses_a_malformed_day() -> None:
    with pytest.raises(InvalidRequest):
        ADAPTER.fetch_statement(KIT.account(), "20240520")
