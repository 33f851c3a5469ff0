"""JSON logs, one object a line, and the metrics a person is paged on.

Logs carry whatever ``extra`` fields the caller attached (request, payment ids). Metrics are written as
CloudWatch embedded metric format (EMF) documents, one JSON line on stdout: Lambda ships stdout to the
function's log group and CloudWatch extracts the metrics from it, so publishing costs no API call, no IAM
permission and no wait on the request path (the synchronous ``PutMetricData`` it replaces did all three).
Written by hand rather than through Powertools Metrics: that needs every handler decorated to flush, and its
import would weigh on every function's cold start for what is one ``json.dumps``.

Three kinds of metric, each a closed catalogue that ``infra/alerting.py`` turns into alarms:

* ``alert(name, ...)``: something a person must look at (money that does not add up, a chargeback). Namespace
  ``PayHub/Alerts``, one metric per name, dimension ``Stage``.
* ``security_event(name, ...)``: something that looks like an attack or a compromised key (a forged callback).
  Namespace ``PayHub/Security``, dimension ``Stage``.
* ``channel_call(...)``: every call to a channel, with ``Channel`` and ``Account`` dimensions;
  ``ChannelCallFailed`` is 0 or 1 per call, so its average is the account's error rate.

Context fields (ids, channel, account) travel in the EMF document as plain properties, searchable in Logs
Insights, and never as dimensions on alerts: dimension values must come from a small known set, not from
what a caller sent us.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

ALERTS_NAMESPACE = "PayHub/Alerts"
SECURITY_NAMESPACE = "PayHub/Security"
CHANNELS_NAMESPACE = "PayHub/Channels"
CHANNEL_CALLS = "ChannelCalls"
CHANNEL_CALL_FAILED = "ChannelCallFailed"
CHANNEL_LATENCY = "ChannelLatency"

# name -> what it means. docs/alerts-and-retention.md says what a person does about each one; a test keeps
# every name used in the code in this table, and the stack makes one alarm per entry.
ALERTS: dict[str, str] = {
    "amount_mismatch": "a channel reports an amount other than the one the hub holds; not applied",
    "callback_business_mismatch": "a verified callback names another merchant, order or amount; not applied",
    "chargeback": "the channel took money back from a settled payment (PayPal reversal)",
    "orphan_money": "a channel took money under an attempt the hub has no record of; it is refunded",
    "orphan_amount_unknown": "a channel reports money for an unknown attempt without its amount",
    "refund_success_after_failure": "a refund the hub recorded as failed succeeded at the channel",
    "settlement_held": "reconciliation held a payment's money back from the merchant",
    "recon_run_failed": "a reconciliation run could not complete (statement missing or malformed)",
    "webhook_target_refused": "a merchant's webhook URL points at an address the hub will not call",
    "statement_mismatch": "a monthly statement does not add up with the ledger's totals; not published",
    "recon_refresh_failed": "a re-run of a day could not refresh a later day; the days after it keep a stale pool",
    "reserve_recon_unresolved": "the reserve's bank statement of a day left differences with the ledger",
    "settlement_returned": "the bank refused or sent back a merchant's settlement; it is owed again",
    "settlement_no_payee": "a merchant's settlement waits: its terms name no bank account to pay",
    "payout_no_bank": "payouts or settlements wait: their reserve has no bank account configured",
    "payout_outcome_unknown": "the bank's answer about a transfer out could not be trusted: asked again, never undone",
}
SECURITY_EVENTS: dict[str, str] = {
    "callback_rejected": "a callback failed verification (signature, timestamp, decryption, envelope)",
    "callback_unknown_account": "a callback arrived for an account that does not exist or is of another channel",
    "answer_rejected": "a channel's answer failed its signature check or named another order",
    "bill_link_forged": "a payer bill link or list cursor came back altered (not signed by the hub)",
    "invoice_callback_unknown": "an invoice provider push named an order the hub never made, or another merchant's",
    "oauth_state_refused": "a payer came back from WeChat's web authorisation with a state this session never issued "
                           "or already used",
}

# Where EMF documents go: stdout in Lambda. Tests replace it to read what was published.
MetricSink = Callable[[str], None]


def _stdout(line: str) -> None:
    if os.environ.get("PAYHUB_LOG_FORMAT") == "text":  # the local stack: no CloudWatch to read it, keep quiet
        logging.getLogger("payhub.metrics").debug("%s", line)
        return
    sys.stdout.write(line + "\n")
    sys.stdout.flush()  # a frozen container must not keep an alert in a buffer


_sink: MetricSink = _stdout


def set_metric_sink(sink: MetricSink | None) -> MetricSink:
    """Send EMF documents to ``sink`` (None: back to stdout); returns the previous one."""
    global _sink
    previous, _sink = _sink, sink or _stdout
    return previous


def stage() -> str:
    """The stage every metric is published under (the ``Stage`` dimension the alarms watch)."""
    return os.environ.get("PAYHUB_STAGE", "local")


def emit(namespace: str, metrics: Mapping[str, tuple[float, str]], dimension_sets: list[list[str]],
         properties: Mapping[str, Any]) -> None:
    """One EMF document: ``metrics`` maps name -> (value, unit); dimension values come from ``properties``."""
    for dimension_set in dimension_sets:
        for dimension in dimension_set:
            if not isinstance(properties.get(dimension), str) or not properties[dimension]:
                raise ValueError(f"metric dimension {dimension!r} needs a non-empty string value")
    document: dict[str, Any] = {k: v for k, v in properties.items() if v is not None}
    document.update({name: value for name, (value, _) in metrics.items()})
    document["_aws"] = {
        "Timestamp": int(time.time() * 1000),
        "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": dimension_sets,
                               "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()]}],
    }
    try:
        _sink(json.dumps(document, ensure_ascii=False, default=str))
    except (OSError, ValueError):  # a closed stdout must not turn an alert into a failed payment
        logging.getLogger(__name__).exception("could not write metric %s", list(metrics))


def alert(name: str, **context: Any) -> dict[str, Any]:
    """Publish one alert; returns the ``extra`` for the log line that tells a person what happened."""
    _count(ALERTS_NAMESPACE, ALERTS, name, "alert", context)
    return {"alert": name, **context}


def security_event(name: str, **context: Any) -> dict[str, Any]:
    """Publish one security event; returns the ``extra`` for its log line."""
    _count(SECURITY_NAMESPACE, SECURITY_EVENTS, name, "security_event", context)
    return {"security_event": name, **context}


def _count(namespace: str, catalogue: Mapping[str, str], name: str, kind: str, context: Mapping[str, Any]) -> None:
    if name not in catalogue:
        # Still published (a person should hear of it), under its own name, but no alarm watches it yet.
        logging.getLogger(__name__).error("%s %r is not in the catalogue; add it and its alarm", kind, name)
    emit(namespace, {name: (1, "Count")}, [["Stage"]], {"Stage": stage(), kind: name, **context})


def channel_call(channel: str, account_id: str, operation: str, *, failed: bool, elapsed_ms: float,
                 code: str | None = None) -> None:
    """One call to a channel: counted, timed, and marked failed or not (per channel account)."""
    emit(CHANNELS_NAMESPACE,
         {CHANNEL_CALLS: (1, "Count"), CHANNEL_CALL_FAILED: (1 if failed else 0, "Count"),
          CHANNEL_LATENCY: (round(elapsed_ms, 1), "Milliseconds")},
         [["Stage", "Channel", "Account"]],
         {"Stage": stage(), "Channel": channel, "Account": account_id, "operation": operation,
          "channel_code": code})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (and redacted) by a filter: chalicelib/channels/log_redaction.py
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging() -> None:
    """Idempotent; Lambda's runtime installs its own handler, which we replace so every line is JSON."""
    root = logging.getLogger()
    if os.environ.get("PAYHUB_LOG_FORMAT") == "text":  # the local stack keeps its readable one-line format
        return
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
    for noisy in ("botocore", "urllib3", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
