"""The WeChat Pay trade bill read by DuckDB: ``parse_trade_bill_rows``' rows, straight into the engine's table.

For a bill in the shape WeChat writes it (a header line, backtick detail lines, the summary header and one
summary line; plain ``digits.2digits`` amounts in a two-decimal currency, fees with 2 or 5 decimals, times as
"YYYY-MM-DD HH:MM:SS", ASCII status words) the rows are the Python parser's, value for value, line numbers
included: the same columns found by header name, cells split on ``,``` exactly as it splits them, the same
rules per row. DuckDB reads the (gzip) file and splits and converts the cells in C++. Anything else (a row of
another width, a refund without its number, an amount in another notation, undecodable bytes, a second
header...) makes ``load_trade_bill`` return ``None`` with nothing loaded: the caller parses the file with
``parse_trade_bill_rows``, which reads it or raises ``ChannelError`` naming the line.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import duckdb

from chalicelib.channels.base import StatementSummary
from chalicelib.channels.wechatpay import bill
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.money import SUPPORTED_CURRENCIES, exponent

_TWO_DECIMALS = sorted(currency for currency in SUPPORTED_CURRENCIES if exponent(currency) == 2)
_FIELD = "\x01"  # a byte no bill line holds: each line is read as one text column (one that holds it: parsed in Python)


_READ = 1 << 20


def numbered_copy(path: str, target: str) -> str | None:
    """Write the bill's lines to ``target`` as ``<line number>\\x01<line>``, unzipped, and return its first line
    (BOM and carriage returns dropped, as the parser drops them); ``None`` when the file cannot be read so.

    Line numbers are what the parser counts (every ``\\n``-terminated line, blank ones included), carried as a
    column: DuckDB may then read the file on every thread, in any order. Streamed: a chunk at a time."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    number, pending, first = 0, b"", None
    try:
        with open(path, "rb") as source, open(target, "wb") as out:
            inflate = zlib.decompressobj(wbits=31) if gzipped else None
            while chunk := source.read(_READ):
                data = inflate.decompress(chunk) if inflate is not None else chunk
                while inflate is not None and inflate.eof and inflate.unused_data:  # another gzip member
                    rest = inflate.unused_data
                    inflate = zlib.decompressobj(wbits=31)
                    data += inflate.decompress(rest)
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                if first is None and lines:
                    first = lines[0]
                out.write(b"".join(b"%d\x01%s\n" % (number + offset, line)
                                   for offset, line in enumerate(lines, start=1)))
                number += len(lines)
            if inflate is not None and not inflate.eof:
                return None  # a cut gzip stream: the parser words it
            if pending.strip():
                if first is None:
                    first = pending
                out.write(b"%d\x01%s\n" % (number + 1, pending))
    except (OSError, zlib.error):
        return None
    if first is None:
        return None
    try:
        return first.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        return None


def load_trade_bill(space: Any, path: str) -> StatementSummary | None:
    """Load the bill's detail rows as ``space.rows`` (a ``chalicelib.recon.columnar.Workspace`` whose ``rows``
    table is still empty: it becomes a view over the lines read) and return its summary; ``None``, with
    ``rows`` left as it was, when the file is not in the plain shape described above."""
    numbered = space.path("bill-lines.txt")
    header_line = numbered_copy(path, numbered)
    try:
        found = load_numbered(space, numbered, header_line)
    finally:
        os.remove(numbered)
    return found if isinstance(found, StatementSummary) else None


