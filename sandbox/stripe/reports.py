"""The Reporting API: report types, asynchronous report runs, and their CSV files, rendered from the ledger.

``balance_change_from_activity.itemized.3`` has one row per balance transaction created in
``[interval_start, interval_end)``; ``balance_change_from_activity.summary.1`` totals them per reporting category
and currency. Amounts are major-unit decimals; ``currency`` is lower-case as in Stripe's files. A run is
``pending`` for ``report_delay_s`` and its file is rendered when it succeeds (a report file never changes
afterwards). Modelled: the sandbox's books are final as they are written, so ``data_available_end`` is the end of
the current Beijing day and today's report shows what is booked so far (Stripe publishes hours later).

Statement faults (the shared control API) change the rendering of one Beijing day, never the ledger; the summary
is computed from the rows as rendered, so a faulty statement is still consistent with itself.
"""

from __future__ import annotations

import copy
import csv
import io
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .currencies import SUPPORTED, major
from .errors import InvalidRequest, NotFound
from .records import BalanceTransaction
from .state import SandboxState, token

BEIJING = timezone(timedelta(hours=8))
ITEMIZED = "balance_change_from_activity.itemized.3"
SUMMARY = "balance_change_from_activity.summary.1"
ITEMIZED_COLUMNS = (
    "balance_transaction_id", "created_utc", "created", "available_on_utc", "available_on", "currency", "gross", "fee",
    "net", "reporting_category", "source_id", "description", "customer_facing_amount", "customer_facing_currency",
    "charge_id", "payment_intent_id", "automatic_payout_id",
)
ITEMIZED_DEFAULT = ("balance_transaction_id", "created_utc", "created", "available_on_utc", "available_on", "currency",
                    "gross", "fee", "net", "reporting_category", "description")
SUMMARY_COLUMNS = ("reporting_category", "currency", "count", "gross", "fee", "net")
_METADATA_COLUMN = re.compile(r"^(payment|refund)_metadata\[([^\[\]]{1,40})\]$")
DATA_AVAILABLE_START = 1_500_000_000
STATEMENT_FAULTS = frozenset({"drop_row", "extra_row", "amount", "currency", "status", "fee", "duplicate_row", "corrupt"})
_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(slots=True)
class Run:
    id: str
    account: str
    report_type: str
    parameters: dict[str, Any]
    created: int
    ready_at: float
    status: str = "pending"
    file_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReportFile:
    id: str
    account: str
    content: bytes
    created: int
    run_id: str


def end_of_beijing_today() -> int:
    today = datetime.now(BEIJING).date()
    return int(datetime(today.year, today.month, today.day, tzinfo=BEIJING).timestamp()) + 86_400


