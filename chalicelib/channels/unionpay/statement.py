"""Reconciliation files: ``fileTransfer`` download, then the fixed-width GBK files, streamed
(docs/channels/unionpay.md#file-layout).

The answer's ``fileContent`` is base64 of a zlib-compressed ZIP; the answer is signed, so the signature
vouches for the file, and the ZIP's own CRCs are checked on reading. Inside are ``INN<yymmdd><nn>ZM_<merId>``
(the day's cleared transactions) and ``INN<yymmdd><nn>ZME_<merId>`` (transactions in error or adjustment).
Fields are counted in *bytes* of GBK with one separator byte (a space) between them.

The byte widths are UnionPay's (from its demo ``parseZMFile``); the *meaning* of each column is our own
modelling, because the file specification (《全渠道平台接入接口规范 第3部分 文件接口》) was not available.
``ZM_COLUMNS``/``ZME_COLUMNS`` name every column; docs/channels/unionpay.md says which ones the hub reads.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time
from typing import IO

from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary
from chalicelib.channels.unionpay import messages
from chalicelib.channels.unionpay.client import AcpClient, describe
from chalicelib.channels.unionpay.credentials import UnionPayCredentials
from chalicelib.channels.unionpay.order_ids import BadOrderId, from_order_id
from chalicelib.channels.unionpay.states import (
    BEIJING,
    CONSUME_TXN_TYPE,
    CURRENCY_BY_NUMERIC,
    REFUND_TXN_TYPE,
    SUCCESS,
    Answer,
    classify,
    month_day_time,
)
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

CHUNK_BYTES = 64 * 1024
SPOOL_BYTES_MAX = 8 * 1024 * 1024  # a bigger archive spills to a temporary file instead of memory
FILE_NOT_READY = "98"  # UnionPay: the file does not exist (yet)

ZM_COLUMNS: tuple[tuple[str, int], ...] = (
    ("trade_code", 3), ("acquirer_code", 11), ("forwarder_code", 11), ("trace_no", 6), ("trace_time", 10),
    ("masked_card", 19), ("amount", 12), ("mcc", 4), ("terminal_type", 2), ("query_id", 21), ("old_pay_type", 2),
    ("order_id", 32), ("card_type", 2), ("orig_trace_no", 6), ("orig_trace_time", 10), ("fee", 13),
    ("settle_amount", 13), ("pay_type", 4), ("group_merchant_id", 15), ("txn_type", 2), ("txn_sub_type", 2),
    ("biz_type", 6), ("account_type", 2), ("bill_type", 4), ("bill_no", 32), ("interaction", 1),
    ("orig_query_id", 21), ("merchant_id", 15), ("split_mode", 1), ("sub_merchant_id", 15),
    ("sub_merchant_name", 32), ("sub_merchant_amount", 13), ("net_amount", 13), ("terminal_id", 8),
    ("merchant_reserved", 32), ("discount", 13), ("invoice_amount", 13), ("instalment_fee", 12),
    ("instalments", 2), ("medium", 1), ("orig_order_id", 32), ("reserved", 98),
)
ZME_COLUMNS: tuple[tuple[str, int], ...] = (
    ("trade_code", 3), ("acquirer_code", 11), ("forwarder_code", 11), ("trace_no", 6), ("trace_time", 10),
    ("masked_card", 19), ("amount", 12), ("mcc", 4), ("terminal_type", 2), ("txn_type", 2), ("orig_trace_no", 6),
    ("orig_trace_time", 10), ("error_reason", 4), ("error_amount", 12), ("fee", 13), ("settle_amount", 13),
    ("merchant_id", 15), ("sub_merchant_id", 15), ("debit_credit", 1), ("terminal_id", 12), ("txn_sub_type", 2),
    ("reserved", 135),
)
ZM_REQUIRED_COLUMNS = 28  # through merchant_id: what follows (sub-merchant, notes, refunds' original order) may be blank
# Inside ZME's 135-byte reserved column (our model): orderId, queryId, currency, original orderId.
ZME_RESERVED: tuple[tuple[str, int], ...] = (("order_id", 32), ("query_id", 21), ("currency", 3), ("orig_order_id", 32))
# ZME error reasons (our model): 4 ASCII characters -> the status the hub sees.
ZME_STATUS_BY_REASON = {"FAIL": "failed", "PEND": "pending", "PROC": "processing", "CLSD": "closed", "RVSD": "reversed",
                        "RVKD": "revoked", "RFND": "refunded"}
_MEMBER = re.compile(r"^(?:.*/)?INN(?P<date>\d{6})\d{2}(?P<kind>ZME|ZM)_(?P<mer_id>[0-9A-Za-z]+)$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SIGNED_AMOUNT = re.compile(r"^[CD][0-9]{12}$")


def settle_date(day: str) -> str:
    try:
        if not _DAY.match(day):
            raise ValueError(day)
        return date.fromisoformat(day).strftime("%m%d")
    except ValueError as exc:
        raise InvalidRequest("statement day must be YYYY-MM-DD", param="day") from exc


def fetch_files(client: AcpClient, credentials: UnionPayCredentials, day: str, now: datetime) -> Iterator[bytes]:
    """Download ``day``'s archive; yield the ZIP in chunks once base64, zlib and ZIP CRCs all check out."""
    fields = messages.file_download(credentials.merchant_id, settle_date(day), now)
    answer = client.call(credentials, credentials.file_download_url, fields)
    code = answer.get("respCode", "")
    if code != SUCCESS:
        retryable = code == FILE_NOT_READY or classify(code) is Answer.UNKNOWN
        raise ChannelError(f"UnionPay file download for {day}: {describe(answer)}", channel_code=code,
                           retryable=retryable)
    try:
        archive = zlib.decompress(base64.b64decode(answer.get("fileContent", ""), validate=True))
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise ChannelError(f"UnionPay file for {day} is not base64 of zlib data", retryable=True) from exc
    _check_archive(archive, day)
    return (archive[offset : offset + CHUNK_BYTES] for offset in range(0, len(archive), CHUNK_BYTES))


