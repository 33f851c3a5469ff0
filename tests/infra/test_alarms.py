"""Alerts reach a person: every alert and security event the code raises has an alarm on its metric, the API, the
channel accounts, the dead-letter queues and reconciliation are watched, every alarm notifies the topic, the
topic's subscribers are the stage parameters, and the stage has a dashboard over the same metrics.

Names and namespaces are written out here rather than read from chalicelib.observability, so that renaming a metric
in the code without its alarm fails a test.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest

ALERTS = {"amount_mismatch", "callback_business_mismatch", "chargeback", "orphan_money", "orphan_amount_unknown",
          "refund_success_after_failure", "settlement_held", "recon_run_failed", "webhook_target_refused", "statement_mismatch",
          # money out: a re-run's refresh, the reserve's statement, settlements and payouts the bank did not take
          "recon_refresh_failed", "reserve_recon_unresolved", "settlement_returned", "settlement_no_payee",
          "payout_no_bank", "payout_outcome_unknown"}
SECURITY_EVENTS = {"callback_rejected": 5, "callback_unknown_account": 20, "answer_rejected": 0,
                   "bill_link_forged": 20, "invoice_callback_unknown": 20, "oauth_state_refused": 20}


def of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == type_name}


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in of_type(template, "AWS::CloudWatch::Alarm").items()}


def topic(template: dict[str, Any]) -> str:
    (logical_id,) = of_type(template, "AWS::SNS::Topic")
    return logical_id


@pytest.fixture(scope="module")
def dev(synth) -> dict[str, Any]:
    return synth("dev")


@pytest.fixture(scope="module")
def paged() -> dict[str, Any]:
    """The prod stage synthesized with its subscribers given as stage parameters (CDK context)."""
    from infra.app import synth_stage

    app = cdk.App(context={"alarm_emails": "ops@example.com, oncall@example.com",
                           "alarm_https_endpoints": "https://pager.example.com/payhub", "api_p99_latency_ms": "2500"})
    stack = synth_stage(app, "prod")
    return app.synth().get_stack_by_name(stack.stack_name).template


def by_metric(template: dict[str, Any], namespace: str) -> dict[str, dict[str, Any]]:
    return {props["MetricName"]: props for props in alarms(template).values() if props.get("Namespace") == namespace}


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(dev):
    for logical_id, props in alarms(dev).items():
        assert [a["Ref"] for a in props["AlarmActions"]] == [topic(dev)], logical_id
        assert [a["Ref"] for a in props["OKActions"]] == [topic(dev)], logical_id


def test_each_alert_has_an_alarm_on_its_metric_firing_on_the_first_one(dev):
    watched = by_metric(dev, "PayHub/Alerts")
    assert set(watched) == ALERTS
    for name, props in watched.items():
        assert props["Dimensions"] == [{"Name": "Stage", "Value": "dev"}]
        assert (props["Statistic"], props["Period"], props["Threshold"]) == ("Sum", 60, 0), name
        assert props["ComparisonOperator"] == "GreaterThanThreshold" and props["TreatMissingData"] == "notBreaching"
        assert f"alerts-and-retention.md#{name}" in props["AlarmDescription"]


def test_each_security_event_has_an_alarm_above_its_noise_floor(dev):
    watched = by_metric(dev, "PayHub/Security")
    assert {name: props["Threshold"] for name, props in watched.items()} == SECURITY_EVENTS
    for props in watched.values():
        assert props["Dimensions"] == [{"Name": "Stage", "Value": "dev"}] and props["Statistic"] == "Sum"


def test_the_api_5xx_rate_and_p99_latency_are_watched_on_the_named_api(dev):
    (api,) = of_type(dev, "AWS::Serverless::Api").values()
    assert api["Properties"]["Name"] == "payhub-dev"
    watched = by_metric(dev, "AWS/ApiGateway")
    dimensions = [{"Name": "ApiName", "Value": "payhub-dev"}, {"Name": "Stage", "Value": api["Properties"]["StageName"]}]
    rate, latency = watched["5XXError"], watched["Latency"]
    assert (rate["Statistic"], rate["Threshold"], rate["Dimensions"]) == ("Average", 0.01, dimensions)
    assert (latency["ExtendedStatistic"], latency["Threshold"], latency["Dimensions"]) == ("p99", 3000, dimensions)


def test_the_channel_error_rate_is_watched_for_every_account_at_once(dev):
    (props,) = [p for p in alarms(dev).values() if "Metrics" in p and "ChannelCallFailed" in json.dumps(p)]
    (query,) = props["Metrics"]
    assert query["Expression"] == ('SELECT AVG(ChannelCallFailed) FROM SCHEMA("PayHub/Channels", Account, Channel, '
                                   "Stage) WHERE Stage = 'dev' GROUP BY Account, Channel ORDER BY AVG() DESC LIMIT 1")
    assert query["ReturnData"] and query["Period"] == 300
    assert (props["Threshold"], props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (0.2, 3, 3)


def test_every_dead_letter_queue_and_the_reconciliation_outcome_are_watched(dev):
    dlqs = {lid for lid, q in of_type(dev, "AWS::SQS::Queue").items() if "dlq" in q["Properties"]["QueueName"]}
    watched = {props["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for props in alarms(dev).values()
               if props.get("MetricName") == "ApproximateNumberOfMessagesVisible"}
    assert dlqs and watched == dlqs
    assert {"UnresolvedDifferences", "FailedRuns"} <= set(by_metric(dev, "PayHub/Recon"))


def test_production_also_pages_when_no_reconciliation_ran_for_a_day(paged, dev):
    runs = by_metric(paged, "PayHub/Recon")["Runs"]
    assert (runs["Statistic"], runs["Period"], runs["Threshold"]) == ("Sum", 86400, 1)
    assert runs["ComparisonOperator"] == "LessThanThreshold" and runs["TreatMissingData"] == "breaching"
    assert "Runs" not in by_metric(dev, "PayHub/Recon")  # a dev stage may hold no channel account at all


def test_subscribers_are_the_stage_parameters(paged, dev):
    subscriptions = sorted((s["Properties"]["Protocol"], s["Properties"]["Endpoint"])
                           for s in of_type(paged, "AWS::SNS::Subscription").values())
    assert subscriptions == [("email", "oncall@example.com"), ("email", "ops@example.com"),
                             ("https", "https://pager.example.com/payhub")]
    assert {s["Properties"]["TopicArn"]["Ref"] for s in of_type(paged, "AWS::SNS::Subscription").values()} == {
        topic(paged)}
    assert by_metric(paged, "AWS/ApiGateway")["Latency"]["Threshold"] == 2500
    assert of_type(dev, "AWS::SNS::Subscription") == {}


@pytest.mark.parametrize(("context", "message"), [
    ({"alarm_https_endpoints": "http://pager.example.com/x"}, "not an https URL"),
    ({"alarm_emails": "ops at example.com"}, "not an email address"),
    ({"api_5xx_rate": "5"}, "api_5xx_rate"),
    ({"channel_error_rate": "lots"}, "not a number"),
])
def test_a_subscriber_or_threshold_that_cannot_work_is_refused_at_synth(context, message):
    from infra.alerting import parameters

    stack = cdk.Stack(cdk.App(context=context), "Probe")
    with pytest.raises(ValueError, match=message):
        parameters(stack)


@pytest.mark.parametrize(("context", "warned"), [({}, True), ({"alarm_emails": "ops@example.com"}, False)])
def test_a_stage_without_subscribers_is_a_synth_warning(context, warned):
    from aws_cdk import assertions
    from aws_cdk import aws_sns as sns

    from infra.alerting import Alerting

    stack = cdk.Stack(cdk.App(context=context), "Probe")
    stack.alarm_topic = sns.Topic(stack, "Topic")  # type: ignore[attr-defined]
    Alerting(stack)  # type: ignore[arg-type]
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("no alarm subscriber"))
    assert bool(warnings) is warned


def test_the_dashboard_shows_the_alarms_and_the_metrics_they_watch(dev):
    (dashboard,) = of_type(dev, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "payhub-dev"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for shown in ("Alarms", "API requests and 5xx rate", "API latency (p50, p99)", "Channel error rate by account",
                  "Dead-letter queue depth", "Alerts", "Security events", "Reconciliation runs",
                  "Function errors", "Function throttles"):
        assert shown in body, shown
    for metric in ("5XXError", "Latency", "ChannelCallFailed", "ChannelCalls", "ChannelLatency",
                   "ApproximateNumberOfMessagesVisible", "UnresolvedDifferences", "FailedRuns", "Runs",
                   *ALERTS, *SECURITY_EVENTS):
        assert metric in body, metric
    for logical_id in alarms(dev):  # the status widget lists every alarm of the stack
        assert logical_id in body, logical_id