def load_numbered(space: Any, numbered: str, header_line: str | None, *, part: bool = False) -> StatementSummary | bool:
    """``load_trade_bill`` of lines already numbered (``numbered_copy``, or a part of a bill cut by
    ``chalicelib.recon.shards.chunk_lines``), the detail header given. Whole (``part=False``): the summary, or
    ``False`` when the bill is not in the plain shape. A part: ``True`` when its lines are plain (detail lines,
    and at most the summary's header and line, which are left out), else ``False``; the summary is read by
    whoever cut the bill."""
    if not header_line or header_line[:1] == "`" or not header_line.strip():
        return False
    header = [cell.strip() for cell in header_line.split(",")]
    width = len(header)
    if header[0] == "总交易单数":
        return False
    at = dict(zip(bill._DETAIL_COLUMNS, bill._columns(header), strict=True))

    def cell(name: str) -> str:
        index = at[name]
        return "''" if index == width else f"cells[{index + 1}]"

    if not space.replaceable("rows"):
        return False
    con = space.con
    named = {"c_time": bill._TIME, "c_state": bill._STATE, "c_currency": bill._CURRENCY, "c_order": bill._ORDER_NO,
             "c_transaction": bill._TRANSACTION_ID, "c_settled": bill._SETTLED, "c_legacy": bill._LEGACY_TOTAL,
             "c_fee": bill._FEE, "c_refund_no": bill._REFUND_NO, "c_refund_id": bill._REFUND_ID,
             "c_refund_amount": bill._REFUND_AMOUNT, "c_refund_state": bill._REFUND_STATE}
    picks = ", ".join(f"{cell(column)} AS {name}" for name, column in named.items())
    currencies = ", ".join(f"'{currency}'" for currency in _TWO_DECIMALS)
    try:
        # One pass, on every thread DuckDB has: each line's row by parse_trade_bill_rows' rules and whether the
        # line is plain. Each line carries its number (numbered_copy), so no order is needed of the read.
        con.execute(f"""
            CREATE OR REPLACE TABLE bill_lines AS
            SELECT n, detail, CASE WHEN NOT detail OR width <> {width} THEN t END AS note,
                   CASE WHEN refund THEN 'refund' ELSE 'payment' END AS kind,
                   CASE WHEN refund THEN c_refund_no ELSE c_order END AS object_id,
                   CASE WHEN refund THEN (CASE WHEN c_refund_id IN ('', '0') THEN NULL ELSE c_refund_id END)
                        ELSE nullif(c_transaction, '') END AS channel_ref,
                   TRY_CAST(replace(amount_text, '.', '') AS BIGINT) AS amount, currency,
                   CASE WHEN word = 'SUCCESS' THEN 'succeeded' ELSE lower(word) END AS status,
                   CASE WHEN c_fee = '' THEN NULL WHEN length(c_fee) - strpos(c_fee, '.') = 2 THEN units
                        WHEN units >= 0 THEN (units + 500) // 1000 ELSE -((500 - units) // 1000) END AS fee,
                   CASE WHEN c_fee = '' THEN NULL ELSE currency END AS fee_currency,
                   replace(c_time, ' ', 'T') || '+08:00' AS occurred_at,
                   CASE WHEN refund THEN nullif(c_order, '') END AS attempt_id,
                   detail AND (width <> {width}
                     OR NOT regexp_full_match(c_time, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}')
                     OR TRY_CAST(c_time AS TIMESTAMP) IS NULL
                     OR currency NOT IN ({currencies})
                     OR NOT regexp_full_match(amount_text, '[0-9]{{1,15}}\\.[0-9]{{2}}')
                     OR NOT (c_fee = '' OR regexp_full_match(c_fee, '-?[0-9]{{1,15}}\\.([0-9]{{2}}|[0-9]{{5}})'))
                     OR NOT regexp_full_match(word, '[A-Za-z_]*')
                     OR (refund AND c_refund_no IN ('', '0'))) AS irregular
            FROM (SELECT *, c_state = 'REFUND' AS refund, coalesce(nullif(c_currency, ''), 'CNY') AS currency,
                         CASE WHEN c_state = 'REFUND' THEN c_refund_amount
                              ELSE coalesce(nullif(c_settled, ''), c_legacy) END AS amount_text,
                         CASE WHEN c_state = 'REFUND' THEN c_refund_state ELSE c_state END AS word,
                         TRY_CAST(replace(c_fee, '.', '') AS BIGINT) AS units
                  FROM (SELECT n, t, detail, len(cells) AS width, {picks}
                        FROM (SELECT n, t, detail, CASE WHEN detail THEN string_split(substr(t, 2), ',`') END AS cells
                              FROM (SELECT n, rtrim(t, chr(13)) AS t, coalesce(left(t, 1) = '`', false) AS detail
                                    FROM read_csv(?, columns={{'n': 'BIGINT', 't': 'VARCHAR'}}, header=false,
                                                  delim='{_FIELD}', quote='', escape='', auto_detect=false,
                                                  strict_mode=true, null_padding=false)))))
            """, [numbered])  # noqa: S608 - names and indexes of our own; values go as parameters
    except duckdb.Error:  # not UTF-8, a line with the field byte...: the Python parser words it
        con.execute("DROP TABLE IF EXISTS bill_lines")
        return False
    summary = _plain_part(space) if part else _plain_summary(space)
    if summary is None:
        con.execute("DROP TABLE bill_lines")
        return False
    summary_header_at, parsed = summary
    con.execute("DROP TABLE rows")
    con.execute(f"""
        CREATE VIEW rows AS
        SELECT kind, object_id, channel_ref, amount, currency, status, fee, fee_currency, occurred_at, attempt_id,
               n AS line, n AS seq
        FROM bill_lines WHERE detail AND n < {int(summary_header_at)}""")  # noqa: S608 - an int of ours
    return parsed if parsed is not None else True


