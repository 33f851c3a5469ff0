"""Trade bill (业务明细): fetch the ZIP Alipay points to, then parse its GBK CSVs as a stream, by header name.

The archive holds ``<PID>0156_<yyyyMMdd>_业务明细.csv`` (detail) and ``…_业务明细(汇总).csv`` (summary); entry
names are GBK bytes without the ZIP UTF-8 flag. Both files open and close with ``#`` comment lines; the detail
file's closing comments carry the day's totals (``#交易合计：N笔，商家实收共X元…``). Cells of id-like columns end
with a tab. Amounts are yuan; refund rows may be negative, so signs are normalised here
(docs/channels/alipay.md#bill-files).

Streaming: the chunks are spooled (memory up to a bound, then a temporary file: a ZIP is read from its end),
each member is opened as a stream and read line by line, each line decoded on its own, so a day of any size
never sits in memory and a decoding error names its exact line.
"""

from __future__ import annotations

import csv
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO

from chalicelib.channels.alipay.client import AlipayClient, download
from chalicelib.channels.alipay.credentials import AlipayCredentials
from chalicelib.channels.alipay.states import ALIPAY_TIME_FORMAT, BEIJING
from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary, Transport
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

BILL_METHOD = "alipay.data.dataservice.bill.downloadurl.query"
NOT_PUBLISHED_SUB_CODES = frozenset({"isp.bill_not_exist", "ACQ.BILL_NOT_EXIST"})
CHUNK_BYTES = 64 * 1024
SPOOL_BYTES_MAX = 8 * 1024 * 1024
ENCODING = "gb18030"  # a superset of GBK: every GBK file decodes the same
DETAIL_MARK = "业务明细"
SUMMARY_MARK = "汇总"
_ZIP_UTF8_FLAG = 0x800

# Detail columns the parser needs; every other column is ignored wherever it is.
TRADE_NO, OUT_TRADE_NO, BIZ_TYPE, FINISHED_AT = "支付宝交易号", "商户订单号", "业务类型", "完成时间"
ORDER_AMOUNT, RECEIVED, REFUND_NO, SERVICE_FEE = "订单金额（元）", "商家实收（元）", "退款批次号/请求号", "服务费（元）"
# Not in Alipay's CNY trade bill; read when present (cross-border bills carry a currency, and the sandbox
# adds a status column when a statement fault changes a row's status).
CURRENCY, STATUS = "币种", "交易状态"
REQUIRED_COLUMNS = (TRADE_NO, OUT_TRADE_NO, BIZ_TYPE, FINISHED_AT, ORDER_AMOUNT)
KIND_BY_BIZ_TYPE = {"交易": StatementKind.PAYMENT, "退款": StatementKind.REFUND}
SUCCESS_WORDS = frozenset({"", "成功", "交易成功", "退款成功", "TRADE_SUCCESS", "TRADE_FINISHED", "REFUND_SUCCESS"})
SUMMARY_TOTAL_LABEL = "合计"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # fromisoformat alone would take 20240520 too
_FOOTER = re.compile(r"^#(?P<what>交易|退款)合计：(?P<count>\d+)笔，[^0-9\-]*(?P<amount>-?\d+(?:\.\d+)?)元")


def fetch_trade_bill(client: AlipayClient, transport: Transport, credentials: AlipayCredentials,
                     day: str) -> Iterator[bytes]:
    """The ZIP of ``day`` (YYYY-MM-DD) in chunks. Not published yet -> ``ChannelError(retryable=True)``."""
    try:
        if not _DAY.match(day):
            raise ValueError(day)
        date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidRequest("bill day must be YYYY-MM-DD", param="day") from exc
    try:
        answer = client.call(credentials, BILL_METHOD, {"bill_type": "trade", "bill_date": day})
    except ChannelError as exc:
        if exc.channel_code in NOT_PUBLISHED_SUB_CODES:
            raise ChannelError(f"Alipay bill of {day} is not published yet", channel_code=exc.channel_code,
                               retryable=True) from exc
        raise
    url = answer.get("bill_download_url")
    if not isinstance(url, str) or not url:
        raise ChannelError("Alipay bill answer lacks bill_download_url", channel_code="MALFORMED_ANSWER")
    if credentials.gateway_url.startswith("https://") and not url.startswith("https://"):
        raise ChannelError("Alipay bill download URL is not HTTPS", channel_code="MALFORMED_ANSWER")
    # The file is not signed; the ZIP's CRC-32 per entry is checked while reading (integrity, not authenticity:
    # the URL itself came from a signed answer).
    data = download(transport, url)
    return (data[offset : offset + CHUNK_BYTES] for offset in range(0, max(len(data), 1), CHUNK_BYTES))