def _check_archive(archive: bytes, day: str) -> None:
    expected = date.fromisoformat(day).strftime("%y%m%d")
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            if bundle.testzip() is not None:
                raise ChannelError(f"UnionPay file for {day} fails its ZIP CRC check", retryable=True)
            dates = {match.group("date") for name in bundle.namelist() if (match := _MEMBER.match(name))}
    except zipfile.BadZipFile as exc:
        raise ChannelError(f"UnionPay file for {day} is not a ZIP archive", retryable=True) from exc
    if dates != {expected}:
        raise ChannelError(f"UnionPay file for {day} holds files for {sorted(dates) or 'no day'}")


# -- parsing ---------------------------------------------------------------------------------------------


def _spool(chunks: Iterable[bytes]) -> IO[bytes]:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES_MAX)  # closed by the caller's with-block
    for chunk in chunks:
        spool.write(chunk)
    spool.seek(0)
    return spool


def parse_files(chunks: Iterable[bytes], merchant_id: str) -> Iterator[StatementRow | StatementSummary]:
    """Yield a ``StatementRow`` per ZM line (succeeded) and per ZME line (status from its error reason).

    There is no summary: neither file carries totals. Any malformed line raises ``ChannelError`` naming the
    file and line.
    """
    with _spool(chunks) as spool:
        try:
            bundle = zipfile.ZipFile(spool)
        except zipfile.BadZipFile as exc:
            raise ChannelError("UnionPay statement is not a ZIP archive") from exc
        with bundle:
            members = _members(bundle.namelist(), merchant_id)
            for kind in ("ZM", "ZME"):
                name, day = members[kind]
                with bundle.open(name) as stream:
                    yield from _parse_member(stream, name, kind, day)


def _members(names: Sequence[str], merchant_id: str) -> dict[str, tuple[str, date]]:
    found: dict[str, tuple[str, date]] = {}
    for name in names:
        match = _MEMBER.match(name)
        if match is None:
            continue
        if match.group("mer_id") != merchant_id:
            raise ChannelError(f"UnionPay statement file {name} is for another merchant")
        kind = match.group("kind")
        if kind in found:
            raise ChannelError(f"UnionPay statement has two {kind} files")
        try:
            day = datetime.strptime(match.group("date"), "%y%m%d").date()
        except ValueError as exc:
            raise ChannelError(f"UnionPay statement file {name} has no valid date") from exc
        found[kind] = (name, day)
    missing = [kind for kind in ("ZM", "ZME") if kind not in found]
    if missing:
        raise ChannelError(f"UnionPay statement lacks the {' and '.join(missing)} file")
    return found


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(stream, start=1):
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield number, line