class Reporting:
    def __init__(self, state: SandboxState, report_delay_s: float = 0.0) -> None:
        self._state = state
        self._report_delay_s = report_delay_s
        self._lock = threading.RLock()  # rendering (under the lock) reads the statement faults
        self._runs: dict[str, Run] = {}
        self._files: dict[str, ReportFile] = {}
        self._statement_faults: list[dict[str, Any]] = []

    # -- report types and runs ------------------------------------------------------------------------------

    @staticmethod
    def report_type_json(report_type: str) -> dict[str, Any]:
        if report_type not in (ITEMIZED, SUMMARY):
            raise NotFound(f"No such report type: '{report_type}'", param="id")
        return {"id": report_type, "object": "reporting.report_type", "data_available_start": DATA_AVAILABLE_START,
                "data_available_end": end_of_beijing_today(), "livemode": False, "updated": int(time.time()),
                "version": int(report_type.rsplit(".", 1)[1]),
                "default_columns": list(ITEMIZED_DEFAULT if report_type == ITEMIZED else SUMMARY_COLUMNS)}

    def create_run(self, account: str, report_type: str, parameters: Any) -> dict[str, Any]:
        self.report_type_json(report_type)
        checked = _checked_parameters(report_type, parameters)
        run = Run(token("frr_"), account, report_type, checked, int(time.time()), time.monotonic() + self._report_delay_s)
        with self._lock:
            self._runs[run.id] = run
        return self.run_json(account, run.id)

    def run_json(self, account: str, run_id: str) -> dict[str, Any]:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.account != account:
                raise NotFound(f"No such reporting.report_run: '{run_id}'", param="id")
            if run.status == "pending" and time.monotonic() >= run.ready_at:
                content = self.render(run)
                report_file = ReportFile(token("file_"), account, content, int(time.time()), run.id)
                self._files[report_file.id] = report_file
                run.status, run.file_id = "succeeded", report_file.id
            found = copy.deepcopy(run)
            result_file = self._files.get(found.file_id or "")
        result = None
        if result_file is not None:
            result = {"id": result_file.id, "object": "file", "created": result_file.created,
                      "filename": f"{run_id}.csv", "purpose": "finance_report_run", "size": len(result_file.content),
                      "type": "csv", "url": f"{self._state.base_url}/v1/files/{result_file.id}/contents"}
        return {"id": found.id, "object": "reporting.report_run", "created": found.created, "error": None,
                "livemode": False, "parameters": found.parameters, "report_type": found.report_type,
                "result": result, "status": found.status,
                "succeeded_at": int(time.time()) if found.status == "succeeded" else None}

    def file_content(self, account: str, file_id: str) -> bytes:
        with self._lock:
            found = self._files.get(file_id)
        if found is None or found.account != account:
            raise NotFound(f"No such file upload: '{file_id}'", param="file")
        return found.content

    # -- statement faults -----------------------------------------------------------------------------------

    def add_statement_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        kind = spec.get("kind")
        if kind not in STATEMENT_FAULTS:
            raise ValueError(f"kind must be one of {sorted(STATEMENT_FAULTS)}")
        try:
            date.fromisoformat(str(spec.get("day")))
        except ValueError as exc:
            raise ValueError("day must be YYYY-MM-DD") from exc
        if kind == "extra_row" and (not isinstance(spec.get("out_trade_no"), str) or not isinstance(spec.get("amount"), int)):
            raise ValueError("extra_row needs out_trade_no and an integer amount")
        with self._lock:
            self._statement_faults.append(dict(spec))
        return dict(spec)

    def clear_statement_faults(self) -> None:
        with self._lock:
            self._statement_faults.clear()

    def statement_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f) for f in self._statement_faults]

    # -- rendering ------------------------------------------------------------------------------------------

    def render(self, run: Run) -> bytes:
        params = run.parameters
        start, end = params["interval_start"], params["interval_end"]
        zone = ZoneInfo(params.get("timezone") or "UTC")
        day = datetime.fromtimestamp(start, BEIJING).date().isoformat()
        rows = [_row(t) for t in self._state.ledger_entries(run.account, start, end)]
        faults = [f for f in self.statement_faults() if f.get("day") == day
                  and f.get("merchant_id") in (None, run.account)]
        rows = _apply_faults(rows, faults, end)
        if run.report_type == SUMMARY:
            columns = list(params.get("columns") or SUMMARY_COLUMNS)
            return _csv(columns, [_formatted(r, zone) for r in _summary_rows(rows)], corrupt=False)
        columns = list(params.get("columns") or ITEMIZED_DEFAULT)
        corrupt = any(f["kind"] == "corrupt" for f in faults)
        return _csv(columns, [_formatted(r, zone) for r in rows], corrupt=corrupt)


def _checked_parameters(report_type: str, parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict):
        raise InvalidRequest("parameters is required", param="parameters")
    checked: dict[str, Any] = {}
    for name in ("interval_start", "interval_end"):
        value = str(parameters.get(name, ""))
        if not value.isdigit():
            raise InvalidRequest(f"parameters[{name}] must be a Unix timestamp", param=f"parameters[{name}]")
        checked[name] = int(value)
    if checked["interval_start"] >= checked["interval_end"]:
        raise InvalidRequest("interval_start must be before interval_end", param="parameters[interval_start]")
    if checked["interval_start"] < DATA_AVAILABLE_START or checked["interval_end"] > end_of_beijing_today():
        raise InvalidRequest("The interval must be within data_available_start and data_available_end.",
                             param="parameters[interval_end]")
    timezone_name = parameters.get("timezone")
    if timezone_name is not None:
        try:
            ZoneInfo(str(timezone_name))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidRequest(f"Unknown timezone {timezone_name}", param="parameters[timezone]") from exc
        checked["timezone"] = str(timezone_name)
    columns = parameters.get("columns")
    if columns is not None:
        allowed = ITEMIZED_COLUMNS if report_type == ITEMIZED else SUMMARY_COLUMNS
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidRequest("parameters[columns] must be a list", param="parameters[columns]")
        for column in columns:
            metadata_ok = report_type == ITEMIZED and _METADATA_COLUMN.match(column)
            if column not in allowed and not metadata_ok:
                raise InvalidRequest(f"Unknown column {column} for {report_type}", param="parameters[columns]")
        checked["columns"] = list(columns)
    return checked


def _row(txn: BalanceTransaction) -> dict[str, Any]:
    return {
        "balance_transaction_id": txn.id, "created": txn.created, "available_on": txn.available_on,
        "currency": txn.currency, "gross": txn.amount, "fee": txn.fee, "reporting_category": txn.reporting_category,
        "source_id": txn.source, "description": txn.description or "", "customer_facing_amount": txn.amount,
        "customer_facing_currency": txn.currency, "charge_id": txn.charge, "payment_intent_id": txn.payment_intent,
        "automatic_payout_id": "", "payment_metadata": dict(txn.payment_metadata),
        "refund_metadata": dict(txn.refund_metadata),
    }


