"""Alipay trade bill: fetch through the download-URL call, then a streamed parse of the ZIP of GBK CSVs."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest
from alipay_kit import AlipayKit, FakeTransport, make_kit

from chalicelib.channels.alipay import AlipayAdapter
from chalicelib.channels.alipay.bill import parse_trade_bill
from chalicelib.channels.base import HttpResponse, StatementKind, StatementRow, StatementSummary
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

BEIJING = timezone(timedelta(hours=8))
HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
          "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
          "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")
PAYMENT = ("2024052022001400001234567890\t,att_01HZX3K8Q\t,交易\t,绿茶，两杯,2024-05-20 11:59:50,2024-05-20 12:00:04,\t,\t,"
           "\t,\t,t**@example.com\t,88.88,88.88,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,-0.53,0.00,")
REFUND = ("2024052022001400001234567890\t,att_01HZX3K8Q\t,退款\t,绿茶，两杯,2024-05-20 11:59:50,2024-05-20 13:10:00,\t,\t,"
          "\t,\t,t**@example.com\t,-8.88,-8.88,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,re_01HZX9\t,0.05,0.00,")
SUMMARY_HEADER = ("门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,"
                  "卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）")


def detail(*rows: str, header: str = HEADER, footer: bool = True) -> list[str]:
    lines = ["#支付宝业务明细查询", "#账号：[20886210000000010156]",
             "#起始日期：[2024年05月20日 00:00:00]   终止日期：[2024年05月21日 00:00:00]",
             "#-----------------------------------------业务明细列表----------------------------------------", header, *rows,
             "#-----------------------------------------业务明细列表结束------------------------------------"]
    if footer:
        lines += ["#交易合计：1笔，商家实收共88.88元，商家优惠共0.00元",
                  "#退款合计：1笔，商家实收退款共-8.88元，商家优惠退款共0.00元"]
    return [*lines, "#导出时间：[2024年05月21日 09:47:31]"]


def summary() -> list[str]:
    return ["#支付宝业务汇总查询", "#账号：[20886210000000010156]", SUMMARY_HEADER,
            "\t,\t,1,1,80.00,80.00,0.00,0.00,0.00,-0.48,0.00,79.52", "合计,,1,1,80.00,80.00,0.00,0.00,0.00,-0.48,0.00,79.52",
            "#-----------------------------------------业务汇总列表结束------------------------------------"]


class GbkName(zipfile.ZipInfo):
    """Alipay's archives: GBK entry names, no UTF-8 flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def archive(files: dict[str, list[str] | bytes], gbk_names: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, content in files.items():
            info = GbkName(name) if gbk_names else zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            data = content if isinstance(content, bytes) else ("\r\n".join(content) + "\r\n").encode("gbk")
            zipped.writestr(info, data)
    return buffer.getvalue()


DETAIL_NAME = "20886210000000010156_20240520_业务明细.csv"
SUMMARY_NAME = "20886210000000010156_20240520_业务明细(汇总).csv"


def bill(*rows: str, **options: bool) -> bytes:
    return archive({DETAIL_NAME: detail(*rows, **options), SUMMARY_NAME: summary()})


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture(scope="module")
def kit() -> AlipayKit:
    return make_kit()


def test_rows_and_summary_from_the_real_layout() -> None:
    payment, refund, total = list(parse_trade_bill(chunks(bill(PAYMENT, REFUND), 97)))  # odd chunks: no alignment
    assert isinstance(payment, StatementRow) and isinstance(refund, StatementRow) and isinstance(total, StatementSummary)
    assert (payment.kind, payment.object_id, payment.channel_ref) == (
        StatementKind.PAYMENT, "att_01HZX3K8Q", "2024052022001400001234567890")  # trailing tabs stripped
    assert (payment.amount, payment.fee, payment.status) == (Money(8888, "CNY"), Money(53, "CNY"), "succeeded")
    assert payment.occurred_at == datetime(2024, 5, 20, 12, 0, 4, tzinfo=BEIJING) and payment.line == 6
    assert (refund.kind, refund.object_id, refund.attempt_id) == (StatementKind.REFUND, "re_01HZX9", "att_01HZX3K8Q")
    assert (refund.amount, refund.fee, refund.line) == (Money(888, "CNY"), Money(-5, "CNY"), 7)  # fee given back
    assert total == StatementSummary(count=2, payments=Money(8888, "CNY"), refunds=Money(888, "CNY"),
                                     fees=Money(48, "CNY"), settlement=Money(7952, "CNY"))


def test_refund_rows_with_positive_amounts_and_utf8_flagged_names_parse_the_same() -> None:
    positive = REFUND.replace("-8.88,-8.88", "8.88,8.88")
    rows = [r for r in parse_trade_bill([archive({DETAIL_NAME: detail(positive, footer=False)}, gbk_names=False)])]
    assert len(rows) == 1 and isinstance(rows[0], StatementRow) and rows[0].amount == Money(888, "CNY")


def test_columns_are_found_by_name_wherever_they_are() -> None:
    names = HEADER.split(",")
    order = list(reversed(range(len(names))))
    header = ",".join(names[i] for i in order)
    row = ",".join(PAYMENT.split(",")[i] for i in order)
    (payment, *_) = parse_trade_bill([archive({DETAIL_NAME: detail(row, header=header)})])
    assert isinstance(payment, StatementRow) and payment.object_id == "att_01HZX3K8Q" and payment.amount.minor == 8888


