"""The WeChat Pay trade bill read by DuckDB: ``parse_trade_bill_rows``' rows, straight into the engine's table.

For a bill in the shape WeChat writes it (a header line, backtick detail lines, the summary header and one
summary line; plain ``digits.2digits`` amounts in a two-decimal currency, fees with 2 or 5 decimals, times as
"YYYY-MM-DD HH:MM:SS", ASCII status words) the rows are the Python parser's, value for value, line numbers
included: the same columns found by header name, cells split on ``,``` exactly as it splits them, the same
rules per row. Python unzips and numbers the lines; DuckDB splits and converts the cells in C++. Anything
else (a row of another width, a refund without its number, an amount in another notation, undecodable bytes,
a second header...) makes ``load_trade_bill`` return ``None`` with nothing loaded: the caller parses the file with
``parse_trade_bill_rows``, which reads it or raises ``ChannelError`` naming the line.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
from isal import isal_zlib

from chalicelib.channels.base import StatementSummary
from chalicelib.channels.wechatpay import bill
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.money import SUPPORTED_CURRENCIES, exponent
from chalicelib.gzip_members import GzipCutShort, inflate_members

_TWO_DECIMALS = sorted(currency for currency in SUPPORTED_CURRENCIES if exponent(currency) == 2)
_FIELD = "\x01"  # a byte no bill line holds: a numbered part (shards.chunk_lines) is read as one text column
# DuckDB's NULL text in those copies: text no cell can hold (a line ends at its newline), so an empty cell reads as
# '' and only a missing one (a line short of cells, padded) as NULL.
_NO_CELL = "\n"
# A detail line's time (Beijing, no offset in the bill) as the parser's text: ISO 8601 with the +08:00 offset.
_TIME_TEXT = "'%Y-%m-%dT%H:%M:%S+08:00'"


# The bill is inflated by ISA-L (python-isal: zlib's interface, Intel's inflate; it releases the GIL as zlib does),
# not zlib: on the benchmark's bill 0.12 s of CPU against 0.45 s, on the thread that runs beside DuckDB's read of
# the export (bench/README.md).
_READ = 1 << 20
_INFLATE_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]  # the class (its stub says an instance)
# DuckDB's CSV read buffer for the cells (its default is 32 MB, 16 lines of the longest allowed): small buffers
# pin less of the workspace's memory while the rows table fills, so less of it spills (on 1M rows 1.9 against
# 2.0-2.1 s CPU, 302 against 336-347 MB peak). A line longer than DuckDB's 2 MB limit fails the read either
# way and the parser reads the file.
_CSV_BUFFER = 4 << 20
# A carriage return not followed by a newline: one regex scan costs a third of counting "\r" and "\r\n" apart
# (0.11 s against 0.35 s CPU on the benchmark's million CRLF lines).
_LONE_CR = re.compile(rb"\r(?!\n)").search


def load_trade_bill(space: Any, path: str) -> StatementSummary | None:
    """Load the bill's detail rows as ``space.rows`` (a ``chalicelib.recon.columnar.Workspace`` whose ``rows``
    table is still empty: it becomes a view over the lines read) and return its summary; ``None``, with
    ``rows`` left as it was, when the file is not in the plain shape described above.

    The file is unzipped once by ``cells_copy`` (each line prefixed with its number, the lines that are not
    detail lines kept aside), then DuckDB's CSV reader splits the detail lines into cells: no per-cell work in
    Python, no list per line in SQL."""
    return stage_trade_bill(space, path)()


def stage_trade_bill(space: Any, path: str) -> Callable[[], StatementSummary | None]:
    """``load_trade_bill`` in two steps: this call does the file work (unzip, number, keep the other lines aside)
    without touching DuckDB, so it may run on another thread while a DuckDB reader loads the other side (ISA-L
    and DuckDB both release the GIL); the step it returns loads the cells into ``space`` and gives
    ``load_trade_bill``'s answer. Call that step once, on the workspace's own thread."""
    numbered = space.path("bill-cells.csv")
    try:
        copied = cells_copy(path, numbered)
    except BaseException:
        _remove(numbered)
        raise

    def finish() -> StatementSummary | None:
        try:
            if copied is None or not space.replaceable("rows"):
                return None
            summary = _summary_of(copied)
            if summary is None or not _load_cells(space, numbered, copied):
                return None
            return summary
        finally:
            _remove(numbered)

    return finish


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)


class CellsCopy:
    """What ``cells_copy`` saw: the header line, the lines that do not start with a backtick (number, text),
    where the summary's header is, and the non-blank lines after it."""

    def __init__(self) -> None:
        self.header: str | None = None
        self.others: list[tuple[int, str]] = []
        self.summary_at: int | None = None
        self.tail: list[str] = []
        self.lines = 0