def _targets(row: dict[str, Any], fault: dict[str, Any]) -> bool:
    if fault.get("out_refund_no"):
        return bool(row["refund_metadata"].get("refund_id") == fault["out_refund_no"])
    wanted_payment = fault.get("row", "payment") == "payment"
    is_payment = row["reporting_category"] in ("charge", "charge_failure")
    return bool(row["payment_metadata"].get("attempt_id") == fault.get("out_trade_no") and wanted_payment == is_payment)


def _apply_faults(rows: list[dict[str, Any]], faults: list[dict[str, Any]], end: int) -> list[dict[str, Any]]:
    for fault in faults:
        kind = fault["kind"]
        if kind == "extra_row":
            currency = str(fault.get("currency") or "usd").lower()
            rows.append({**_row_template(end - 1), "currency": currency, "customer_facing_currency": currency,
                         "gross": fault["amount"], "customer_facing_amount": fault["amount"],
                         "fee": int(fault.get("fee", 0)), "payment_metadata": {"attempt_id": fault["out_trade_no"]}})
            continue
        result = []
        for row in rows:
            if not _targets(row, fault) or kind == "corrupt":
                result.append(row)
                continue
            if kind == "drop_row":
                continue
            if kind == "duplicate_row":
                result += [row, dict(row)]
                continue
            result.append(_altered(row, fault))
        rows = result
    return rows


def _altered(row: dict[str, Any], fault: dict[str, Any]) -> dict[str, Any]:
    kind, changed = fault["kind"], dict(row)
    if kind == "amount":
        delta = int(fault.get("delta", 1))
        sign = -1 if row["gross"] < 0 else 1
        changed["gross"] = row["gross"] + sign * delta
        changed["customer_facing_amount"] = row["customer_facing_amount"] + sign * delta
    elif kind == "currency":
        currency = str(fault.get("currency", "eur")).lower()
        changed["currency"] = changed["customer_facing_currency"] = currency
    elif kind == "status":
        status = str(fault.get("status", "failed"))
        is_payment = row["reporting_category"] in ("charge", "charge_failure")
        failed = "charge_failure" if is_payment else "refund_failure"
        changed["reporting_category"] = failed if status in ("failed", "fail") else status
    elif kind == "fee":
        changed["fee"] = int(fault.get("fee", 0))
    return changed


def _row_template(created: int) -> dict[str, Any]:
    return {"balance_transaction_id": token("txn_"), "created": created, "available_on": created + 2 * 86_400,
            "reporting_category": "charge", "source_id": token("ch_"), "description": "", "charge_id": "",
            "payment_intent_id": token("pi_"), "automatic_payout_id": "", "refund_metadata": {}}


def _summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["reporting_category"], row["currency"])
        total = totals.setdefault(key, {"reporting_category": key[0], "currency": key[1], "count": 0, "gross": 0, "fee": 0})
        total["count"] += 1
        total["gross"] += row["gross"]
        total["fee"] += row["fee"]
    return list(totals.values())


def _stamp(unix: int, zone: Any) -> str:
    return datetime.fromtimestamp(unix, zone).strftime(_TIME)


def _formatted(row: dict[str, Any], zone: Any) -> dict[str, str]:
    currency = row["currency"]
    money = (lambda v: major(v, currency)) if currency in SUPPORTED else str  # noqa: E731 - unknown: raw integer
    out = {"reporting_category": row["reporting_category"], "currency": currency, "gross": money(row["gross"]),
           "fee": money(row["fee"]), "net": money(row["gross"] - row["fee"])}
    if "count" in row:
        out["count"] = str(row["count"])
        return out
    facing = row["customer_facing_currency"]
    out.update({
        "balance_transaction_id": row["balance_transaction_id"], "created_utc": _stamp(row["created"], UTC),
        "created": _stamp(row["created"], zone), "available_on_utc": _stamp(row["available_on"], UTC),
        "available_on": _stamp(row["available_on"], zone), "source_id": row["source_id"],
        "description": row["description"], "customer_facing_currency": facing,
        "customer_facing_amount": major(row["customer_facing_amount"], facing) if facing in SUPPORTED
        else str(row["customer_facing_amount"]),
        "charge_id": row["charge_id"], "payment_intent_id": row["payment_intent_id"],
        "automatic_payout_id": row["automatic_payout_id"],
    })
    for prefix in ("payment", "refund"):
        for key, value in row[f"{prefix}_metadata"].items():
            out[f"{prefix}_metadata[{key}]"] = value
    return out


def _csv(columns: list[str], rows: list[dict[str, str]], *, corrupt: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    text = buffer.getvalue()
    if corrupt:
        # A row cut short in the middle of the file, as a truncated download or a broken export looks.
        lines = text.split("\n")
        lines.insert(min(2, len(lines) - 1), "txn_corrupt,2024-01-01 00:00:00")
        text = "\n".join(lines)
    return text.encode("utf-8")