def split_fixed(line: bytes, columns: Sequence[tuple[str, int]], *, separator: bool = True,
                required: int | None = None) -> dict[str, str]:
    """Cut one line by byte widths into GBK-decoded, unstripped columns. With ``separator`` the byte between
    two columns must be a space, so a shifted column is caught. Writers trim trailing blanks, so a line may
    end early, but not before the end of its first ``required`` columns (default: all but the last)."""
    gap = 1 if separator else 0
    expected = sum(width for _, width in columns) + gap * (len(columns) - 1)
    count = len(columns) - 1 if required is None else required
    minimum = sum(width for _, width in columns[:count]) + gap * max(count - 1, 0)
    if len(line) > expected or len(line) < minimum:
        raise ValueError(f"{len(line)} bytes where {expected} are expected")
    line = line.ljust(expected, b" ")
    fields: dict[str, str] = {}
    position = 0
    for index, (name, width) in enumerate(columns):
        if gap and index and line[position - 1 : position] != b" ":
            raise ValueError(f"no separator before column {name} (byte {position})")
        try:
            fields[name] = line[position : position + width].decode("gbk")
        except UnicodeDecodeError as exc:
            raise ValueError(f"column {name} is not GBK text") from exc
        position += width + gap
    return fields


def _parse_member(stream: IO[bytes], name: str, kind: str, day: date) -> Iterator[StatementRow]:
    near = datetime.combine(day, time(12), tzinfo=BEIJING)
    for number, line in _lines(stream):
        try:
            if kind == "ZM":
                fields = split_fixed(line, ZM_COLUMNS, required=ZM_REQUIRED_COLUMNS)
                fields["currency"] = fields["reserved"][:3]
            else:
                fields = split_fixed(line, ZME_COLUMNS, required=len(ZME_COLUMNS) - 1)
                reserved = fields["reserved"].encode("gbk")
                fields.update(split_fixed(reserved[:88], ZME_RESERVED, separator=False))
            yield _row({key: value.strip() for key, value in fields.items()}, kind, near, number)
        except ValueError as exc:
            raise ChannelError(f"UnionPay statement {name} line {number}: {exc}") from None


def _signed_fen(text: str, column: str) -> int:
    if not _SIGNED_AMOUNT.match(text):
        raise ValueError(f"column {column} must be C or D and 12 digits")
    value = int(text[1:])
    return value if text[0] == "D" else -value


def _hub_id(order_id: str) -> str:
    # A row for an order number we did not make (another system on the same merId) keeps its raw number.
    try:
        return from_order_id(order_id)
    except BadOrderId:
        return order_id


def _row(fields: dict[str, str], kind: str, near: datetime, number: int) -> StatementRow:
    txn_type = fields["txn_type"]
    if txn_type not in (CONSUME_TXN_TYPE, REFUND_TXN_TYPE):
        raise ValueError(f"unsupported txnType {txn_type!r}")
    currency = CURRENCY_BY_NUMERIC.get(fields["currency"] or "156")
    if currency is None:
        raise ValueError(f"unknown currency code {fields['currency']!r}")
    if not fields["amount"].isdigit():
        raise ValueError("column amount must be digits of fen")
    if not fields["order_id"]:
        raise ValueError("no orderId")
    if kind == "ZM":
        status = "succeeded"
    else:
        reason = fields["error_reason"]
        status = ZME_STATUS_BY_REASON.get(reason, reason.lower() or "unknown")
    is_refund = txn_type == REFUND_TXN_TYPE
    return StatementRow(
        kind=StatementKind.REFUND if is_refund else StatementKind.PAYMENT,
        object_id=_hub_id(fields["order_id"]),
        channel_ref=fields["query_id"] or None,
        amount=Money(int(fields["amount"]), currency),
        status=status,
        occurred_at=month_day_time(fields["trace_time"], near),
        fee=Money(_signed_fen(fields["fee"], "fee"), currency) if fields["fee"] else None,
        attempt_id=_hub_id(fields["orig_order_id"]) if is_refund and fields["orig_order_id"] else None,
        line=number,
    )
