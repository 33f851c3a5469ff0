"""The bank's daily e-CNY reconciliation file (对账文件): fetch with its SM3 check, parse as a stream.

The file is GBK text, ``|``-separated, CRLF lines (format in docs/channels/ecny.md)::

    ECNYRECON|1.0|<merchant_id>|<bill date yyyyMMdd>|<generated yyyyMMddHHmmss>      file header
    交易类型|商户订单号|...                                                          column names
    PAY|att_...|...                                                                  detail rows
    合计|总笔数=3|支付笔数=2|支付金额=...|...|SM3=<hex>                               trailer

The trailer's SM3 covers every byte before the trailer line; the apply answer (signed) carries the SM3 of the
whole file. Columns are found by name, so the bank may add or reorder columns without breaking us. A row is
yielded as soon as it is read; a digest or count mismatch found at the trailer still fails the parse.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime

from cryptography.hazmat.primitives import hashes

from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary
from chalicelib.channels.ecny.client import ECNYClient
from chalicelib.channels.ecny.credentials import ECNYCredentials
from chalicelib.channels.ecny.states import BEIJING, TIME_FORMAT
from chalicelib.crypto.sm import sm3_digest
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

APPLY_PATH = "/ecny/v1/statements/apply"
DOWNLOAD_PATH = "/ecny/v1/statements/download"
CHUNK_BYTES = 64 * 1024
FILE_TAG, FILE_VERSION = "ECNYRECON", "1.0"
ENCODING = "gbk"
TRAILER_TAG = "合计"
REQUIRED_COLUMNS = ("交易类型", "商户订单号", "银行订单号", "商户退款单号", "银行退款单号", "交易金额", "手续费", "币种",
                    "交易状态", "入账时间")
_KIND = {"PAY": StatementKind.PAYMENT, "REFUND": StatementKind.REFUND}
_AMOUNT = re.compile(r"^-?(0|[1-9][0-9]{0,12})\.[0-9]{2}$")
_SM3_HEX = re.compile(r"^[0-9a-f]{64}$")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def fetch(client: ECNYClient, credentials: ECNYCredentials, day: str) -> Iterator[bytes]:
    """Apply for the file of ``day`` (YYYY-MM-DD, Beijing), download it, check size and SM3, return chunks."""
    try:
        bill_date = date.fromisoformat(day) if _DAY.match(day) else None
    except ValueError:
        bill_date = None
    if bill_date is None:
        raise InvalidRequest("statement day must be YYYY-MM-DD", param="day")
    answer = client.call(credentials, APPLY_PATH, {"merchant_id": credentials.merchant_id,
                                                   "bill_date": bill_date.strftime("%Y%m%d")})
    token, digest, size = answer.get("download_token"), answer.get("digest"), answer.get("file_size")
    if not isinstance(token, str) or not isinstance(digest, str) or not isinstance(size, int):
        raise ChannelError("statement apply answer lacks download_token, digest or file_size")
    if answer.get("digest_alg", "SM3") != "SM3":
        raise ChannelError("statement uses an unsupported digest_alg")
    data = client.download(credentials, DOWNLOAD_PATH, {"merchant_id": credentials.merchant_id,
                                                        "download_token": token})
    if len(data) != size or not hmac.compare_digest(sm3_digest(data).hex(), digest.strip().lower()):
        raise ChannelError("statement file does not match the size and SM3 digest the bank signed", retryable=True)
    return (data[offset:offset + CHUNK_BYTES] for offset in range(0, max(len(data), 1), CHUNK_BYTES))


def _raw_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines with their terminators kept (the trailer digest covers the exact bytes)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw + b"\n"
    if pending:
        yield pending


def _fail(number: int, reason: str) -> ChannelError:
    return ChannelError(f"e-CNY statement line {number}: {reason}")


def _money(text: str, currency: str, name: str) -> Money:
    if not _AMOUNT.match(text):
        raise ValueError(f"{name} {text[:20]!r} is not a yuan amount with two decimals")
    return Money.from_decimal_string(text, currency)


def _time(text: str, name: str) -> datetime:
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        raise ValueError(f"{name} {text[:20]!r} is not yyyyMMddHHmmss") from None


def _detail(row: dict[str, str], number: int) -> StatementRow:
    kind = _KIND.get(row["交易类型"])
    if kind is None:
        raise ValueError(f"unknown 交易类型 {row['交易类型'][:20]!r}")
    currency = row["币种"]
    is_refund = kind is StatementKind.REFUND
    object_id = row["商户退款单号"] if is_refund else row["商户订单号"]
    if not object_id:
        raise ValueError("row lacks its merchant order/refund number")
    status = row["交易状态"]
    return StatementRow(
        kind=kind,
        object_id=object_id,
        channel_ref=(row["银行退款单号"] if is_refund else row["银行订单号"]) or None,
        amount=_money(row["交易金额"], currency, "交易金额"),
        status="succeeded" if status == "SUCCESS" else status.lower(),
        occurred_at=_time(row["入账时间"], "入账时间"),
        fee=_money(row["手续费"], currency, "手续费") if row["手续费"] else None,
        attempt_id=(row["商户订单号"] or None) if is_refund else None,
        line=number,
    )


def _summary(cells: list[str]) -> tuple[StatementSummary, int, str]:
    fields: dict[str, str] = {}
    for cell in cells[1:]:
        name, sep, value = cell.partition("=")
        if not sep or name in fields:
            raise ValueError(f"trailer cell {cell[:30]!r} is not a unique name=value")
        fields[name] = value
    missing = [n for n in ("总笔数", "支付金额", "退款金额", "手续费", "结算金额", "SM3") if n not in fields]
    if missing:
        raise ValueError(f"trailer lacks {', '.join(missing)}")
    if not fields["总笔数"].isdigit():
        raise ValueError("trailer 总笔数 is not a count")
    count = int(fields["总笔数"])
    summary = StatementSummary(
        count=count,
        payments=_money(fields["支付金额"], "CNY", "支付金额"),
        refunds=_money(fields["退款金额"], "CNY", "退款金额"),
        fees=_money(fields["手续费"], "CNY", "手续费"),
        settlement=_money(fields["结算金额"], "CNY", "结算金额"),
    )
    digest = fields["SM3"].lower()
    if not _SM3_HEX.match(digest):
        raise ValueError("trailer SM3 is not 64 hex digits")
    return summary, count, digest


def _check_file_header(cells: list[str], merchant_id: str) -> None:
    if len(cells) < 4 or cells[0] != FILE_TAG:
        raise ValueError(f"first line is not an {FILE_TAG} file header")
    if cells[1] != FILE_VERSION:
        raise ValueError(f"unsupported file version {cells[1][:10]!r}")
    if cells[2] != merchant_id:
        raise ValueError("file belongs to another merchant")


def parse(chunks: Iterable[bytes], merchant_id: str) -> Iterator[StatementRow | StatementSummary]:
    digest = hashes.Hash(hashes.SM3())
    columns: list[str] | None = None
    rows = 0
    number = 0
    trailer: tuple[StatementSummary, int, str] | None = None
    trailer_line = 0
    for number, raw in enumerate(_raw_lines(chunks), start=1):
        try:
            line = raw.decode(ENCODING).rstrip("\r\n")
        except UnicodeDecodeError:
            raise _fail(number, f"not valid {ENCODING.upper()} text") from None
        if trailer is not None:
            if line.strip():
                raise _fail(number, "content after the trailer")
            continue
        cells = line.split("|")
        try:
            if number == 1:
                _check_file_header(cells, merchant_id)
            elif cells[0] == TRAILER_TAG:
                trailer, trailer_line = _summary(cells), number
                continue  # the trailer is not covered by its own digest
            elif number == 2:
                columns = cells
                missing = [c for c in REQUIRED_COLUMNS if c not in columns]
                if missing or len(set(columns)) != len(columns):
                    raise ValueError(f"column header lacks {', '.join(missing)} or repeats a name")
            else:
                assert columns is not None
                if len(cells) != len(columns):
                    raise ValueError(f"{len(cells)} cells for {len(columns)} columns")
                rows += 1
                yield _detail(dict(zip(columns, cells, strict=True)), number)
        except ValueError as exc:
            raise _fail(number, str(exc)) from None
        digest.update(raw)
    if trailer is None:
        raise _fail(number + 1, "file ends without its 合计 trailer (truncated?)")
    summary, count, stated_digest = trailer
    if count != rows:
        raise _fail(trailer_line, f"trailer counts {count} rows, the file has {rows}")
    if not hmac.compare_digest(digest.finalize().hex(), stated_digest):
        raise _fail(trailer_line, "SM3 digest in the trailer does not match the file content")
    yield summary
