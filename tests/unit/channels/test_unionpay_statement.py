"""UnionPay reconciliation files: download (base64 of zlib of ZIP) and fixed-width GBK parsing by byte widths."""

from __future__ import annotations

import base64
import io
import zipfile
import zlib
from datetime import datetime, timedelta, timezone

import pytest
from unionpay_kit import MER_ID, NOW, FakeTransport, make_kit, sent_fields

from chalicelib.channels.base import StatementKind, StatementRow
from chalicelib.channels.unionpay import UnionPayAdapter
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

BEIJING = timezone(timedelta(hours=8))
# docs/channels/unionpay.md#file-layout: byte widths as in UnionPay's demo parseZMFile.
ZM_WIDTHS = [3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1, 15, 32,
             13, 13, 8, 32, 13, 13, 12, 2, 1, 32, 98]
ZME_WIDTHS = [3, 11, 11, 6, 10, 19, 12, 4, 2, 2, 6, 10, 4, 12, 13, 13, 15, 15, 1, 12, 2, 135]


def fixed(values: dict[int, str], widths: list[int]) -> bytes:
    cells = []
    for index, width in enumerate(widths):
        cell = values.get(index, "").encode("gbk")
        assert len(cell) <= width
        cells.append(cell.ljust(width, b" "))
    return b" ".join(cells)


def zm_line(order_id: str, amount: int, txn_type: str = "01", fee: str = "D000000000053", trace_time: str = "0520120005",
            query_id: str = "782405201200000000010", orig_order_id: str = "", currency: str = "", note: str = "绿茶") -> bytes:
    return fixed({0: "S22", 3: "000010", 4: trace_time, 5: "621626******0018", 6: f"{amount:012d}", 9: query_id,
                  11: order_id, 15: fee, 16: f"C{amount:012d}", 19: txn_type, 20: "01", 21: "000201", 27: MER_ID,
                  34: note, 40: orig_order_id, 41: currency}, ZM_WIDTHS)


def zme_line(order_id: str, amount: int, reason: str = "FAIL", txn_type: str = "01") -> bytes:
    reserved = order_id.ljust(32) + "782405201200000000011".ljust(21) + "156" + "".ljust(32)
    return fixed({0: "E22", 3: "000011", 4: "0520130000", 6: f"{amount:012d}", 9: txn_type, 12: reason,
                  14: "D000000000000", 16: MER_ID, 21: reserved}, ZME_WIDTHS)


def archive(zm: list[bytes], zme: list[bytes], day: str = "240520", mer_id: str = MER_ID) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(f"INN{day}01ZM_{mer_id}", b"\r\n".join(zm) + (b"\r\n" if zm else b""))
        bundle.writestr(f"INN{day}01ZME_{mer_id}", b"\r\n".join(zme) + (b"\r\n" if zme else b""))
    return buffer.getvalue()


def parse(data: bytes, chunk: int = 7) -> list:
    adapter = UnionPayAdapter(FakeTransport(), clock=lambda: NOW)
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return list(adapter.parse_statement(make_kit().account(), iter(pieces)))


def test_zm_rows_become_succeeded_payments_and_refunds():
    data = archive([
        zm_line("attZ0abcdefghijklmnopqrstuvwx", 8888),
        zm_line("reZ0abcdefghijklmnopqrstuvwx", 888, txn_type="04", fee="C000000000005", query_id="782405201300000000020",
                orig_order_id="attZ0abcdefghijklmnopqrstuvwx", trace_time="0520130000"),
    ], [])
    payment, refund = parse(data)
    assert payment == StatementRow(
        kind=StatementKind.PAYMENT, object_id="att_abcdefghijklmnopqrstuvwx", channel_ref="782405201200000000010",
        amount=Money(8888, "CNY"), status="succeeded", occurred_at=datetime(2024, 5, 20, 12, 0, 5, tzinfo=BEIJING),
        fee=Money(53, "CNY"), attempt_id=None, line=1)
    assert (refund.kind, refund.object_id, refund.attempt_id) == (
        StatementKind.REFUND, "re_abcdefghijklmnopqrstuvwx", "att_abcdefghijklmnopqrstuvwx")
    assert refund.amount == Money(888, "CNY") and refund.fee == Money(-5, "CNY") and refund.line == 2


def test_gbk_text_counts_in_bytes_not_characters():
    # 16 Chinese characters fill the 32-byte column exactly; a character count would shift every later column.
    rows = parse(archive([zm_line("attZ0abcdefghijklmnopqrstuvwx", 1, note="中" * 16)], []))
    assert rows[0].amount == Money(1, "CNY")


def test_zme_rows_carry_their_error_status():
    rows = parse(archive([], [zme_line("attZ0zzzzzzzzzzzzzzzzzzzzzzzz", 500), zme_line("attZ0yyyyyyyyyyy", 7, "XYZW")]))
    assert [(r.object_id, r.status, r.amount.minor) for r in rows] == [
        ("att_zzzzzzzzzzzzzzzzzzzzzzzz", "failed", 500), ("att_yyyyyyyyyyy", "xyzw", 7)]