def _plain_part(space: Any) -> tuple[int, None] | None:
    """A part is plain when it holds detail lines only (every one plain), or ends with the summary's header
    and one more line: then where the summary header is (else past every line)."""
    others = space.con.execute("SELECT n, note FROM bill_lines WHERE NOT detail AND n > 1 AND trim(note) <> '' "
                               "ORDER BY n LIMIT 2").fetchall()
    end = int(space.one("SELECT coalesce(max(n), 0) + 1 FROM bill_lines")[0])
    if others:
        if len(others) != 1 or others[0][1].split(",")[0].strip() != "总交易单数":
            return None
        end = int(others[0][0])
        if space.one("SELECT count(*) FROM bill_lines WHERE n > ? AND (detail OR trim(note) <> '')", [end])[0] != 1:
            return None
    if space.one("SELECT count(*) FROM bill_lines WHERE irregular AND n < ?", [end])[0]:
        return None
    return end, None


def _plain_summary(space: Any) -> tuple[int, StatementSummary] | None:
    """The line of the summary header and the summary, when the bill is in the plain shape: after the detail
    header, detail lines only (every one plain), then the summary's header, then one summary line, then
    nothing (blank lines aside)."""
    con = space.con
    others = con.execute("SELECT n, note FROM bill_lines WHERE NOT detail AND n > 1 AND trim(note) <> '' "
                         "ORDER BY n LIMIT 2").fetchall()
    if len(others) != 1 or others[0][1].split(",")[0].strip() != "总交易单数":
        return None
    summary_header_at, summary_header = others[0]
    after = con.execute("SELECT note, detail, irregular FROM bill_lines WHERE n > ? "
                        "AND (detail OR trim(note) <> '') ORDER BY n LIMIT 2", [summary_header_at]).fetchall()
    if len(after) != 1 or not after[0][1] or after[0][0] is None:
        return None
    if space.one("SELECT count(*) FROM bill_lines WHERE irregular AND n < ?", [summary_header_at])[0]:
        return None
    try:  # the summary through the Python parser's own rules
        parsed = list(bill.parse_trade_bill_rows([f"{summary_header}\n{after[0][0]}\n".encode()]))
    except ChannelError:
        return None  # the full parse raises it, naming the right line
    if len(parsed) != 1 or not isinstance(parsed[0], StatementSummary):
        return None
    return int(summary_header_at), parsed[0]