def cells_copy(path: str, target: str) -> CellsCopy | None:
    """Write the bill's lines to ``target`` unzipped as ``<line number>,`<line>`` (a CSV that DuckDB splits on
    ``,``` as the parser does), and return the lines that are not detail lines; ``None`` when the file cannot be read so (a
    carriage return inside a line, a cut gzip stream, a line that is not UTF-8 among those kept aside).

    Line numbers are what the parser counts (every ``\\n``-terminated line, blank ones included), carried as
    a column, so DuckDB may read the file on every thread in any order. Streamed: a chunk at a time. ISA-L
    releases the GIL while it inflates, so a DuckDB reader on another thread keeps running meanwhile."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    seen, number, pending = CellsCopy(), 0, b""
    try:
        with open(path, "rb") as source, open(target, "wb") as out:
            read: Iterator[bytes] = iter(lambda: source.read(_READ), b"")
            # None after the last bytes: the end (a cut gzip stream raises GzipCutShort before it)
            for data in itertools.chain(inflate_members(read, isal_zlib.decompressobj) if gzipped else read, [None]):
                block = pending + (data or b"")
                if data is None:  # the end: what follows the last newline is a line when it has content
                    block, pending = (block + b"\n" if block.strip() else b""), b""
                else:
                    cut = block.rfind(b"\n") + 1
                    block, pending = block[:cut], block[cut:]
                if block:
                    # A carriage return ends a line only before its newline (the parser drops it, DuckDB reads
                    # "\r\n" as the end of a line); anywhere else, the parser decides what the line is. (A block
                    # ends with "\n", so a lone "\r" is one not followed by "\n".)
                    if _LONE_CR(block):
                        return None
                    lines = block.split(b"\n")
                    lines.pop()
                    # "<number>,`" before each line: the ",`" after the number is the cut DuckDB splits the cells
                    # on (the parser's, not ",": a comma inside a product name stays in its cell); the line's own
                    # backtick stays in the first cell.
                    out.write(numbered(lines, number + 1, b",`"))
                    for index in [i for i, line in enumerate(lines) if line[:1] != b"`"]:
                        text = lines[index].decode("utf-8-sig" if number + index == 0 else "utf-8").rstrip("\r")
                        seen.others.append((number + 1 + index, text))
                    if seen.summary_at is None:
                        for at, text in seen.others:
                            if at > 1 and text.split(",")[0].strip() == "总交易单数":
                                seen.summary_at = at
                                break
                    if seen.summary_at is not None:
                        first = max(0, seen.summary_at - number)  # the lines after the summary header
                        seen.tail += [line.decode().rstrip("\r") for line in lines[first:] if line.strip()][:3 - len(seen.tail)]
                    number += len(lines)
    except (OSError, _INFLATE_ERROR, GzipCutShort, UnicodeDecodeError):  # the parser words what is wrong
        return None
    if not seen.others or seen.others[0][0] != 1:
        return None
    seen.header, seen.lines = seen.others[0][1], number
    return seen


def numbered(lines: list[bytes], first: int, separator: bytes) -> bytes:
    """``lines`` as ``<number><separator><line>\n`` each, numbered from ``first``: one join of the numbers and the
    lines, no formatting per line (a million lines in ~0.3 s of CPU). The bill's cells copy uses it, and so does
    the shard plan's cut (``shards.chunk_lines``)."""
    if not lines:
        return b""
    template = b"\n%d" + separator  # each number after the line before it ends
    parts: list[bytes] = [b""] * (2 * len(lines) + 1)
    parts[0:-1:2] = [template % at for at in range(first, first + len(lines))]
    parts[0] = parts[0][1:]
    parts[1::2] = lines
    parts[-1] = b"\n"
    return b"".join(parts)