def test_currency_comes_from_the_reserved_column():
    rows = parse(archive([zm_line("attZ0abcdefghijklmnopqrstuvwx", 100, currency="840")], []))
    assert rows[0].amount == Money(100, "USD")


def test_foreign_order_numbers_keep_their_raw_text():
    rows = parse(archive([zm_line("ORDER20240520X1", 100)], []))
    assert rows[0].object_id == "ORDER20240520X1"


def test_an_empty_day_has_no_rows():
    assert parse(archive([], [])) == []


def test_trailing_blanks_may_be_trimmed_from_the_last_column():
    line = zm_line("attZ0abcdefghijklmnopqrstuvwx", 100).rstrip()
    assert parse(archive([line], []))[0].amount == Money(100, "CNY")


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda line: line + b"X", "bytes where"),
    (lambda line: line[:100], "bytes where"),
    (lambda line: line[:3] + b"X" + line[4:], "separator"),
    (lambda line: line.replace(b"000000008888", b"0000000088.8"), "amount"),
    (lambda line: line.replace(b"D000000000053", b"X000000000053"), "fee"),
    (lambda line: line.replace(b"0520120005", b"1340120005"), "traceTime"),
    (lambda line: line.replace(b" 01 01 000201", b" 31 01 000201"), "txnType"),
    (lambda line: line.replace(b"\xc2\xcc\xb2\xe8", b"\xff\xff\xff\xff"), "GBK"),
])
def test_a_malformed_line_names_the_file_and_line(mutate, reason):
    good = zm_line("attZ0abcdefghijklmnopqrstuvwx", 8888)
    data = archive([good, mutate(good)], [])
    with pytest.raises(ChannelError, match=rf"ZM_{MER_ID} line 2: .*{reason}"):
        parse(data)


@pytest.mark.parametrize(("data", "reason"), [
    (b"not a zip", "not a ZIP"),
    (archive([], [], mer_id="999999999999999"), "another merchant"),
])
def test_broken_archives_are_refused(data, reason):
    with pytest.raises(ChannelError, match=reason):
        parse(data)


def test_an_archive_without_its_zme_file_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr(f"INN24052001ZM_{MER_ID}", b"")
    with pytest.raises(ChannelError, match="ZME"):
        parse(buffer.getvalue())


# -- download ---------------------------------------------------------------------------------------------------------------


def file_answer(data: bytes, code: str = "00") -> dict[str, str]:
    return {"respCode": code, "respMsg": "成功", "fileName": f"{MER_ID}_20240520.zip",
            "fileContent": base64.b64encode(zlib.compress(data)).decode(), "settleDate": "0520", "merId": MER_ID}


def test_fetch_sends_file_transfer_and_returns_the_zip():
    kit = make_kit()
    data = archive([zm_line("attZ0abcdefghijklmnopqrstuvwx", 8888)], [])
    transport = FakeTransport([kit.answer(file_answer(data))])
    adapter = UnionPayAdapter(transport, clock=lambda: NOW)
    fetched = b"".join(adapter.fetch_statement(kit.account(), "2024-05-20"))
    assert fetched == data
    sent = sent_fields(transport.requests[0])
    assert transport.requests[0].url == "https://gateway.test.invalid/"
    assert (sent["txnType"], sent["txnSubType"], sent["bizType"], sent["fileType"], sent["settleDate"]) == (
        "76", "01", "000000", "00", "0520")
    assert len(parse(fetched)) == 1


def test_fetch_of_a_file_not_ready_is_retryable():
    kit = make_kit()
    adapter = UnionPayAdapter(FakeTransport([kit.answer({"respCode": "98", "respMsg": "文件不存在"})]), clock=lambda: NOW)
    with pytest.raises(ChannelError) as caught:
        list(adapter.fetch_statement(kit.account(), "2024-05-20"))
    assert caught.value.retryable


@pytest.mark.parametrize(("content", "reason"), [
    ("%%%", "base64"), (base64.b64encode(b"plain").decode(), "zlib"),
    (base64.b64encode(zlib.compress(b"not a zip")).decode(), "not a ZIP"),
    (base64.b64encode(zlib.compress(archive([], [], day="240519"))).decode(), "holds files for"),
])
def test_fetch_refuses_content_that_does_not_check_out(content, reason):
    kit = make_kit()
    answer = {**file_answer(b""), "fileContent": content}
    adapter = UnionPayAdapter(FakeTransport([kit.answer(answer)]), clock=lambda: NOW)
    with pytest.raises(ChannelError, match=reason):
        list(adapter.fetch_statement(kit.account(), "2024-05-20"))


def test_fetch_day_must_be_a_date():
    with pytest.raises(InvalidRequest):
        UnionPayAdapter(FakeTransport()).fetch_statement(make_kit().account(), "20240520")
