"""Hub records in the form a run reads them in bulk: DynamoDB JSON lines of the state table's recon-indexed items.

One item per line, as DynamoDB writes a table export to S3 (format DYNAMODB_JSON, files ``data/*.json.gz``,
each line ``{"Item": {"recon_sk": {"S": "payment#att_..."}, "amount": {"N": "8888"}, ...}}``; an incremental
export's lines carry the item as ``NewImage``, and lines without one, deletions, are skipped), or the items of
``recon`` index query pages written one per line, bare. gzip is recognised by
its magic bytes, several concatenated members included. Items without ``recon_sk`` (payments, events and the
rest of a whole-table export) are skipped, and so are other partitions when ``account_id`` / ``day`` are given.

The mapping is the per-day index query's (``chalicelib.recon.day_records.record_from_item``): kind and
object_id from ``recon_sk``, ``occurred_at`` = ``recon_at``, channel_ref = ``channel_transaction_id`` (payments)
or ``channel_refund_id`` (refunds), and, given the account's fee rate, the expected fee of payments (basis
points of the amount, rounded half up to the minor unit). Refunds are never fee-checked.

``read_export`` yields ``HubRecord`` values; ``read_export_compact`` yields the ``CompactRecord`` tuples that
``DayMatcher.add_record_tuples`` indexes without building a dataclass per record (what a 100-million-row day
needs). Anything malformed raises ``ExportMalformed`` naming the line, before the bad record is yielded.
"""

from __future__ import annotations

import codecs
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import IO, Any

from chalicelib.channels.base import StatementKind
from chalicelib.domain.money import SUPPORTED_CURRENCIES, Money
from chalicelib.gzip_members import GzipCutShort, inflate_members
from chalicelib.recon.matching import _SEP, CompactRecord
from chalicelib.recon.model import HubRecord

READ_BYTES = 1 << 16  # gzip inflates ~9x: 64 KiB reads keep each decoded block in cache (1 MiB ones cost ~0.6 µs a line more)
_GZIP_MAGIC = b"\x1f\x8b"


class ExportMalformed(ValueError):
    """A hub export line that is not a well-formed recon-indexed attempt or refund item."""


def read_export(stream: IO[bytes] | Iterable[bytes], *, account_id: str | None = None, day: date | None = None,
                fee_rate_bps: int | None = None) -> Iterator[HubRecord]:
    """Every recon-indexed record of the export (of ``account_id`` and ``day`` when given), as ``HubRecord``."""
    for record in read_export_compact(stream, account_id=account_id, day=day, fee_rate_bps=fee_rate_bps):
        yield hub_record(record)


def read_export_compact(stream: IO[bytes] | Iterable[bytes], *, account_id: str | None = None, day: date | None = None,
                        fee_rate_bps: int | None = None) -> Iterator[CompactRecord]:
    """``read_export`` as ``CompactRecord`` tuples (occurred_at stays the item's ISO 8601 text, checked)."""
    if fee_rate_bps is not None and not 0 <= fee_rate_bps <= 10_000:
        raise ValueError("fee_rate_bps must be 0..10000")
    wanted_day = day.isoformat() if day is not None else None
    parse_time = datetime.fromisoformat
    for number, line in enumerate(_lines(stream), start=1):
        if not line.strip():
            continue
        try:
            document = _json(line)
            item: dict[str, Any] = document.get("Item") or document.get("NewImage") or document
            sort_key = item.get("recon_sk")
            if sort_key is None:
                continue
            partition_account, _, partition_day = item["recon_pk"]["S"].rpartition("#")
            if (account_id is not None and partition_account != account_id) or (
                    wanted_day is not None and partition_day != wanted_day):
                continue
            kind, _, object_id = sort_key["S"].partition("#")
            amount, currency, status = int(item["amount"]["N"]), item["currency"]["S"], item["status"]["S"]
            occurred_at = item["recon_at"]["S"]
            if parse_time(occurred_at).utcoffset() is None:
                raise ValueError(f"recon_at {occurred_at!r} has no offset")
            if not object_id:
                raise ValueError(f"recon_sk {sort_key['S']!r} has no object id")
            if kind == "payment":
                channel_ref, attempt_id = _text(item.get("channel_transaction_id")), None
                fee = None if fee_rate_bps is None else expected_fee_minor(amount, fee_rate_bps)
            elif kind == "refund":
                channel_ref, attempt_id, fee = _text(item.get("channel_refund_id")), _text(item.get("attempt_id")), None
            else:
                raise ValueError(f"recon_sk {sort_key['S']!r} is neither payment# nor refund#")
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ExportMalformed(f"hub export line {number}: {_why(exc)}") from exc
        yield (kind, object_id, channel_ref, amount, currency, status, occurred_at, attempt_id, fee,
               None if fee is None else currency)


