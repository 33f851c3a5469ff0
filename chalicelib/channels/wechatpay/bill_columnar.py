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

import gzip
from typing import Any

import duckdb

from chalicelib.channels.base import StatementSummary
from chalicelib.channels.wechatpay import bill
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.money import SUPPORTED_CURRENCIES, exponent

_TWO_DECIMALS = sorted(currency for currency in SUPPORTED_CURRENCIES if exponent(currency) == 2)
_FIELD = "\x01"  # a byte no bill line holds: each line is read as one text column (one that holds it: parsed in Python)


def _first_line(path: str) -> str | None:
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener: Any = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as stream:
            first = stream.readline(1 << 20)
        return str(first.decode("utf-8-sig").rstrip("\r\n").rstrip("\r"))
    except (OSError, UnicodeDecodeError, EOFError):
        return None


def load_trade_bill(space: Any, path: str) -> StatementSummary | None:
    """Append the bill's detail rows to ``space.rows`` (a ``chalicelib.recon.columnar.Workspace``) and return
    its summary; ``None`` (nothing appended) when the file is not in the plain shape described above."""
    header_line = _first_line(path)
    if not header_line or header_line[:1] == "`" or not header_line.strip():
        return None
    header = [cell.strip() for cell in header_line.split(",")]
    width = len(header)
    if header[0] == "总交易单数":
        return None
    at = dict(zip(bill._DETAIL_COLUMNS, bill._columns(header), strict=True))

    def cell(name: str) -> str:
        index = at[name]
        return "''" if index == width else f"cells[{index + 1}]"

    con = space.con
    named = {"c_time": bill._TIME, "c_state": bill._STATE, "c_currency": bill._CURRENCY, "c_order": bill._ORDER_NO,
             "c_transaction": bill._TRANSACTION_ID, "c_settled": bill._SETTLED, "c_legacy": bill._LEGACY_TOTAL,
             "c_fee": bill._FEE, "c_refund_no": bill._REFUND_NO, "c_refund_id": bill._REFUND_ID,
             "c_refund_amount": bill._REFUND_AMOUNT, "c_refund_state": bill._REFUND_STATE}
    picks = ", ".join(f"{cell(column)} AS {name}" for name, column in named.items())
    threads = space.one("SELECT current_setting('threads')")[0]
    try:
        # Pass 1, on one thread (a gzip stream is read by one anyway) so that the table's rowids follow the file's
        # lines, blank ones included: rowid + 1 is the line number. The cells a row is read from, and the text
        # of the other lines. (The caller runs nothing else on this database meanwhile.)
        con.execute("SET threads = 1")
        con.execute(f"""
            CREATE OR REPLACE TABLE bill_lines AS
            SELECT detail, len(cells) AS width, CASE WHEN detail AND len(cells) = {width} THEN NULL ELSE t END AS t,
                   {picks}
            FROM (SELECT t, detail, CASE WHEN detail THEN string_split(substr(t, 2), ',`') END AS cells
                  FROM (SELECT rtrim(t, chr(13)) AS t, coalesce(left(t, 1) = '`', false) AS detail
                        FROM read_csv(?, columns={{'t': 'VARCHAR'}}, header=false, delim='{_FIELD}', quote='',
                                      escape='', auto_detect=false, strict_mode=true, null_padding=false)))
            """, [path])  # noqa: S608 - names and indexes of our own; values go as parameters
    except duckdb.Error:  # not UTF-8, a line with the field byte...: the Python parser words it
        return None
    finally:
        con.execute(f"SET threads = {int(threads)}")
    currencies = ", ".join(f"'{currency}'" for currency in _TWO_DECIMALS)
    # Pass 2, on every thread: each row by parse_trade_bill_rows' rules, and whether it is plain.
    con.execute(f"""
        CREATE OR REPLACE VIEW bill_cells AS
        SELECT rowid + 1 AS n, detail, t, width, c_time, c_state, c_order, c_transaction, c_fee, c_refund_no,
               c_refund_id, c_state = 'REFUND' AS refund, coalesce(nullif(c_currency, ''), 'CNY') AS currency,
               CASE WHEN c_state = 'REFUND' THEN c_refund_amount ELSE coalesce(nullif(c_settled, ''), c_legacy) END
                   AS amount_text,
               CASE WHEN c_state = 'REFUND' THEN c_refund_state ELSE c_state END AS word,
               TRY_CAST(replace(c_fee, '.', '') AS BIGINT) AS units
        FROM bill_lines WHERE rowid > 0 AND (detail OR t IS NOT NULL);
        CREATE OR REPLACE VIEW bill_view AS
        SELECT n, detail, t,
               CASE WHEN refund THEN 'refund' ELSE 'payment' END AS kind,
               CASE WHEN refund THEN c_refund_no ELSE c_order END AS object_id,
               CASE WHEN refund THEN (CASE WHEN c_refund_id IN ('', '0') THEN NULL ELSE c_refund_id END)
                    ELSE nullif(c_transaction, '') END AS channel_ref,
               CAST(replace(amount_text, '.', '') AS BIGINT) AS amount, currency,
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
        FROM bill_cells""")  # noqa: S608 - names and indexes of our own
    try:
        return _append(space)
    finally:
        con.execute("DROP VIEW IF EXISTS bill_view; DROP VIEW IF EXISTS bill_cells; DROP TABLE IF EXISTS bill_lines")


def _append(space: Any) -> StatementSummary | None:
    con = space.con
    # The plain shape: one more header (the summary's), then one summary line, then nothing (blank lines aside).
    others = con.execute("SELECT n, t FROM bill_view WHERE NOT detail ORDER BY n LIMIT 2").fetchall()
    if len(others) != 1 or others[0][1].split(",")[0].strip() != "总交易单数":
        return None
    summary_header_at, summary_header = others[0]
    after = con.execute("SELECT t FROM bill_view WHERE n > ? ORDER BY n LIMIT 2", [summary_header_at]).fetchall()
    if len(after) != 1 or after[0][0] is None:
        return None
    if space.one("SELECT count(*) FROM bill_view WHERE irregular AND n < ?", [summary_header_at])[0]:
        return None
    try:  # the summary through the Python parser's own rules
        parsed = list(bill.parse_trade_bill_rows([f"{summary_header}\n{after[0][0]}\n".encode()]))
    except ChannelError:
        return None  # the full parse raises it, naming the right line
    if len(parsed) != 1 or not isinstance(parsed[0], StatementSummary):
        return None
    start = int(space.one("SELECT coalesce(max(seq) + 1, 0) FROM rows")[0])
    con.execute("""
        INSERT INTO rows
        SELECT kind, object_id, channel_ref, amount, currency, status, fee, fee_currency, occurred_at, attempt_id, n,
               ? + n
        FROM bill_view WHERE detail AND n < ?""", [start, summary_header_at])
    return parsed[0]