def _summary_of(copied: CellsCopy) -> StatementSummary | None:
    """The summary, when the lines aside are the plain shape's: the detail header first, then (blank lines
    aside) only the summary's header, followed by one summary line and nothing else."""
    header = copied.header
    if not header or not header.strip() or header.split(",")[0].strip() == "总交易单数":
        return None
    named = [(at, text) for at, text in copied.others[1:] if text.strip()]
    if len(named) != 1 or named[0][0] != copied.summary_at or len(copied.tail) != 1 or copied.tail[0][:1] != "`":
        return None
    return _parsed_summary(named[0][1], copied.tail[0])


def _parsed_summary(header: str, line: str) -> StatementSummary | None:
    """The summary's header and line through the Python parser's own rules; ``None`` when they are not one summary
    (a malformed one: the full parse raises it, naming the right line)."""
    try:
        parsed = list(bill.parse_trade_bill_rows([f"{header}\n{line}\n".encode()]))
    except ChannelError:
        return None
    return parsed[0] if len(parsed) == 1 and isinstance(parsed[0], StatementSummary) else None


def _load_cells(space: Any, numbered: str, copied: CellsCopy) -> bool:
    """The detail lines before the summary as ``space.rows``, when every one is plain (as many cells as the
    header names, and values the SQL reads as the parser does)."""
    assert copied.header is not None and copied.summary_at is not None
    header = [cell.strip() for cell in copied.header.split(",")]
    width = len(header)
    at = dict(zip(bill._DETAIL_COLUMNS, bill._columns(header), strict=True))

    def cell(name: str) -> str:  # the first cell still carries the line's backtick
        return "''" if at[name] == width else "substr(c0, 2)" if at[name] == 0 else f"c{at[name]}"

    columns = ", ".join(["'n': 'BIGINT'", *(f"'c{index}': 'VARCHAR'" for index in range(width + 1))])
    # As many cells as the header names: the last one there (a NULL is a missing cell, and only the trailing cells
    # of a short line are missing) and nothing after it. Only these two and the named cells are read: DuckDB
    # converts no other column of the line.
    shaped = f"c{width} IS NULL AND c{width - 1} IS NOT NULL" if width > 1 else f"c{width} IS NULL"
    con = space.con
    try:
        space.store("bill_rows", f"""
            SELECT *, coalesce(object_id, '') = '' AS unkeyed FROM (
            {_rows_sql(cell, "shaped")}
            FROM (SELECT n, coalesce({shaped}, false) AS shaped, {_picks(cell)}
                  FROM read_csv(?, columns={{{columns}}}, header=false, delim=',`', quote='', escape='',
                                nullstr=?, auto_detect=false, strict_mode=false, null_padding=true,
                                buffer_size={_CSV_BUFFER})
                  WHERE starts_with(c0, '`') AND n < {int(copied.summary_at)})))""", [numbered, _NO_CELL])  # noqa: S608 - names and ints of our own; values go as parameters
    except duckdb.Error:  # not UTF-8...: the Python parser words it
        space.drop_stored("bill_rows")
        return False
    # One scan of flags: whether every row is regular, and whether every one has an object_id (a payment may lack
    # its order number: the engine then pairs by channel_ref, which the SQL path leaves to the Python engine).
    irregular, unkeyed = space.one("SELECT count(*) FILTER (WHERE irregular), count(*) FILTER (WHERE unkeyed) "
                                   "FROM bill_rows")
    if irregular:
        space.drop_stored("bill_rows")
        return False
    con.execute("DROP TABLE rows")
    # ``moment`` is there for the outcome query, which formats the time of the rows it keeps (``compute_late``).
    con.execute(f"""
        CREATE VIEW rows AS
        SELECT CASE WHEN refund THEN 'refund' ELSE 'payment' END AS kind, object_id, channel_ref, amount, currency,
               status, fee, CASE WHEN fee IS NOT NULL THEN currency END AS fee_currency,
               strftime(moment, {_TIME_TEXT}) AS occurred_at, attempt_id, n AS line, n AS seq, moment
        FROM bill_rows""")  # noqa: S608 - a format of ours
    space.compute_late("rows", "occurred_at", f"strftime({{t}}.moment, {_TIME_TEXT})")
    if not unkeyed:  # the rest of what the engine asks of rows (kind, amount, a supported currency...) is regular
        space.vouch("rows")
    return True