_decode_one = json.JSONDecoder().raw_decode


def _json(line: str) -> Any:
    """``json.loads(line)``: the same value or error. A line that is one JSON value with nothing around it (what an
    export writes) is decoded directly, skipping ``loads``' whitespace scans (~0.8 µs of a 760-byte item's ~4.5)."""
    try:
        value, end = _decode_one(line)
    except ValueError:
        return json.loads(line)  # raises with loads' own words (leading space or BOM, broken JSON)
    return value if end == len(line) else json.loads(line)


def hub_record(record: CompactRecord) -> HubRecord:
    kind, object_id, channel_ref, amount, currency, status, occurred_at, attempt_id, fee, fee_currency = record
    return HubRecord(
        kind=StatementKind(kind), object_id=object_id, channel_ref=channel_ref, amount=Money(amount, currency),
        status=status,
        occurred_at=datetime.fromisoformat(occurred_at) if isinstance(occurred_at, str) else occurred_at,
        attempt_id=attempt_id, expected_fee=None if fee is None else Money(fee, fee_currency or currency),
    )


def expected_fee_minor(amount_minor: int, rate_bps: int) -> int:
    """``rate_bps`` basis points of the amount, rounded half up (away from zero) to the minor unit."""
    magnitude = (abs(amount_minor) * rate_bps + 5_000) // 10_000
    return magnitude if amount_minor >= 0 else -magnitude


def _text(value: Any) -> str | None:
    if value is None or value.get("NULL") is True:
        return None
    text = value["S"]
    if not isinstance(text, str):
        raise TypeError(f"expected a string attribute, got {value!r}")
    return text


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing attribute {exc.args[0]!r}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at column {exc.colno})"
    return str(exc) or type(exc).__name__


