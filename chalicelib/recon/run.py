"""One reconciliation run: a channel account's statement for one Beijing day against the hub's records.

    fetch ──► S3 (streamed, SHA-256 recorded) ──► parse from S3 (stream) ─┐
    hub records (recon index, page by page) ──────────────────────────────┼─► match_statement ─► summary check
    pool left by the latest earlier run ──────────────────────────────────┘        │
        nothing has been written up to here: a malformed statement fails the run and changes nothing
    ─► items + repairs ─► pool snapshot ─► ledger check ─► run record ─► reports (S3) ─► metric

Idempotent per (account, day): the run holds a lease on its record, items have deterministic keys and never
repeat a settled repair, the pool read is a fixed earlier snapshot, and every repair goes through conditional
transitions with deterministic journal ids. Nothing here knows a channel: the adapter's ``fetch_statement``
and ``parse_statement`` are the whole channel-specific part. Rows and records travel as the engine's plain
tuples (``CompactRow`` / ``CompactRecord``); an adapter may offer ``parse_statement_compact`` to yield rows in
that form directly (WeChat Pay does), otherwise its ``StatementRow`` values are converted.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.channels.base import ChannelAdapter, StatementSummary
from chalicelib.channels.registry import adapter
from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.fee_schedule import fee_rate_bps
from chalicelib.domain.clock import beijing_today, iso, require_day_over, utcnow
from chalicelib.domain.errors import ChannelError, NotFound
from chalicelib.domain.value_class import value_class
from chalicelib.observability import alert
from chalicelib.recon import fees, ledger_check, metrics, repo, report, statement_store
from chalicelib.recon.day_records import hub_record_tuples
from chalicelib.recon.fetch import StatementNotReady, fetch
from chalicelib.recon.items import SETTLEMENT_MISMATCH, ItemBook, follow_up_pool
from chalicelib.recon.matching import NEAR_MIDNIGHT, CompactRecord, CompactRow, compact_row, match_day_compact
from chalicelib.recon.model import DayResult, Pooled
from chalicelib.recon.repairs import UNRESOLVED, Repairer
from chalicelib.recon.tally import StatementInvalid, Tally
from chalicelib.storage import config_repo

if TYPE_CHECKING:  # DuckDB is imported by the functions that use it, not by every importer of this module
    from chalicelib.recon import columnar

log = logging.getLogger(__name__)
LEASE_S = 15 * 60  # the worker's timeout: a run that died frees the day after this
Progress = Callable[[str], None]


@value_class
class RunResult:
    run_id: str
    status: str  # completed | failed
    unresolved: int = 0
    items_by_status: dict[str, int] = field(default_factory=dict)
    failure_reason: str | None = None
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "completed"


def _quiet(message: str) -> None:
    log.info("recon: %s", message)


def run_day(account_id: str, day: date, *, progress: Progress = _quiet,
            near_midnight: timedelta = NEAR_MIDNIGHT, now: datetime | None = None,
            refresh_later: bool = True) -> RunResult:
    """Reconcile one account and day. Raises ``DayNotOver`` for a Beijing day that has not ended at ``now``
    (default: the clock), before anything is read or written; ``StatementNotReady`` (retry later) and
    ``RunInProgress``. ``near_midnight``: how close to a Beijing midnight an unmatched item waits in the pool.
    A completed run is followed by a re-run of every later day already reconciled (``refresh_later``), since
    each of them started from the pool the days before it left."""
    require_day_over(day, now=now)
    account = config_repo.channel_account(account_id)
    if account is None:
        raise NotFound(f"no channel account {account_id}", param="account")
    later = repo.completed_days_after(account_id, day, until=beijing_today(now))
    rid = repo.run_id(account_id, day)
    token = repo.begin_run(account_id, account.config.channel, day, now=iso(utcnow()), lease_s=LEASE_S)
    progress(f"run {rid} started")
    try:
        result = _reconcile(account, day, rid, token, progress, near_midnight)
    except StatementNotReady as exc:
        _fail(account_id, day, rid, token, f"statement not available yet: {exc}", retryable=True)
        raise
    except Exception as exc:
        _fail(account_id, day, rid, token, f"internal error: {type(exc).__name__}: {exc}", retryable=True)
        raise
    if result.ok and refresh_later:
        # Each later day started from the pool this day leaves: run them again, in order, so they start from the
        # pool as it is now (each one's own re-run refreshes nothing further: this loop does them all).
        for later_day in later:
            progress(f"refreshing {later_day}, which started from this day's pool")
            try:
                run_day(account_id, later_day, progress=progress, near_midnight=near_midnight, now=now,
                        refresh_later=False)
            except Exception as exc:  # noqa: BLE001 - later days would start from a stale pool: stop, say so
                log.error("refreshing %s after a re-run of %s failed: %s", later_day, day, exc,
                          extra=alert("recon_refresh_failed", account=account_id, day=later_day.isoformat()))
                break
    return result


def _fail(account_id: str, day: date, rid: str, token: str, reason: str, *, retryable: bool) -> RunResult:
    log.error("reconciliation run %s failed: %s", rid, reason,
              extra=alert("recon_run_failed", run_id=rid, account=account_id, day=day.isoformat()))
    repo.finish_run(account_id, day, token, {"status": "failed", "failure_reason": reason, "retryable": retryable,
                                             "finished_at": iso(utcnow())})
    metrics.publish_run(account_id, unresolved=0, failed=True)
    return RunResult(rid, "failed", failure_reason=reason)


class _Counted:
    def __init__(self, records: Iterable[CompactRecord]) -> None:
        self._records, self.count = records, 0

    def __iter__(self) -> Iterator[CompactRecord]:
        count = 0
        try:
            for record in self._records:
                count += 1
                yield record
        finally:
            self.count += count


def statement_tuples(channel: ChannelAdapter, account: ChannelAccount,
                     chunks: Iterable[bytes]) -> Iterator[CompactRow | StatementSummary]:
    """The statement's rows as ``CompactRow`` tuples (and its summary): the adapter's
    ``parse_statement_compact`` when it has one, else its ``StatementRow`` values converted."""
    compact: Callable[[ChannelAccount, Iterable[bytes]], Iterator[CompactRow | StatementSummary]] | None = getattr(
        channel, "parse_statement_compact", None)
    if compact is not None:
        return compact(account, chunks)
    return (item if isinstance(item, StatementSummary) else compact_row(item)
            for item in channel.parse_statement(account, chunks))


def match_statement(account: ChannelAccount, day: date, chunks: Iterable[bytes], records: Iterable[CompactRecord],
                    pool: Iterable[Pooled] = (), *, tally: Tally,
                    near_midnight: timedelta = NEAR_MIDNIGHT) -> DayResult:
    """Parse the statement as it streams, tally its rows, match them against the day's records (read whole
    into the engine's index first), then check the statement's summary against its rows. Raises
    ``ChannelError`` / ``StatementInvalid`` for a malformed statement, before anything is written."""
    parsed = statement_tuples(adapter(account.config.channel), account, chunks)
    result = match_day_compact(day, tally.compact_rows_of(parsed), records, pool, near_midnight=near_midnight)
    tally.check()
    return result


HubSide = list[str] | Iterable[CompactRecord]  # hub export files (DynamoDB JSON lines), or the records themselves


def match_statement_columnar(account: ChannelAccount, day: date, statement_path: str, hub: HubSide,
                             pool: Iterable[Pooled] = (), *, tally: Tally, near_midnight: timedelta = NEAR_MIDNIGHT,
                             space: columnar.Workspace | None = None) -> DayResult:
    """``match_statement`` on the DuckDB engine (``chalicelib.recon.columnar``), with the same result: the
    statement file (as fetched) is loaded into the workspace by the adapter's columnar reader when it has
    one and the file is in its plain shape (its rows counted by DuckDB), else by its parser through the
    tally; the hub side from export files by DuckDB's JSON reader, or from records.
    Raises ``ChannelError`` / ``StatementInvalid`` for a malformed statement, ``ExportMalformed`` for a
    malformed export, before anything is written."""
    if space is None:
        from chalicelib.recon import columnar

        with columnar.Workspace() as own:
            return match_statement_columnar(account, day, statement_path, hub, pool, tally=tally,
                                            near_midnight=near_midnight, space=own)
    load_day(account, day, statement_path, hub, tally=tally, space=space)
    result = space.match(day, pool, near_midnight=near_midnight, release=True)
    tally.check()
    return result


def load_day(account: ChannelAccount, day: date, statement_path: str | None, hub: HubSide | None, *, tally: Tally,
             space: columnar.Workspace) -> None:
    """Load a day into ``space`` (``rows`` and ``records``) and count the statement into ``tally``: the first
    half of ``match_statement_columnar``. DuckDB reads one side at a time (both at once took as long on 1M x 1M
    under its memory limit, for twice the CPU: both spill; bench/README.md), but the statement's file work
    (an adapter's ``stage_statement_columnar``: unzipping, numbering lines, in Python without DuckDB) runs on a
    thread of its own while DuckDB reads the export. Either side may be left out (``None``): a shard step
    reads one file of one side."""
    from chalicelib.recon import hub_records

    channel = adapter(account.config.channel)
    stage: Callable[[ChannelAccount, Any, str], Callable[[], tuple[bool, StatementSummary | None]]] | None = getattr(
        channel, "stage_statement_columnar", None)

    def hub_side(into: columnar.Workspace, reading: Callable[[], None]) -> None:
        if hub is None:
            return
        if isinstance(hub, list) and all(isinstance(path, str) for path in hub):
            hub_records.load_export(into, hub, account_id=account.account_id, day=day,
                                    fee_rate_bps=fee_rate_bps(account), reading=reading)
        else:
            reading()
            into.add_record_tuples(hub)  # type: ignore[arg-type]

    loaded, summary = False, None
    if statement_path is not None and stage is not None:
        path = statement_path
        with ThreadPoolExecutor(max_workers=1) as staging:
            staged: list[Future[Callable[[], tuple[bool, StatementSummary | None]]]] = []

            def begin() -> None:
                # The file work starts once the hub side's reader has made its quick checks: started before, its
                # long GIL-holding steps (bytes.split, join) delayed each of them (0.4 s wall on 1M x 1M).
                if not staged:
                    staged.append(staging.submit(stage, account, space, path))

            try:
                hub_side(space, begin)
            finally:
                begin()  # the hub side ended before reading: the file work still runs
                finish = staged[0].result()  # the file work is over before the hub side's error goes on
        loaded, summary = finish()
    else:
        hub_side(space, lambda: None)
    if loaded:
        tally.count_table(space, summary)
    elif statement_path is not None:  # not in the reader's plain shape: the adapter's parser reads it or says why
        space.add_row_tuples(tally.compact_rows_of(statement_tuples(channel, account, _file_chunks(statement_path))))


def _file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        while chunk := stream.read(statement_store.READ_CHUNK_BYTES):
            yield chunk


def _reconcile(account: ChannelAccount, day: date, rid: str, token: str, progress: Progress,
               near_midnight: timedelta) -> RunResult:
    account_id, channel = account.account_id, account.config.channel
    progress(f"fetching the {channel} statement of {day}")
    tally = Tally()
    try:
        stored = fetch(account, day, token)
        progress(f"stored {stored.size_bytes} bytes at s3://{statement_store.bucket()}/{stored.key} "
                 f"(sha256 {stored.sha256[:12]}…); parsing and matching")
        records = _Counted(hub_record_tuples(account, day))
        try:
            pool, pool_day = repo.pool_for(account_id, day)
        except repo.PreviousDayNotReconciled as exc:
            raise StatementNotReady(str(exc)) from exc  # retried like a late statement
        # The Python engine: on a day the recon index serves it is faster than the DuckDB engine
        # (bench/README.md); the DuckDB engine is what a day split into shards runs (docs/recon-engine.md).
        result = match_statement(account, day, statement_store.read(stored.key, expected_sha256=stored.sha256),
                                 records, pool, tally=tally, near_midnight=near_midnight)
    except (ChannelError, StatementInvalid, statement_store.StatementIntegrityError) as exc:
        message = exc.message if isinstance(exc, ChannelError) else str(exc)
        progress(f"statement rejected: {message}")
        return _fail(account_id, day, rid, token, f"malformed statement: {message}", retryable=False)
    return complete(account, day, rid, token, stored, tally, records.count, result, pool, pool_day, progress)


def complete(account: ChannelAccount, day: date, rid: str, token: str, stored: statement_store.StoredStatement,
             tally: Tally, hub_count: int, result: DayResult, pool: list[Pooled], pool_day: date | None,
             progress: Progress = _quiet) -> RunResult:
    """A matched day's second half: items and repairs, the pool snapshot, the ledger check, the run record,
    reports and metric. ``_reconcile`` calls it after matching in one process; the ReconShards state machine's
    last step after combining its shards (functions/recon_shards.py), holding the run's lease ``token``."""
    account_id, channel = account.account_id, account.config.channel
    progress(f"{tally.rows} statement rows, {hub_count} hub records, {result.matched} matched, "
             f"{len(result.discrepancies)} differences, {len(result.carried)} waiting; repairing")
    book = ItemBook(rid, account_id, channel, day)
    repairer = Repairer(account, adapter(channel), rid)
    for discrepancy in result.discrepancies:
        book.handle(discrepancy, repairer.repair)
    for entry in result.carried:
        if entry.since == day:
            book.waiting(entry)
    for earlier in sorted(follow_up_pool(account_id, day, pool, result.carried, result.discrepancies)):
        _refresh(account_id, channel, earlier)
    repo.save_pool(account_id, day, result.carried)
    progress("booking the channel's fees and checking the ledger")
    currencies = set(account.config.currencies) | set(tally.settled) | set(tally.fees_by_currency)
    fees.book(account_id, day, dict(tally.fees_by_currency), currencies, execution=token)
    ledger = ledger_check.ledger_movements(account_id, day, currencies)
    pool_gap = ledger_check.pool_gap(day, pool, result)
    for gap in ledger_check.gaps(ledger, ledger_check.statement_net(tally.settled, tally.fees_by_currency), pool_gap):
        book.ledger_gap(gap)
    stated = ledger_check.settlement_gap(ledger, tally.summary.settlement if tally.summary else None, pool_gap)
    if stated is not None:
        book.ledger_gap(stated, SETTLEMENT_MISMATCH)
    book.close_unseen()
    return _finish(account, day, rid, token, stored, tally, hub_count, result, ledger, pool_day, progress)


def _totals(tally: Tally, hub_count: int, result: DayResult, ledger: dict[str, int], items: int) -> dict[str, Any]:
    by_currency: dict[str, dict[str, int | None]] = {}
    stated = tally.summary.settlement if tally.summary else None
    for currency in sorted(set(ledger) | set(tally.settled) | set(tally.fees_by_currency)):
        gross = tally.gross.get(currency, {"payments": 0, "refunds": 0})
        by_currency[currency] = {"statement_payments": gross["payments"], "statement_refunds": gross["refunds"],
                                 "statement_settled": tally.settled.get(currency, 0),
                                 "statement_fees": tally.fees_by_currency.get(currency, 0),
                                 "statement_net_settlement": stated.minor if stated and stated.currency == currency
                                 else None,
                                 "ledger_clearing": ledger.get(currency, 0),
                                 "matched": result.matched_amount.get(currency, 0)}
    return {"statement_rows": tally.rows, "hub_records": hub_count, "matched": result.matched, "items": items,
            "waiting": len(result.carried), "by_currency": by_currency}


def _counts(items: list[dict[str, Any]]) -> dict[str, Any]:
    by_status = dict(Counter(str(item["status"]) for item in items))
    return {"items_by_status": by_status, "items_by_kind": dict(Counter(str(item["kind"]) for item in items)),
            "unresolved": sum(count for status, count in by_status.items() if status in UNRESOLVED)}


def refresh_run(account_id: str, day: date) -> None:
    """A completed run's counts and report files, again (an item was closed by a person)."""
    run = repo.get_run(account_id, day)
    if run is not None:
        _refresh(account_id, str(run["channel"]), day)


def _refresh(account_id: str, channel: str, day: date) -> None:
    """An earlier run whose waiting items this run resolved: its figures and report files follow."""
    run = repo.get_run(account_id, day)
    if run is None or run.get("status") != "completed":
        return
    items = [item for _, item in sorted(repo.items(run["run_id"]).items())]
    counts = _counts(items)
    if repo.update_run(account_id, day, counts):
        _write_reports(account_id, channel, day, {**run, **counts}, items)


def _finish(account: ChannelAccount, day: date, rid: str, token: str, stored: statement_store.StoredStatement,
            tally: Tally, hub_count: int, result: DayResult, ledger: dict[str, int], pool_day: date | None,
            progress: Progress) -> RunResult:
    account_id = account.account_id
    items = [item for _, item in sorted(repo.items(rid).items())]
    counts = _counts(items)
    unresolved, by_status = counts["unresolved"], counts["items_by_status"]
    summary = tally.summary
    values: dict[str, Any] = {
        "status": "completed", "finished_at": iso(utcnow()), "completed_at": iso(utcnow()), "retryable": False,
        "statement": {"key": stored.key, "sha256": stored.sha256, "size_bytes": stored.size_bytes,
                      "summary_count": summary.count if summary else None},
        "totals": _totals(tally, hub_count, result, ledger, len(items)),
        **counts, "pool_from": pool_day.isoformat() if pool_day else None,
    }
    run = {**(repo.get_run(account_id, day) or {}), **values}
    progress("writing the report files")
    values["reports"] = _write_reports(account_id, account.config.channel, day, run, items)
    repo.finish_run(account_id, day, token, values)
    metrics.publish_run(account_id, unresolved=unresolved, failed=False)
    progress(f"run {rid} completed: {len(items)} differences, {unresolved} unresolved")
    return RunResult(rid, "completed", unresolved, by_status, run={**run, **values})


def _write_reports(account_id: str, channel: str, day: date, run: dict[str, Any],
                   items: list[dict[str, Any]]) -> dict[str, str]:
    from chalicelib.storage.aws import client

    prefix = f"reports/{channel}/{account_id}/{day.isoformat()}"
    files = {"csv": (f"{prefix}/differences.csv", report.differences_csv(items), "text/csv; charset=utf-8"),
             "html": (f"{prefix}/summary.html", report.summary_html(run, items), "text/html; charset=utf-8")}
    for key, body, content_type in files.values():
        client("s3").put_object(Bucket=statement_store.bucket(), Key=key, Body=body, ContentType=content_type)
    return {name: key for name, (key, _, _) in files.items()}