_NAMED = {"c_time": bill._TIME, "c_state": bill._STATE, "c_currency": bill._CURRENCY, "c_order": bill._ORDER_NO,
          "c_transaction": bill._TRANSACTION_ID, "c_settled": bill._SETTLED, "c_legacy": bill._LEGACY_TOTAL,
          "c_fee": bill._FEE, "c_refund_no": bill._REFUND_NO, "c_refund_id": bill._REFUND_ID,
          "c_refund_amount": bill._REFUND_AMOUNT, "c_refund_state": bill._REFUND_STATE}


# The values a detail line may hold that the SQL does not read as ``parse_trade_bill_rows`` does: such a line is
# "irregular" and the Python parser words it. ``OR`` terms over the named cells, shared by both readers.
_IRREGULAR_VALUES = (
    "OR NOT regexp_full_match(c_time, '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}')"
    " OR TRY_CAST(c_time AS TIMESTAMP) IS NULL"
    f" OR currency NOT IN ({', '.join(repr(currency) for currency in sorted(_TWO_DECIMALS))})"
    " OR NOT regexp_full_match(amount_text, '[0-9]{1,15}\\.[0-9]{2}')"
    " OR NOT (c_fee = '' OR regexp_full_match(c_fee, '-?[0-9]{1,15}\\.([0-9]{2}|[0-9]{5})'))"
    " OR NOT regexp_full_match(word, '[A-Za-z_]*')"
    " OR (refund AND c_refund_no IN ('', '0'))")


def _picks(cell: Any) -> str:
    return ", ".join(f"{cell(column)} AS {name}" for name, column in _NAMED.items())


def _rows_sql(cell: Any, shaped: str) -> str:
    """The SELECT computing each detail line's row by ``parse_trade_bill_rows``' rules, and ``irregular``: the
    line is not in the plain shape (``shaped`` false) or a value is one the SQL does not read as the parser
    does. Its FROM (to be appended) gives ``n``, ``shaped`` and the named cells ``c_time``..."""
    return f"""
        SELECT n, refund, CASE WHEN refund THEN c_refund_no ELSE c_order END AS object_id,
               CASE WHEN refund THEN (CASE WHEN c_refund_id IN ('', '0') THEN NULL ELSE c_refund_id END)
                    ELSE nullif(c_transaction, '') END AS channel_ref,
               TRY_CAST(replace(amount_text, '.', '') AS BIGINT) AS amount, currency,
               CASE WHEN word = 'SUCCESS' THEN 'succeeded' ELSE lower(word) END AS status,
               CASE WHEN c_fee = '' THEN NULL WHEN length(c_fee) - strpos(c_fee, '.') = 2 THEN units
                    WHEN units >= 0 THEN (units + 500) // 1000 ELSE -((500 - units) // 1000) END AS fee,
               TRY_CAST(c_time AS TIMESTAMP) AS moment,
               CASE WHEN refund THEN nullif(c_order, '') END AS attempt_id,
               (NOT {shaped} {_IRREGULAR_VALUES}) AS irregular
        FROM (SELECT *, c_state = 'REFUND' AS refund, coalesce(nullif(c_currency, ''), 'CNY') AS currency,
                     CASE WHEN c_state = 'REFUND' THEN c_refund_amount
                          ELSE coalesce(nullif(c_settled, ''), c_legacy) END AS amount_text,
                     CASE WHEN c_state = 'REFUND' THEN c_refund_state ELSE c_state END AS word,
                     TRY_CAST(replace(c_fee, '.', '') AS BIGINT) AS units
"""  # noqa: S608 - names and currency codes of our own


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
    picks = _picks(cell)
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
                   detail AND (width <> {width} {_IRREGULAR_VALUES}) AS irregular
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
    summary = _parsed_summary(summary_header, after[0][0])
    return None if summary is None else (int(summary_header_at), summary)
