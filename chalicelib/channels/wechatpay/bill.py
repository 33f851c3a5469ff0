"""Trade bill (交易账单): fetch with a SHA-1 check, then parse as a stream by header name.

Cells start with a backtick (so Excel keeps long numbers); amounts are yuan strings, fees 5 decimals.
Parsing goes by header name because column sets differ by bill type and some merchants get a legacy layout.
Rows come out as the hub's normalised ``StatementRow`` / ``StatementSummary``:

- ``交易状态`` SUCCESS: a payment (``商户订单号`` = our attempt id, ``应结订单金额`` or legacy ``总金额``);
  REFUND: a refund (``商户退款单号`` = our refund id, ``退款金额``, status from ``退款状态`` as of the bill's
  generation); REVOKED and anything else: a payment row whose status is that word, lower-cased.
- Fees are stated to 1/1000 fen (5 yuan decimals); ``StatementRow.fee`` is integer minor units, so a fee is
  rounded half up to the fen here, at the channel edge. WeChat deducts whole fen at settlement.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit

from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary
from chalicelib.channels.wechatpay.client import WeChatPayClient
from chalicelib.channels.wechatpay.credentials import WeChatCredentials
from chalicelib.channels.wechatpay.orders import BEIJING
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

CHUNK_BYTES = 64 * 1024
# WeChat answers 400 NO_STATEMENT_EXIST for a day without any movement: an empty statement, not an error.
NO_STATEMENT_CODES = frozenset({"NO_STATEMENT_EXIST"})
# The bill is generated after 09:00 Beijing for the previous day; before that WeChat says it is being made.
NOT_READY_CODES = frozenset({"STATEMENT_CREATING"})
_SUMMARY_FIRST_COLUMN = "总交易单数"


def fetch_trade_bill(client: WeChatPayClient, credentials: WeChatCredentials, day: str) -> Iterator[bytes]:
    """Download the ALL bill of ``day`` (YYYY-MM-DD), check its SHA-1, return it in chunks.

    The shared ``Transport`` hands back whole bodies, so the file is in memory here for the hash check;
    the run streams these chunks to S3 and parses them back from there.
    """
    try:
        date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidRequest("bill day must be YYYY-MM-DD", param="day") from exc
    query = urlencode({"bill_date": day, "bill_type": "ALL"})
    try:
        answer = client.call_json(credentials, "GET", f"/v3/bill/tradebill?{query}")
    except ChannelError as exc:
        if exc.channel_code in NO_STATEMENT_CODES:
            return iter(())
        if exc.channel_code in NOT_READY_CODES:
            raise ChannelError(f"trade bill of {day} is not ready yet", channel_code=exc.channel_code,
                               retryable=True) from exc
        raise
    download_url, hash_value = answer.get("download_url"), answer.get("hash_value")
    if not isinstance(download_url, str) or not isinstance(hash_value, str):
        raise ChannelError("trade bill answer lacks download_url or hash_value")
    if str(answer.get("hash_type", "SHA1")).upper() != "SHA1":
        raise ChannelError("trade bill uses an unsupported hash_type")
    # Keep only path + query: our signed Authorization header goes to the configured API host, never elsewhere.
    parts = urlsplit(download_url)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    # The file itself is not signed by WeChat; the SHA-1 from the signed answer is what vouches for it
    # (WeChat picks SHA-1; against accidental corruption plus a signed digest it is adequate).
    data = client.call(credentials, "GET", path_and_query, verify=False).body
    if not hmac.compare_digest(hashlib.sha1(data, usedforsecurity=False).hexdigest(), hash_value.strip().lower()):
        raise ChannelError("trade bill SHA-1 does not match hash_value", retryable=True)
    return (data[offset : offset + CHUNK_BYTES] for offset in range(0, max(len(data), 1), CHUNK_BYTES))


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode a possibly gzip-compressed UTF-8 stream (BOM, CRLF or LF) into lines without loading it whole."""
    decompressor: Any = None
    pending, first = b"", True
    for chunk in chunks:
        if first and chunk:
            first = False
            if chunk[:2] == b"\x1f\x8b":
                decompressor = zlib.decompressobj(wbits=31)
        pending += decompressor.decompress(chunk) if decompressor else chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield _decoded(raw)
    if decompressor:
        pending += decompressor.flush()
    for raw in pending.split(b"\n"):
        if raw.strip():
            yield _decoded(raw)


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason})") from exc