def test_optional_currency_and_status_columns() -> None:
    header = HEADER + ",币种,交易状态"
    rows = [PAYMENT + ",USD,成功", REFUND + ",CNY,CLOSED"]
    payment, refund = [r for r in parse_trade_bill([archive({DETAIL_NAME: detail(*rows, header=header, footer=False)})])]
    assert isinstance(payment, StatementRow) and isinstance(refund, StatementRow)
    assert (payment.amount, payment.status) == (Money(8888, "USD"), "succeeded")
    assert refund.status == "closed"


def test_an_empty_day_has_a_header_and_zero_totals() -> None:
    empty = archive({DETAIL_NAME: detail(footer=False) + ["#交易合计：0笔，商家实收共0.00元，商家优惠共0.00元"]})
    assert list(parse_trade_bill([empty])) == [StatementSummary(count=0, payments=Money(0, "CNY"), refunds=None)]


@pytest.mark.parametrize(("row", "reason"), [
    (PAYMENT.replace("88.88,88.88", "88.8x,88.88"), "bad amount"),
    (PAYMENT.replace("88.88,88.88", "88.888,88.88"), "bad amount"),
    (PAYMENT.replace(",交易\t,", ",转账\t,"), "业务类型"),
    (PAYMENT.replace("2024-05-20 12:00:04", "20240520"), "完成时间"),
    ("2088corrupt\t,this row,is,cut short", "4 cells for 25 columns"),
    (PAYMENT.replace("att_01HZX3K8Q\t", "\t"), "商户订单号"),
])
def test_malformed_rows_name_their_line(row: str, reason: str) -> None:
    with pytest.raises(ChannelError, match=rf"业务明细.csv line 7: .*{reason}"):
        list(parse_trade_bill([bill(PAYMENT, row)]))


def test_malformed_files_are_refused_with_a_reason() -> None:
    with pytest.raises(ChannelError, match="line 5: header lacks 订单金额"):
        list(parse_trade_bill([archive({DETAIL_NAME: detail(header=HEADER.replace("订单金额（元）", "金额"))})]))
    with pytest.raises(ChannelError, match="not a ZIP"):
        list(parse_trade_bill([b"PK\x03\x04 truncated"]))
    with pytest.raises(ChannelError, match="no 业务明细"):
        list(parse_trade_bill([archive({"readme.txt": b"x"})]))
    bad_text = detail(PAYMENT)
    raw = ("\r\n".join(bad_text) + "\r\n").encode("gbk").replace("绿茶".encode("gbk"), b"\x81\x20")
    with pytest.raises(ChannelError, match="line 6: not GBK"):
        list(parse_trade_bill([archive({DETAIL_NAME: raw})]))
    with pytest.raises(ChannelError, match="no header"):
        list(parse_trade_bill([archive({DETAIL_NAME: ["#only comments"]})]))


def test_a_damaged_archive_entry_fails_the_crc() -> None:
    stored = archive({DETAIL_NAME: ("\r\n".join(detail(PAYMENT)) + "\r\n").encode("gbk")})
    damaged = bytearray(stored)
    offset = stored.index(b"PK\x03\x04") + 30 + len(DETAIL_NAME.encode("gbk")) + 10
    damaged[offset] ^= 0xFF
    with pytest.raises(ChannelError):
        list(parse_trade_bill([bytes(damaged)]))
    assert len(list(parse_trade_bill([stored]))) == 2  # the undamaged archive: one row and the summary


def test_fetch_asks_for_the_download_url_then_downloads(kit: AlipayKit) -> None:
    zipped = bill(PAYMENT)
    url = "https://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=trade&fileType=csv.zip&downloadFileName=x"
    transport = FakeTransport([
        kit.answer("alipay.data.dataservice.bill.downloadurl.query", {"code": "10000", "bill_download_url": url}),
        HttpResponse(200, {"content-type": "application/zip"}, zipped)])
    adapter = AlipayAdapter(transport)
    fetched = list(adapter.fetch_statement(kit.account(), "2024-05-20"))
    assert b"".join(fetched) == zipped
    ask, download = transport.requests
    sent = dict(parse_qsl(ask.body.decode()))
    assert sent["method"] == "alipay.data.dataservice.bill.downloadurl.query"
    assert json.loads(sent["biz_content"]) == {"bill_type": "trade", "bill_date": "2024-05-20"}
    assert (download.method, download.url) == ("GET", url) and "Authorization" not in download.headers
    items = list(adapter.parse_statement(kit.account(), fetched))
    assert isinstance(items[0], StatementRow) and items[0].object_id == "att_01HZX3K8Q"


def test_a_bill_not_published_yet_is_retryable(kit: AlipayKit) -> None:
    transport = FakeTransport([kit.answer("alipay.data.dataservice.bill.downloadurl.query", {
        "code": "40004", "msg": "Business Failed", "sub_code": "isp.bill_not_exist", "sub_msg": "账单不存在"})])
    with pytest.raises(ChannelError) as caught:
        list(AlipayAdapter(transport).fetch_statement(kit.account(), "2024-05-20"))
    assert caught.value.retryable
    with pytest.raises(InvalidRequest):
        AlipayAdapter(FakeTransport()).fetch_statement(kit.account(), "20240520")


def test_a_production_account_downloads_over_https_only(kit: AlipayKit) -> None:
    transport = FakeTransport([kit.answer("alipay.data.dataservice.bill.downloadurl.query", {
        "code": "10000", "bill_download_url": "http://dwbillcenter.alipay.com/downloadBillFile.resource?x=1"})])
    with pytest.raises(ChannelError, match="HTTPS"):
        AlipayAdapter(transport).fetch_statement(kit.account(), "2024-05-20")
    assert len(transport.requests) == 1  # nothing was downloaded