def entry_name(info: zipfile.ZipInfo) -> str:
    """Alipay writes GBK names without the UTF-8 flag, which Python reads as cp437: undo that."""
    if info.flag_bits & _ZIP_UTF8_FLAG:
        return info.filename
    try:
        return info.filename.encode("cp437").decode(ENCODING)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


@dataclass
class _Totals:
    payment_count: int | None = None
    payment_amount: Money | None = None
    refund_count: int | None = None
    refund_amount: Money | None = None
    fees: Money | None = None
    settlement: Money | None = None
    trades_in_summary: int | None = None
    refunds_in_summary: int | None = None

    def summary(self) -> StatementSummary | None:
        if self.payment_count is not None or self.refund_count is not None:
            count: int | None = (self.payment_count or 0) + (self.refund_count or 0)
        elif self.trades_in_summary is not None:
            count = self.trades_in_summary + (self.refunds_in_summary or 0)
        else:
            count = None
        if count is None and self.fees is None and self.settlement is None:
            return None
        return StatementSummary(count=count, payments=self.payment_amount, refunds=self.refund_amount,
                                fees=self.fees, settlement=self.settlement)


class _File:
    """One CSV entry read line by line; ``fail`` names the entry and the 1-based line."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        self.archive, self.info, self.name = archive, info, entry_name(info)
        self.number = 0

    def fail(self, reason: str) -> ChannelError:
        return ChannelError(f"Alipay bill {self.name} line {self.number}: {reason}", channel_code="MALFORMED_STATEMENT")

    def lines(self) -> Iterator[str]:
        try:
            with self.archive.open(self.info) as stream:
                for raw in stream:
                    self.number += 1
                    try:
                        line = raw.decode(ENCODING)
                    except UnicodeDecodeError:
                        raise self.fail("not GBK text") from None
                    yield line.rstrip("\r\n")
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise self.fail(f"the archive is damaged ({exc})") from None

    def table(self) -> Iterator[dict[str, str]]:
        """Rows of the CSV after its header (first non-comment line), keyed by header name; comment lines are
        passed to ``comment`` so the footer totals can be read."""
        header: list[str] | None = None
        for line in self.lines():
            if not line.strip():
                continue
            if line.startswith("#"):
                self.comment(line)
                continue
            try:
                cells = [cell.strip() for cell in next(csv.reader([line]))]
            except csv.Error as exc:
                raise self.fail(f"not CSV ({exc})") from None
            if header is None:
                header = cells
                self.check_header(header)
                continue
            while len(cells) > len(header) and cells[-1] == "":
                cells.pop()
            if len(cells) != len(header):
                raise self.fail(f"{len(cells)} cells for {len(header)} columns")
            yield dict(zip(header, cells, strict=True))
        if header is None:
            raise self.fail("no header line")

    def comment(self, line: str) -> None:  # overridden where comments carry data
        return

    def check_header(self, header: list[str]) -> None:
        return


class _Detail(_File):
    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, totals: _Totals) -> None:
        super().__init__(archive, info)
        self.totals = totals

    def check_header(self, header: list[str]) -> None:
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise self.fail(f"header lacks {', '.join(missing)}")

    def comment(self, line: str) -> None:
        match = _FOOTER.match(line.strip())
        if match is None:
            return
        count, amount = int(match["count"]), _amount(match["amount"], "CNY", self)
        if match["what"] == "交易":
            self.totals.payment_count, self.totals.payment_amount = count, _absolute(amount)
        else:
            self.totals.refund_count, self.totals.refund_amount = count, _absolute(amount)

    def rows(self) -> Iterator[StatementRow]:
        for row in self.table():
            yield self.statement_row(row)

    def statement_row(self, row: Mapping[str, str]) -> StatementRow:
        kind = KIND_BY_BIZ_TYPE.get(row[BIZ_TYPE])
        if kind is None:
            raise self.fail(f"unknown 业务类型 {row[BIZ_TYPE]!r}")
        currency = row.get(CURRENCY) or "CNY"
        amount_text = row[ORDER_AMOUNT] or row.get(RECEIVED, "")
        amount = _absolute(_amount(amount_text, currency, self))
        fee = _amount(row[SERVICE_FEE], currency, self) if row.get(SERVICE_FEE) else None
        try:
            occurred_at = datetime.strptime(row[FINISHED_AT], ALIPAY_TIME_FORMAT).replace(tzinfo=BEIJING)
        except ValueError:
            raise self.fail(f"完成时间 {row[FINISHED_AT]!r} is not yyyy-MM-dd HH:mm:ss") from None
        status_word = row.get(STATUS, "")
        status = "succeeded" if status_word in SUCCESS_WORDS else status_word.lower()
        if kind is StatementKind.PAYMENT:
            if not row[OUT_TRADE_NO]:
                raise self.fail("a 交易 row without 商户订单号")
            # A fee is what the channel charged (positive on a payment, returned - negative - on a refund),
            # whichever sign the file uses.
            return StatementRow(kind=kind, object_id=row[OUT_TRADE_NO], channel_ref=row[TRADE_NO] or None,
                                amount=amount, status=status, occurred_at=occurred_at,
                                fee=_absolute(fee) if fee is not None else None, line=self.number)
        return StatementRow(kind=kind, object_id=row.get(REFUND_NO, ""), channel_ref=row[TRADE_NO] or None,
                            amount=amount, status=status, occurred_at=occurred_at,
                            fee=Money(-_absolute(fee).minor, fee.currency) if fee is not None else None,
                            attempt_id=row[OUT_TRADE_NO] or None, line=self.number)


class _Summary(_File):
    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, totals: _Totals) -> None:
        super().__init__(archive, info)
        self.totals = totals

    def read(self) -> None:
        for row in self.table():
            if next(iter(row.values()), "") != SUMMARY_TOTAL_LABEL:
                continue  # one row per store; the 合计 row holds the day's totals
            try:
                self.totals.trades_in_summary = int(row.get("交易订单总笔数") or 0)
                self.totals.refunds_in_summary = int(row.get("退款订单总笔数") or 0)
            except ValueError:
                raise self.fail("order counts are not integers") from None
            if row.get(SERVICE_FEE):
                # The file shows fees as money leaving the merchant (negative); the summary reports them charged.
                charged = _amount(row[SERVICE_FEE], "CNY", self)
                self.totals.fees = Money(-charged.minor, "CNY")
            if row.get("实收净额（元）"):
                self.totals.settlement = _amount(row["实收净额（元）"], "CNY", self)


def _amount(text: str, currency: str, source: _File) -> Money:
    try:
        return Money.from_decimal_string(text.strip(), currency)
    except ValueError as exc:
        raise source.fail(f"bad amount {text!r}: {exc}") from None


def _absolute(amount: Money) -> Money:
    return Money(abs(amount.minor), amount.currency)


def _members(archive: zipfile.ZipFile) -> tuple[zipfile.ZipInfo, zipfile.ZipInfo | None]:
    detail = summary = None
    for info in archive.infolist():
        name = entry_name(info)
        if info.is_dir() or not name.lower().endswith(".csv") or DETAIL_MARK not in name:
            continue
        if SUMMARY_MARK in name:
            summary = summary or info
        else:
            detail = detail or info
    if detail is None:
        raise ChannelError("Alipay bill archive has no 业务明细 file", channel_code="MALFORMED_STATEMENT")
    return detail, summary


def _spool(chunks: Iterable[bytes]) -> IO[bytes]:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES_MAX)  # noqa: SIM115 - closed by the caller
    for chunk in chunks:
        spool.write(chunk)
    spool.seek(0)
    return spool


def parse_trade_bill(chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
    """Every detail row as a ``StatementRow``, then at most one ``StatementSummary`` (footer + 合计 row)."""
    with _spool(chunks) as spool:
        try:
            archive = zipfile.ZipFile(spool)
        except zipfile.BadZipFile as exc:
            raise ChannelError(f"Alipay bill is not a ZIP archive: {exc}", channel_code="MALFORMED_STATEMENT") from None
        with archive:
            detail_info, summary_info = _members(archive)
            totals = _Totals()
            yield from _Detail(archive, detail_info, totals).rows()
            if summary_info is not None:
                _Summary(archive, summary_info, totals).read()
            summary = totals.summary()
            if summary is not None:
                yield summary