def _chunks(stream: IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    read = getattr(stream, "read", None)
    if read is None:
        yield from stream  # type: ignore[misc]
        return
    while chunk := read(READ_BYTES):
        yield chunk


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from inflate_members(chunks)  # exports concatenate members
    except GzipCutShort as exc:
        raise ExportMalformed("hub export: gzip stream ends in the middle of a member") from exc
    except zlib.error as exc:
        raise ExportMalformed(f"hub export: broken gzip stream ({exc})") from exc


def _lines(stream: IO[bytes] | Iterable[bytes]) -> Iterator[str]:
    chunks = _chunks(stream)
    head = b""
    for chunk in chunks:  # enough bytes to recognise gzip
        head += chunk
        if len(head) >= len(_GZIP_MAGIC):
            break
    source: Iterable[bytes] = _gunzip(_prepend(head, chunks)) if head[:2] == _GZIP_MAGIC else _prepend(head, chunks)
    # Decode whole chunks, not lines: json.loads of a str skips the per-line encoding sniffing of bytes.
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending = ""
    try:
        for data in source:
            *complete, pending = (pending + decoder.decode(data)).split("\n")
            yield from complete
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise ExportMalformed(f"hub export: not UTF-8 ({exc.reason})") from exc
    if pending:
        yield pending


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


# --- the same export read by DuckDB ------------------------------------------------------------------------

_S = "STRUCT(S VARCHAR)"
_S_OR_NULL = 'STRUCT(S VARCHAR, "NULL" BOOLEAN)'
_ITEM = (f"STRUCT(recon_pk {_S}, recon_sk {_S}, amount STRUCT(N VARCHAR), currency {_S}, status {_S}, "
         f"recon_at {_S}, channel_transaction_id {_S_OR_NULL}, channel_refund_id {_S_OR_NULL}, "
         f"attempt_id {_S_OR_NULL})")
# What the Python reader accepts without a second look; anything else is left to it (it accepts or names the line).
_PLAIN_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?(Z|[+-]\d{2}:\d{2})$"


def load_export(space: Any, paths: list[str], *, account_id: str | None = None, day: date | None = None,
                fee_rate_bps: int | None = None, reading: Callable[[], None] | None = None) -> int:
    """``read_export_compact`` of the files as ``space.records`` (a ``columnar.Workspace`` whose ``records``
    table is still empty: it becomes a view over the items read), read by DuckDB's JSON reader; returns how
    many records. The same records (in DuckDB's order: ``space.in_order["records"]`` reads them again in the
    files' order): when any line is one the SQL does not read exactly as
    the Python reader does (broken JSON, a bare item, an amount that is not plain digits, an irregular time, a
    malformed attribute...), the files go through ``read_export_compact`` instead, which reads them or raises
    ``ExportMalformed`` naming the line. Lines of other partitions are skipped before their values are
    checked, as the Python reader skips them. ``reading`` is called once, when the files are about to be read
    (after the quick checks on the workspace): a caller starts then the work it runs beside the reader."""
    import duckdb  # here, not at the top: the run's reader of index pages (day_records) does not need it

    if fee_rate_bps is not None and not 0 <= fee_rate_bps <= 10_000:
        raise ValueError("fee_rate_bps must be 0..10000")
    replaceable = space.replaceable("records")
    if reading is not None:
        reading()
    if not replaceable:
        return _load_export_in_python(space, paths, account_id, day, fee_rate_bps)
    con = space.con
    wanted_day = day.isoformat() if day is not None else None
    # The partition's filter: the Python reader cuts recon_pk at its last '#'. A date holds no '#', so when both
    # halves are given that is the whole key's equality (cheaper than cutting every line's key).
    if account_id is not None and wanted_day is not None:
        wanted = "pk = $account || '#' || $day"
    else:
        wanted = ("(($account IS NULL OR left(pk, length(pk) - strpos(reverse(pk), '#')) = $account)"
                  " AND ($day IS NULL OR right(pk, strpos(reverse(pk), '#') - 1) = $day))")
    currencies = ", ".join(f"'{currency}'" for currency in sorted(SUPPORTED_CURRENCIES))
    separator = f"chr({ord(_SEP)})"
    # One pass: the fields of every wanted recon-indexed line; whether SQL reads it exactly (``irregular``); and
    # whether it is what the engine asks of records (``unacceptable``: an unsupported currency, the index's separator
    # in a text it joins), checked while the text is at hand rather than by reading it back.
    try:
        space.store("export_lines", f"""
          SELECT *, (currency NOT IN ({currencies}) OR contains(coalesce(channel_ref, ''), {separator})
                     OR contains(coalesce(attempt_id, ''), {separator})) AS unacceptable
          FROM (
            SELECT kind = 'refund' AS refund, object_id,
                   CASE WHEN kind = 'payment' THEN transaction_ref ELSE refund_ref END AS channel_ref,
                   amount, currency, status, occurred_at, CASE WHEN kind = 'refund' THEN attempt END AS attempt_id,
                   (bare OR sk IS NULL OR pk IS NULL OR NOT has_sep OR kind NOT IN ('payment', 'refund') OR object_id = ''
                    OR coalesce(CAST(amount AS VARCHAR) <> amount_text, true)
                    OR currency IS NULL OR status IS NULL
                    OR NOT regexp_matches(coalesce(occurred_at, ''), '{_PLAIN_TIME}')
                    OR TRY_CAST(left(occurred_at, 10) AS DATE) IS NULL
                    OR odd_text) AS irregular
            FROM (SELECT it IS NULL AS bare, it.recon_sk.S AS sk, it.recon_pk.S AS pk,
                         split_part(it.recon_sk.S, '#', 1) AS kind,
                         substr(it.recon_sk.S, strpos(it.recon_sk.S, '#') + 1) AS object_id,
                         contains(it.recon_pk.S, '#') AS has_sep,
                         it.amount.N AS amount_text, TRY_CAST(it.amount.N AS BIGINT) AS amount,
                         it.currency.S AS currency, it.status.S AS status,
                         it.recon_at.S AS occurred_at, it.channel_transaction_id.S AS transaction_ref,
                         it.channel_refund_id.S AS refund_ref, it.attempt_id.S AS attempt,
                         -- an attribute present but neither {{"S": text}} nor {{"NULL": true}}
                         (it.channel_transaction_id IS NOT NULL AND it.channel_transaction_id.S IS NULL
                          AND it.channel_transaction_id."NULL" IS NOT TRUE)
                         OR (it.channel_refund_id IS NOT NULL AND it.channel_refund_id.S IS NULL
                             AND it.channel_refund_id."NULL" IS NOT TRUE)
                         OR (it.attempt_id IS NOT NULL AND it.attempt_id.S IS NULL AND it.attempt_id."NULL" IS NOT TRUE)
                         AS odd_text
                  -- a line without Item (an incremental export's NewImage, a bare item, a deletion) is left to
                  -- the Python reader with the rest: a full export writes Item on every line
                  FROM (SELECT Item AS it FROM read_json($paths, format='newline_delimited',
                                                         maximum_object_size=16777216, columns={{'Item': '{_ITEM}'}}))
                  WHERE it.recon_sk IS NOT NULL OR it IS NULL)
            WHERE pk IS NULL OR NOT has_sep OR bare OR {wanted})""",  # noqa: S608 - names and currency codes of our own; values go as parameters
                    {"paths": paths, "account": account_id, "day": wanted_day})
    except duckdb.Error:  # broken JSON, a value of another shape...: the Python reader words it
        space.drop_stored("export_lines")
        return _load_export_in_python(space, paths, account_id, day, fee_rate_bps)
    # One scan of flags: whether every line is regular, and what else the engine asks of records
    # (``Workspace.vouch``): no unacceptable line, fewer than 256 status words.
    irregular, unacceptable, statuses = space.one("""
        SELECT count(*) FILTER (WHERE irregular), count(*) FILTER (WHERE unacceptable), count(DISTINCT status)
        FROM export_lines""")
    if irregular:
        space.drop_stored("export_lines")
        return _load_export_in_python(space, paths, account_id, day, fee_rate_bps)
    con.execute("DROP TABLE records")
    # The expected fee is computed where it is read (payments, given a rate), not stored for every record.
    fee = "NULL" if fee_rate_bps is None else f"sign(amount) * ((abs(amount) * {int(fee_rate_bps)} + 5000) // 10000)"
    con.execute(f"""
        CREATE VIEW records AS
        SELECT CASE WHEN refund THEN 'refund' ELSE 'payment' END AS kind, object_id, channel_ref, amount, currency,
               status, occurred_at, attempt_id, CASE WHEN NOT refund THEN {fee} END AS fee,
               CASE WHEN NOT refund AND {fee} IS NOT NULL THEN currency END AS fee_currency, rowid AS seq
        FROM export_lines""")  # noqa: S608 - an int of ours
    if not unacceptable and statuses < 256:  # with the regular lines' checks, all that the engine asks of records
        space.vouch("records")
    # DuckDB's read does not keep the files' order (the workspace does not ask it to): where the order decides,
    # the records are read again, in order, by the Python reader.
    space.in_order["records"] = lambda: _records_of_files(paths, account_id, day, fee_rate_bps)
    return int(space.count("records"))


def _load_export_in_python(space: Any, paths: list[str], account_id: str | None, day: date | None,
                           fee_rate_bps: int | None) -> int:
    return int(space.add_record_tuples(_records_of_files(paths, account_id, day, fee_rate_bps)))


def _records_of_files(paths: list[str], account_id: str | None, day: date | None,
                      fee_rate_bps: int | None) -> Iterator[CompactRecord]:
    """``read_export_compact`` of the files, one after the other: the records in the files' order."""
    for path in paths:
        with open(path, "rb") as stream:
            yield from read_export_compact(stream, account_id=account_id, day=day, fee_rate_bps=fee_rate_bps)
