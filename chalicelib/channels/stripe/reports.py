"""Fetching a day's statement: two Reporting API runs (itemized + summary balance change), downloaded as CSV.

For Beijing day D the interval is [D 00:00 +08:00, D+1 00:00 +08:00), with ``timezone=Asia/Shanghai`` so the
local ``created`` column shows Beijing time. A run is only started once the report type's
``data_available_end`` covers the whole day; before that the statement is "not published yet" (retryable).
Runs are asynchronous: the run is polled for a bounded time, then the file (``result.url`` on
files.stripe.com) is downloaded with the secret key. Only the file's *path* is taken from the answer: the key
goes to the configured files host, never to a host named in a response.

The stream handed to ``parse_statement`` is the itemized CSV, one blank line, then the summary CSV.
Every run is a new one (its Idempotency-Key is per fetch): a report file is fixed when it is generated, and a
fetch must see the data as it is now.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from chalicelib.channels.stripe.client import StripeClient
from chalicelib.channels.stripe.credentials import StripeCredentials
from chalicelib.domain.errors import ChannelError, InvalidRequest

BEIJING = timezone(timedelta(hours=8))
REPORT_TIMEZONE = "Asia/Shanghai"
ITEMIZED_REPORT = "balance_change_from_activity.itemized.3"
SUMMARY_REPORT = "balance_change_from_activity.summary.1"
ITEMIZED_COLUMNS = (
    "balance_transaction_id", "created_utc", "created", "reporting_category", "currency", "gross", "fee", "net",
    "source_id", "charge_id", "payment_intent_id", "customer_facing_amount", "customer_facing_currency",
    "description", "payment_metadata[attempt_id]", "refund_metadata[refund_id]",
)
SUMMARY_COLUMNS = ("reporting_category", "currency", "count", "gross", "fee", "net")
POLL_INTERVAL_S = 2.0
POLL_BUDGET_S = 60.0
CHUNK_BYTES = 64 * 1024
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def day_interval(day: str) -> tuple[int, int]:
    try:
        if not _DAY.match(day):
            raise ValueError(day)
        start_day = date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidRequest("statement day must be YYYY-MM-DD", param="day") from exc
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=BEIJING)
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())


class ReportFetcher:
    def __init__(self, client: StripeClient, *, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, poll_budget_s: float = POLL_BUDGET_S) -> None:
        self._client = client
        self._sleep = sleep
        self._monotonic = monotonic
        self._poll_budget_s = poll_budget_s

    def fetch(self, credentials: StripeCredentials, day: str) -> Iterator[bytes]:
        start, end = day_interval(day)
        fetch_token = secrets.token_hex(8)
        files = []
        for report_type, columns in ((ITEMIZED_REPORT, ITEMIZED_COLUMNS), (SUMMARY_REPORT, SUMMARY_COLUMNS)):
            self._check_available(credentials, report_type, start, end)
            parameters = {"interval_start": start, "interval_end": end, "timezone": REPORT_TIMEZONE,
                          "columns": list(columns)}
            result = self._run(credentials, report_type, parameters, f"payhub:report:{report_type}:{day}:{fetch_token}")
            files.append(self._download(credentials, result))
        itemized, summary = files
        data = (itemized if itemized.endswith(b"\n") else itemized + b"\n") + b"\n" + summary
        return (data[offset:offset + CHUNK_BYTES] for offset in range(0, max(len(data), 1), CHUNK_BYTES))

    def _check_available(self, credentials: StripeCredentials, report_type: str, start: int, end: int) -> None:
        answer = self._client.call_json(credentials, "GET", f"/v1/reporting/report_types/{report_type}")
        available_start, available_end = answer.get("data_available_start"), answer.get("data_available_end")
        if not isinstance(available_start, int) or not isinstance(available_end, int):
            raise ChannelError(f"report type {report_type} lacks its data availability")
        if available_end < end:
            raise ChannelError(f"Stripe has not published {report_type} data for the whole day yet",
                               channel_code="REPORT_NOT_READY", retryable=True)
        if available_start > start:
            raise ChannelError(f"Stripe has no {report_type} data that old", channel_code="REPORT_UNAVAILABLE")

    def _run(self, credentials: StripeCredentials, report_type: str, parameters: Mapping[str, Any],
             key: str) -> Mapping[str, Any]:
        run = self._client.call_json(credentials, "POST", "/v1/reporting/report_runs",
                                     {"report_type": report_type, "parameters": parameters}, idempotency_key=key)
        deadline = self._monotonic() + self._poll_budget_s
        while True:
            run_id, status = run.get("id"), run.get("status")
            if status == "succeeded":
                result = run.get("result")
                if not isinstance(result, Mapping):
                    raise ChannelError(f"report run {run_id} succeeded without a file")
                return result
            if status == "failed":
                raise ChannelError(f"report run {run_id} failed: {str(run.get('error'))[:200]}",
                                   channel_code="REPORT_FAILED", retryable=True)
            if not isinstance(run_id, str) or self._monotonic() >= deadline:
                raise ChannelError(f"report run {run_id} is still {status}", channel_code="REPORT_PENDING",
                                   retryable=True)
            self._sleep(POLL_INTERVAL_S)
            run = self._client.call_json(credentials, "GET", f"/v1/reporting/report_runs/{run_id}")

    def _download(self, credentials: StripeCredentials, result: Mapping[str, Any]) -> bytes:
        url = result.get("url")
        path = urlsplit(url).path if isinstance(url, str) else ""
        if not path.startswith("/v1/files/"):
            raise ChannelError("report file has no Stripe file URL")
        data = self._client.call(credentials, "GET", path, base_url=credentials.files_base_url).body
        size = result.get("size")
        # Stripe gives no hash for report files; the size in the File object is the integrity check it offers.
        if isinstance(size, int) and len(data) != size:
            raise ChannelError(f"report file is {len(data)} bytes, the File object says {size}", retryable=True)
        return data
