"""Alerts, security events, channel calls and reconciliation outcomes are published as CloudWatch embedded metric
format (EMF): one JSON document a line, which CloudWatch turns into the metrics the stack's alarms watch."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from chalicelib import observability
from chalicelib.channels.base import ChecksAmounts
from chalicelib.channels.measured import instrument
from chalicelib.channels.paypal import PayPalAdapter
from chalicelib.domain.errors import ChannelError, ChannelOrderExists
from chalicelib.recon import metrics as recon_metrics

ROOT = Path(__file__).resolve().parents[3]


def assert_valid_emf(document: dict[str, Any]) -> None:
    """The rules CloudWatch applies before it extracts a metric (a document breaking one is dropped silently)."""
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] and len(directive["Metrics"]) <= 100
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            assert all(isinstance(document[name], str) and document[name] for name in dimension_set)
        for metric in directive["Metrics"]:
            assert isinstance(document[metric["Name"]], int | float)
            assert metric["Unit"] in {"Count", "Milliseconds"}


def test_an_alert_is_one_emf_document_and_the_log_extra_keeps_its_name(published_metrics, monkeypatch):
    monkeypatch.setenv("PAYHUB_STAGE", "prod")
    extra = observability.alert("amount_mismatch", source="callback", object_id="att_x")
    assert extra == {"alert": "amount_mismatch", "source": "callback", "object_id": "att_x"}
    (document,) = published_metrics
    assert_valid_emf(document)
    assert document["_aws"]["CloudWatchMetrics"] == [{
        "Namespace": "PayHub/Alerts", "Dimensions": [["Stage"]],
        "Metrics": [{"Name": "amount_mismatch", "Unit": "Count"}]}]
    assert (document["Stage"], document["amount_mismatch"], document["object_id"]) == ("prod", 1, "att_x")
    assert published_metrics.values("PayHub/Alerts", "amount_mismatch", Stage="prod") == [1]


def test_a_security_event_is_counted_under_its_own_namespace(published_metrics):
    extra = observability.security_event("callback_rejected", channel="wechatpay", account="wx-main")
    assert extra["security_event"] == "callback_rejected"
    assert published_metrics.values("PayHub/Security", "callback_rejected", Stage="local") == [1]
    assert_valid_emf(published_metrics[0])


def test_a_name_missing_from_the_catalogue_is_still_published_and_logged(published_metrics, caplog):
    with caplog.at_level(logging.ERROR):
        observability.alert("something_new")
    assert published_metrics.values("PayHub/Alerts", "something_new", Stage="local") == [1]
    assert "not in the catalogue" in caplog.text


def test_a_dimension_without_a_value_is_refused():
    with pytest.raises(ValueError, match="'Account'"):
        observability.emit("PayHub/X", {"M": (1, "Count")}, [["Stage", "Account"]], {"Stage": "dev"})


def test_a_broken_stdout_does_not_turn_an_alert_into_an_error(caplog):
    def broken(_: str) -> None:
        raise OSError("stdout closed")

    previous = observability.set_metric_sink(broken)
    try:
        with caplog.at_level(logging.ERROR):
            assert observability.alert("chargeback")["alert"] == "chargeback"
    finally:
        observability.set_metric_sink(previous)
    assert "could not write metric" in caplog.text


def test_stdout_gets_one_json_line_per_metric(capsys, monkeypatch):
    monkeypatch.delenv("PAYHUB_LOG_FORMAT", raising=False)
    previous = observability.set_metric_sink(None)  # None: the default, stdout, as in Lambda
    try:
        observability.alert("settlement_held", attempt_id="att_1")
    finally:
        observability.set_metric_sink(previous)
    (line,) = capsys.readouterr().out.splitlines()
    assert_valid_emf(json.loads(line))


def _literal_names(function: str) -> set[tuple[str, str]]:
    """(file, name) for every ``function("literal", ...)`` call in chalicelib/."""
    found = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.add((str(path.relative_to(ROOT)), node.args[0].value))
    return found


def test_every_alert_and_security_event_raised_in_the_code_is_in_the_catalogue():
    alerts, events = _literal_names("alert"), _literal_names("security_event")
    assert {name for _, name in alerts} - set(observability.ALERTS) == set()
    assert {name for _, name in events} - set(observability.SECURITY_EVENTS) == set()
    # the sites the issue names, each raising its own alert (one alarm each)
    assert {"amount_mismatch", "callback_business_mismatch", "orphan_money", "orphan_amount_unknown",
            "refund_success_after_failure", "settlement_held", "recon_run_failed",
            "webhook_target_refused"} <= {name for _, name in alerts}
    assert {"callback_rejected", "callback_unknown_account", "answer_rejected"} <= {name for _, name in events}
    assert "chargeback" in observability.ALERTS  # raised with the channel's own name (PayPal reversal)


def test_no_alert_is_logged_without_its_metric():
    """A literal ``extra={"alert": ...}`` would log an alert that no alarm ever sees."""
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "chalicelib").rglob("*.py")
                 if path.name != "observability.py"
                 and ('{"alert":' in path.read_text() or '"security_event":' in path.read_text())]
    assert offenders == []


# --- recon ----------------------------------------------------------------------------------------------------


def test_a_reconciliation_run_publishes_its_outcome_per_stage_and_account(published_metrics):
    recon_metrics.publish_run("wx-main", unresolved=3, failed=False)
    recon_metrics.publish_run("ali-main", unresolved=0, failed=True)
    for document in published_metrics:
        assert_valid_emf(document)
        assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"], ["Stage", "Account"]]
    assert published_metrics.values("PayHub/Recon", "Runs", Stage="local") == [1, 1]
    assert published_metrics.values("PayHub/Recon", "FailedRuns", Stage="local") == [0, 1]
    assert published_metrics.values("PayHub/Recon", "UnresolvedDifferences", Stage="local", Account="wx-main") == [3]
    # a failed run has no count of differences: absent, not a misleading zero
    assert published_metrics.values("PayHub/Recon", "UnresolvedDifferences", Stage="local", Account="ali-main") == []


def test_no_code_calls_put_metric_data():
    assert [p for p in (ROOT / "chalicelib").rglob("*.py") if "put_metric_data" in p.read_text()] == []


# --- channel calls per account --------------------------------------------------------------------------------


class Account:
    account_id = "pp-main"


class FakePayPal(PayPalAdapter):
    """The real adapter class (so protocol checks are the real ones), its network operations scripted."""

    outcome: BaseException | None = None

    def query(self, account, attempt_id, amount, **refs):  # type: ignore[no-untyped-def, override]
        if self.outcome is not None:
            raise self.outcome
        return "status"


@pytest.fixture
def paypal() -> FakePayPal:
    return instrument(FakePayPal(transport=None), "paypal")  # type: ignore[arg-type]


def call_outcome(paypal: FakePayPal, published_metrics, outcome: BaseException | None) -> dict[str, Any]:
    paypal.outcome = outcome
    try:
        paypal.query(Account(), "att_1", None)
    except BaseException as exc:
        assert exc is outcome  # re-raised unchanged
    document = published_metrics[-1]
    assert_valid_emf(document)
    return document


@pytest.mark.parametrize(("outcome", "failed", "code"), [
    (None, 0, None),
    (ChannelError("timeout", retryable=True), 1, None),
    (ChannelError("bad gateway", channel_code="SYSTEMERROR"), 1, "SYSTEMERROR"),
    (ChannelError("insufficient balance", channel_code="NOTENOUGH", refused=True), 0, "NOTENOUGH"),
    (ChannelOrderExists("duplicate", channel_code="12"), 0, "ORDER_EXISTS"),
    (KeyError("id"), 1, "KeyError"),
])
def test_each_channel_call_is_counted_per_account_and_failures_marked(paypal, published_metrics, outcome, failed,
                                                                       code):
    document = call_outcome(paypal, published_metrics, outcome)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PayHub/Channels"
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage", "Channel", "Account"]]
    assert (document["Channel"], document["Account"], document["operation"]) == ("paypal", "pp-main", "query")
    assert (document["ChannelCalls"], document["ChannelCallFailed"], document.get("channel_code")) == (1, failed, code)
    assert document["ChannelLatency"] >= 0


def test_an_untrusted_answer_is_also_a_security_event(paypal, published_metrics, caplog):
    with caplog.at_level(logging.WARNING):
        document = call_outcome(paypal, published_metrics,
                                ChannelError("signature", channel_code="RESPONSE_SIGNATURE_INVALID"))
    assert document["ChannelCallFailed"] == 1
    assert published_metrics.values("PayHub/Security", "answer_rejected", Stage="local") == [1]
    assert any(getattr(r, "security_event", None) == "answer_rejected" for r in caplog.records)


def test_the_instrumented_adapter_is_the_same_object_with_the_same_protocols(paypal):
    assert isinstance(paypal, FakePayPal) and isinstance(paypal, ChecksAmounts)


def test_a_method_replaced_on_the_class_afterwards_still_runs_and_is_measured(paypal, published_metrics, monkeypatch):
    monkeypatch.setattr(FakePayPal, "query", lambda self, account, *a, **k: "patched")
    assert paypal.query(Account(), "att_1", None) == "patched"
    assert published_metrics.values("PayHub/Channels", "ChannelCalls", Stage="local", Channel="paypal",
                                    Account="pp-main") == [1]


def test_the_measured_method_kept_aside_and_put_back_on_the_adapters_class_does_not_recurse(paypal, monkeypatch):
    """What a test of a refusal does: keep ``adapter.query``, replace the class's, then restore through the kept one."""
    real = paypal.query
    monkeypatch.setattr(type(paypal), "query", lambda self, account, *a, **k: "refused")
    assert paypal.query(Account(), "att_1", None) == "refused"
    monkeypatch.setattr(type(paypal), "query", lambda self, account, *a, **k: real(account, *a, **k))
    assert paypal.query(Account(), "att_1", None) == "status"