def _cells(line: str) -> list[str]:
    # Split on ",`" rather than "," so a comma inside a product name does not shift the columns.
    return line[1:].split(",`") if line.startswith("`") else line.split(",")


def _currency(row: dict[str, str]) -> str:
    return row.get("货币种类") or "CNY"


def _money(row: dict[str, str], *names: str) -> Money | None:
    for name in names:
        if row.get(name):
            return Money.from_decimal_string(row[name], _currency(row))
    return None


def _required_money(row: dict[str, str], *names: str) -> Money:
    found = _money(row, *names)
    if found is None:
        raise ValueError(f"no amount in {' or '.join(names)}")
    return found


def _fee(row: dict[str, str], name: str, currency: str) -> Money | None:
    text = row.get(name)
    if not text:
        return None
    try:
        yuan = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"bad fee {text!r}") from exc
    if not yuan.is_finite():
        raise ValueError(f"bad fee {text!r}")
    return Money(int(yuan.scaleb(2).quantize(Decimal(1), rounding=ROUND_HALF_UP)), currency)


def _refund_ref(row: dict[str, str], name: str) -> str | None:
    # Payment rows carry "0" in the refund-number columns, not an empty cell.
    value = row.get(name, "")
    return value if value not in ("", "0") else None


def _status(word: str) -> str:
    return "succeeded" if word == "SUCCESS" else word.lower()


def _detail(row: dict[str, str], line: int) -> StatementRow:
    occurred_at = datetime.strptime(row["交易时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    trade_state = row.get("交易状态", "")
    if trade_state == "REFUND":
        refund_id = _refund_ref(row, "商户退款单号")
        if refund_id is None:
            raise ValueError("refund row without 商户退款单号")
        amount = _required_money(row, "退款金额")
        return StatementRow(
            kind=StatementKind.REFUND, object_id=refund_id, channel_ref=_refund_ref(row, "微信退款单号"),
            amount=amount, status=_status(row.get("退款状态", "")), occurred_at=occurred_at,
            fee=_fee(row, "手续费", amount.currency), attempt_id=row.get("商户订单号") or None, line=line,
        )
    amount = _required_money(row, "应结订单金额", "总金额")  # "总金额" in the legacy layout
    return StatementRow(
        kind=StatementKind.PAYMENT, object_id=row.get("商户订单号", ""), channel_ref=row.get("微信订单号") or None,
        amount=amount, status=_status(trade_state), occurred_at=occurred_at,
        fee=_fee(row, "手续费", amount.currency), line=line,
    )


def _summary(row: dict[str, str]) -> StatementSummary:
    payments = _money(row, "应结订单总金额", "总交易额")
    return StatementSummary(
        count=int(row[_SUMMARY_FIRST_COLUMN]),
        payments=payments,
        refunds=_money(row, "退款总金额"),
        fees=_fee(row, "手续费总金额", payments.currency if payments else "CNY"),
    )


def parse_trade_bill(chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
    """Yield one ``StatementRow`` per detail row and one ``StatementSummary`` for the summary row."""
    header: list[str] | None = None
    number = 0
    try:
        for number, line in enumerate(_lines(chunks), start=1):
            if not line.strip():
                continue
            cells = _cells(line)
            if not line.startswith("`"):
                header = [cell.strip() for cell in cells]  # the detail header, later the summary header
                continue
            if header is None:
                raise ChannelError(f"trade bill line {number}: data before any header")
            while len(cells) > len(header) and cells[-1] == "":
                cells.pop()  # rows end with a trailing ",`"
            if len(cells) != len(header):
                raise ChannelError(f"trade bill line {number}: {len(cells)} cells for {len(header)} columns")
            row = dict(zip(header, cells, strict=True))
            try:
                yield _summary(row) if header[0] == _SUMMARY_FIRST_COLUMN else _detail(row, number)
            except (KeyError, ValueError) as exc:
                raise ChannelError(f"trade bill line {number}: {exc}") from exc
    except (ValueError, zlib.error) as exc:  # undecodable bytes or a broken gzip stream, raised while reading
        raise ChannelError(f"trade bill line {number + 1}: {exc}") from exc
