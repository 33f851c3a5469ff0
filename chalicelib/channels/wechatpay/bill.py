"""Trade bill (交易账单): fetch with a SHA-1 check, then parse as a stream by header name.

Cells start with a backtick (so Excel keeps long numbers); amounts are yuan strings, fees 5 decimals.
Parsing goes by header name because column sets differ by bill type and some merchants get a legacy layout.
Rows come out as the hub's normalised ``StatementRow`` / ``StatementSummary`` (``parse_trade_bill``), or, for
a reconciliation run, as plain ``BillRow`` tuples (``parse_trade_bill_rows``, ~5x faster: columns resolved
once per header, cells read by index, amounts by integer arithmetic; ``parse_trade_bill`` is built on it):

- ``交易状态`` SUCCESS: a payment (``商户订单号`` = our attempt id, ``应结订单金额`` or legacy ``总金额``);
  REFUND: a refund (``商户退款单号`` = our refund id, ``退款金额``, status from ``退款状态`` as of the bill's
  generation); REVOKED and anything else: a payment row whose status is that word, lower-cased.
- Fees are stated to 1/1000 fen (5 yuan decimals); ``StatementRow.fee`` is integer minor units, so a fee is
  rounded half up to the fen here, at the channel edge. WeChat deducts whole fen at settlement.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import urlencode, urlsplit

from chalicelib.channels.base import StatementKind, StatementRow, StatementSummary
from chalicelib.channels.wechatpay.client import WeChatPayClient
from chalicelib.channels.wechatpay.credentials import WeChatCredentials
from chalicelib.channels.wechatpay.orders import BEIJING
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money, minor_units
from chalicelib.gzip_members import inflate_members

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


def _blocks(chunks: Iterable[bytes]) -> Iterator[list[str]]:
    """Decode a possibly gzip-compressed UTF-8 stream (BOM, CRLF or LF) into lists of lines without loading it whole.
    gzip members one after another are one stream, as ``gzip -d`` reads them; a stream cut inside a member raises
    ``GzipCutShort`` (a ``ValueError``).

    Every ``\n``-terminated line comes out (blank ones too: they count in line numbers); after the last newline,
    only lines with content. A BOM is dropped at the start of any line, trailing carriage returns at the end.
    Each list holds the complete lines of what arrived so far, decoded at once; bytes that are not UTF-8 raise
    ``ValueError``, after a list of the lines before the bad one.
    """
    pending = b""
    for data in _unzipped(chunks):
        pending += data
        cut = pending.rfind(b"\n")
        if cut >= 0:
            block, pending = pending[:cut], pending[cut + 1 :]
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError:
                yield from _line_by_line(block.split(b"\n"))
                continue
            lines = text.split("\n")
            if "\r" in text:
                lines = [line.rstrip("\r") for line in lines]
            if "\ufeff" in text:
                lines = [line[1:] if line.startswith("\ufeff") else line for line in lines]
            yield lines
    yield from _line_by_line([raw for raw in pending.split(b"\n") if raw.strip()])


def _unzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The stream's bytes, inflated when its first bytes are gzip's."""
    chunks = iter(chunks)
    for first in chunks:
        if first:
            stream = itertools.chain([first], chunks)
            yield from inflate_members(stream) if first[:2] == b"\x1f\x8b" else stream
            return


def _line_by_line(raws: list[bytes]) -> Iterator[list[str]]:
    lines: list[str] = []
    for raw in raws:
        try:
            lines.append(_decoded(raw))
        except ValueError:
            if lines:
                yield lines  # the good lines first, so that the error names the bad one
            raise
    if lines:
        yield lines


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason})") from exc


def _money(row: dict[str, str], *names: str) -> Money | None:
    for name in names:
        if row.get(name):
            return Money.from_decimal_string(row[name], row.get("货币种类") or "CNY")
    return None


