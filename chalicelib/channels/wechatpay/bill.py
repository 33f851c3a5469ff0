"""Trade bill (交易账单): fetch with a SHA-1 check, then parse as a stream by header name.

Cells start with a backtick (so Excel keeps long numbers); amounts are yuan strings, fees 5 decimals.
Parsing goes by header name because column sets differ by bill type and some merchants get a legacy layout.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit

from chalicelib.channels.wechatpay.client import WeChatPayClient
from chalicelib.channels.wechatpay.credentials import WeChatCredentials
from chalicelib.channels.wechatpay.orders import BEIJING
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

CHUNK_BYTES = 64 * 1024
_KIND_BY_TRADE_STATE = {"SUCCESS": "payment", "REFUND": "refund", "REVOKED": "revoked"}


def fetch_trade_bill(client: WeChatPayClient, credentials: WeChatCredentials, day: str) -> Iterator[bytes]:
    """Download the ALL bill of ``day`` (YYYY-MM-DD), check its SHA-1, return it in chunks."""
    try:
        date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidRequest("bill day must be YYYY-MM-DD", param="day") from exc
    query = urlencode({"bill_date": day, "bill_type": "ALL"})
    answer = client.call_json(credentials, "GET", f"/v3/bill/tradebill?{query}")
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
            yield raw.decode("utf-8-sig").rstrip("\r")
    if decompressor:
        pending += decompressor.flush()
    for raw in pending.split(b"\n"):
        if raw.strip():
            yield raw.decode("utf-8-sig").rstrip("\r")


def _cells(line: str) -> list[str]:
    # Split on ",`" rather than "," so a comma inside a product name does not shift the columns.
    return line[1:].split(",`") if line.startswith("`") else line.split(",")


def _money(row: dict[str, str], *names: str) -> Money | None:
    currency = row.get("货币种类") or "CNY"
    for name in names:
        if row.get(name):
            return Money.from_decimal_string(row[name], currency)
    return None


def _fee_yuan(row: dict[str, str], name: str) -> Decimal | None:
    try:
        return Decimal(row[name]) if row.get(name) else None
    except InvalidOperation as exc:
        raise ValueError(f"bad fee {row[name]!r}") from exc


def _refund_ref(row: dict[str, str], name: str) -> str | None:
    # Payment rows carry "0" in the refund-number columns, not an empty cell.
    value = row.get(name, "")
    return value if value not in ("", "0") else None


def _detail(row: dict[str, str]) -> dict[str, Any]:
    occurred_at = datetime.strptime(row["交易时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    return {
        "kind": _KIND_BY_TRADE_STATE.get(row.get("交易状态", ""), "unknown"),
        "occurred_at": occurred_at,
        "attempt_id": row.get("商户订单号") or None,
        "channel_transaction_id": row.get("微信订单号") or None,
        "refund_id": _refund_ref(row, "商户退款单号"),
        "channel_refund_id": _refund_ref(row, "微信退款单号"),
        "trade_state": row.get("交易状态", ""),
        "refund_status": row.get("退款状态") or None,
        "amount": _money(row, "应结订单金额", "总金额"),  # "总金额" in the legacy layout
        "order_amount": _money(row, "订单金额"),
        "refund_amount": _money(row, "退款金额"),
        "fee_yuan": _fee_yuan(row, "手续费"),
        "raw": row,
    }


def _summary(row: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "summary",
        "count": int(row["总交易单数"]),
        "amount": _money(row, "应结订单总金额", "总交易额"),
        "refund_amount": _money(row, "退款总金额"),
        "order_amount": _money(row, "订单总金额"),
        "fee_yuan": _fee_yuan(row, "手续费总金额"),
        "raw": row,
    }


def parse_trade_bill(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Yield one mapping per detail row (kind payment/refund/revoked) and one for the summary row."""
    header: list[str] | None = None
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
            record = _summary(row) if header[0] == "总交易单数" else _detail(row)
        except (KeyError, ValueError) as exc:
            raise ChannelError(f"trade bill line {number}: {exc}") from exc
        yield record