def _decimal_fee(text: str) -> int:
    try:
        yuan = Decimal(text)
        if yuan.is_finite():
            return int(yuan.scaleb(2).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation as exc:  # not a number, or more digits than the context's 28
        raise ValueError(f"bad fee {text!r}") from exc
    raise ValueError(f"bad fee {text!r}")


def fee_minor(text: str) -> int:
    """A fee cell in yuan (5 decimals on the bill) to fen, rounded half up (ties away from zero): "0.53000" -> 53,
    "-0.00500" -> -1. Plain ``[-]digits.digits`` cells are read with integer arithmetic; anything else goes
    through ``Decimal`` (same value, same errors)."""
    whole, _, fraction = text.partition(".")
    if (fraction.isdigit() and (whole.isdigit() or (whole[:1] == "-" and whole[1:].isdigit())) and text.isascii()
            and len(text) <= _FAST_FEE_CHARS):
        places, units = len(fraction), int(whole + fraction)  # units of 10**-places yuan, signed
        if places <= 2:
            return units * 10 ** (2 - places)
        half, step = 5 * 10 ** (places - 3), 10 ** (places - 2)
        return (units + half) // step if units >= 0 else -((half - units) // step)
    return _decimal_fee(text)


_FAST_FEE_CHARS = 24  # well inside Decimal's 28-digit context, where the Decimal path never rounds early
# A bill time as WeChat writes it; anything else goes through strptime (which also words the errors).
_PLAIN_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def bill_time(text: str) -> datetime:
    """``交易时间`` (Beijing time, "YYYY-MM-DD HH:MM:SS") as an aware datetime."""
    if _PLAIN_TIME.fullmatch(text):
        try:
            return datetime.fromisoformat(text).replace(tzinfo=BEIJING)
        except ValueError:
            return _strptime(text)  # out of range (month 13, second 60): strptime raises with its own words
    return _strptime(text)


def _strptime(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)


def _summary(row: dict[str, str]) -> StatementSummary:
    payments = _money(row, "应结订单总金额", "总交易额")
    fees = row.get("手续费总金额")
    return StatementSummary(
        count=int(row[_SUMMARY_FIRST_COLUMN]),
        payments=payments,
        refunds=_money(row, "退款总金额"),
        fees=Money(fee_minor(fees), payments.currency if payments else "CNY") if fees else None,
    )


# A detail row as plain values, in the shape of the matching engine's ``CompactRow``
# (``chalicelib.recon.matching``): kind, object_id, channel_ref, amount (minor units), currency, status,
# fee (minor units, or None), fee currency (None when no fee), occurred_at, attempt_id, line.
BillRow = tuple[str, str, str | None, int, str, str, int | None, str | None, datetime, str | None, int]
_KINDS = {"payment": StatementKind.PAYMENT, "refund": StatementKind.REFUND}
# Columns a detail row is read from. Payments carry "0" (not an empty cell) in the refund-number columns.
_TIME, _STATE, _CURRENCY, _ORDER_NO, _TRANSACTION_ID = "交易时间", "交易状态", "货币种类", "商户订单号", "微信订单号"
_SETTLED, _LEGACY_TOTAL, _FEE = "应结订单金额", "总金额", "手续费"  # "总金额" in the legacy layout
_REFUND_NO, _REFUND_ID, _REFUND_AMOUNT, _REFUND_STATE = "商户退款单号", "微信退款单号", "退款金额", "退款状态"
_DETAIL_COLUMNS = (_TIME, _STATE, _CURRENCY, _ORDER_NO, _TRANSACTION_ID, _SETTLED, _LEGACY_TOTAL, _FEE,
                   _REFUND_NO, _REFUND_ID, _REFUND_AMOUNT, _REFUND_STATE)


def parse_trade_bill(chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
    """Yield one ``StatementRow`` per detail row and one ``StatementSummary`` for the summary row."""
    for item in parse_trade_bill_rows(chunks):
        if isinstance(item, StatementSummary):
            yield item
            continue
        kind, object_id, channel_ref, amount, currency, status, fee, fee_currency, occurred_at, attempt_id, line = item
        yield StatementRow(
            kind=_KINDS[kind], object_id=object_id, channel_ref=channel_ref, amount=Money(amount, currency),
            status=status, occurred_at=occurred_at, fee=None if fee is None else Money(fee, fee_currency or currency),
            attempt_id=attempt_id, line=line,
        )


def parse_trade_bill_rows(chunks: Iterable[bytes]) -> Iterator[BillRow | StatementSummary]:
    """``parse_trade_bill`` with each detail row as a ``BillRow`` tuple (no dict, ``Decimal`` or dataclass per
    row): what a reconciliation run feeds the matching engine.

    Columns are found by header name once per header line, then read by index. A row's rules:
    - ``交易状态`` REFUND: a refund (``商户退款单号`` = our refund id, required; ``退款金额``; status from
      ``退款状态``; ``商户订单号`` = its attempt); SUCCESS: a succeeded payment (``商户订单号`` = our attempt id,
      ``应结订单金额`` or legacy ``总金额``); REVOKED and anything else: a payment whose status is that word,
      lower-cased.
    - amounts are exact (``minor_units``); ``手续费`` is rounded half up to the fen (``fee_minor``).
    A malformed file raises ``ChannelError`` naming the line.
    """
    header: list[str] = []
    width, summary = -1, False
    (time_at, state_at, currency_at, order_at, transaction_at, settled_at, legacy_at, fee_at, refund_no_at,
     refund_id_at, refund_amount_at, refund_state_at) = _columns(header)
    last_time: str | None = None  # the previous row's time cell and its value: rows come in time order
    occurred_at = datetime.min
    number = 0  # of the line in hand
    blocks = _blocks(chunks)
    while True:
        try:
            lines = next(blocks, None)
        except (ValueError, zlib.error) as exc:  # undecodable bytes or a broken gzip stream, raised while reading
            raise ChannelError(f"trade bill line {number + 1}: {exc}") from exc
        if lines is None:
            return
        try:
            for line in lines:
                number += 1
                if line[:1] != "`":
                    if line.strip():  # the detail header, later the summary header
                        header = [cell.strip() for cell in line.split(",")]
                        width, summary = len(header), header[0] == _SUMMARY_FIRST_COLUMN
                        (time_at, state_at, currency_at, order_at, transaction_at, settled_at, legacy_at, fee_at,
                         refund_no_at, refund_id_at, refund_amount_at, refund_state_at) = _columns(header)
                        last_time = None
                    continue
                cells = line[1:].split(",`")  # not ",": a comma inside a product name must not shift the columns
                if len(cells) != width:
                    if width < 0:
                        raise ValueError("data before any header")
                    while len(cells) > width and cells[-1] == "":
                        cells.pop()  # rows may end with a trailing ",`"
                    if len(cells) != width:
                        raise ValueError(f"{len(cells)} cells for {width} columns")
                if summary:
                    yield _summary(dict(zip(header, cells, strict=True)))
                    continue
                cells.append("")
                moment = cells[time_at]
                if moment != last_time:
                    if time_at == width:
                        raise KeyError(_TIME)
                    occurred_at, last_time = bill_time(moment), moment
                currency = cells[currency_at] or "CNY"
                state = cells[state_at]
                fee_text = cells[fee_at]
                if state == "REFUND":
                    refund_no = cells[refund_no_at]
                    if refund_no == "" or refund_no == "0":
                        raise ValueError(f"refund row without {_REFUND_NO}")
                    amount_text = cells[refund_amount_at]
                    if not amount_text:
                        raise ValueError(f"no amount in {_REFUND_AMOUNT}")
                    amount = minor_units(amount_text, currency)
                    fee = fee_minor(fee_text) if fee_text else None
                    refund_id = cells[refund_id_at]
                    word = cells[refund_state_at]
                    yield ("refund", refund_no, None if refund_id == "" or refund_id == "0" else refund_id, amount, currency,
                           "succeeded" if word == "SUCCESS" else word.lower(), fee, None if fee is None else currency,
                           occurred_at, cells[order_at] or None, number)
                else:
                    amount_text = cells[settled_at] or cells[legacy_at]
                    if not amount_text:
                        raise ValueError(f"no amount in {_SETTLED} or {_LEGACY_TOTAL}")
                    amount = minor_units(amount_text, currency)
                    fee = fee_minor(fee_text) if fee_text else None
                    yield ("payment", cells[order_at], cells[transaction_at] or None, amount, currency,
                           "succeeded" if state == "SUCCESS" else state.lower(), fee, None if fee is None else currency,
                           occurred_at, None, number)
        except (KeyError, ValueError) as exc:
            raise ChannelError(f"trade bill line {number}: {exc}") from exc


def _columns(header: list[str]) -> tuple[int, ...]:
    """Where each detail column is in ``header``. A column the header lacks points one past its end, at the
    empty cell appended to every row, so it reads as ""; a name given twice reads its last column."""
    at = {name: position for position, name in enumerate(header)}
    return tuple(at.get(name, len(header)) for name in _DETAIL_COLUMNS)
