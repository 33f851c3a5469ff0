"""Alarms that reach a person, their subscribers, and the stage's dashboard: the observability part of
``PayHub-<stage>``, called once from ``infra/stack.py`` after every function and queue exists.

Stage parameters (CDK context, ``cdk deploy -c stage=prod -c alarm_emails=ops@example.com``):

``alarm_emails``            comma-separated addresses subscribed to the alarm topic (each confirms by mail)
``alarm_https_endpoints``   comma-separated https URLs (a pager or chat webhook) subscribed to the topic
``api_5xx_rate``            share of API requests answered 5xx that pages (default 0.01: 1 %)
``api_p99_latency_ms``      p99 API latency that pages (default 3000)
``channel_error_rate``      share of one channel account's calls failing that pages (default 0.2)

The metrics come from ``chalicelib.observability`` (embedded metric format, no API call) and from AWS itself
(API Gateway, SQS, Lambda). docs/alerts-and-retention.md lists every alarm and what a person does about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns

from chalicelib.observability import (
    ALERTS,
    ALERTS_NAMESPACE,
    CHANNEL_CALL_FAILED,
    CHANNEL_CALLS,
    CHANNEL_LATENCY,
    CHANNELS_NAMESPACE,
    SECURITY_EVENTS,
    SECURITY_NAMESPACE,
)
from chalicelib.recon.metrics import FAILED, RUNS, UNRESOLVED
from chalicelib.recon.metrics import NAMESPACE as RECON_NAMESPACE

if TYPE_CHECKING:
    from infra.stack import PayHubStack

DOCS = "docs/alerts-and-retention.md"
API_STAGE = "api"  # .chalice/config.json api_gateway_stage, the same on every stage
# Security events that also arrive as background noise page only above a count per five minutes: anyone can
# post to a callback URL (scanners, a channel replaying a stale notification after our timestamp window).
SECURITY_THRESHOLDS = {"callback_rejected": 5, "callback_unknown_account": 20, "bill_link_forged": 20,
                       "invoice_callback_unknown": 20, "oauth_state_refused": 20}
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")


@dataclass(frozen=True)
class Parameters:
    alarm_emails: tuple[str, ...]
    alarm_https_endpoints: tuple[str, ...]
    api_5xx_rate: float
    api_p99_latency_ms: float
    channel_error_rate: float


def parameters(stack: cdk.Stack) -> Parameters:
    """The stage parameters above, checked: a subscriber that could never receive a page is refused at synth."""

    def listed(name: str) -> tuple[str, ...]:
        value = stack.node.try_get_context(name) or ""
        items = value if isinstance(value, list) else str(value).split(",")
        return tuple(item.strip() for item in items if item.strip())

    def number(name: str, default: float, low: float, high: float) -> float:
        raw = stack.node.try_get_context(name)
        try:
            value = default if raw is None else float(raw)
        except ValueError:
            raise ValueError(f"stage parameter {name}: {raw!r} is not a number") from None
        if not low < value <= high:
            raise ValueError(f"stage parameter {name}: {value} is outside ({low}, {high}]")
        return value

    emails, endpoints = listed("alarm_emails"), listed("alarm_https_endpoints")
    for email in emails:
        if not _EMAIL.match(email):
            raise ValueError(f"stage parameter alarm_emails: {email!r} is not an email address")
    for url in endpoints:
        if not re.match(r"^https://[^/\s]+", url):
            raise ValueError(f"stage parameter alarm_https_endpoints: {url!r} is not an https URL "
                             "(SNS would send pages in clear text)")
    return Parameters(emails, endpoints, number("api_5xx_rate", 0.01, 0, 1),
                      number("api_p99_latency_ms", 3000, 0, 60_000), number("channel_error_rate", 0.2, 0, 1))


class Alerting:
    """Subscriptions, alarms and the dashboard of one stage."""

    def __init__(self, stack: PayHubStack) -> None:
        self.stack = stack
        self.params = parameters(stack)
        self.topic: sns.Topic = stack.alarm_topic
        self._tell_when_ok: set[str] = set()
        self._subscribe()

    # --- who hears -------------------------------------------------------------------------------------------

    def _subscribe(self) -> None:
        for number, email in enumerate(self.params.alarm_emails, 1):
            sns.Subscription(self.stack, f"AlarmEmail{number}", topic=self.topic,
                             protocol=sns.SubscriptionProtocol.EMAIL, endpoint=email)
        for number, url in enumerate(self.params.alarm_https_endpoints, 1):
            sns.Subscription(self.stack, f"AlarmHttps{number}", topic=self.topic,
                             protocol=sns.SubscriptionProtocol.HTTPS, endpoint=url)
        if not (self.params.alarm_emails or self.params.alarm_https_endpoints):
            cdk.Annotations.of(self.stack).add_warning_v2(
                "payhub:alarm-subscribers",
                "no alarm subscriber: pass -c alarm_emails=... or -c alarm_https_endpoints=... or nobody is paged")

    def alarm(self, logical_id: str, description: str, metric: cloudwatch.IMetric, threshold: float, *,
              comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
              periods: int = 1, missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
              ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self.stack, logical_id, alarm_description=f"{self.stack.stage}: {description}", metric=metric,
            threshold=threshold, comparison_operator=comparison, evaluation_periods=periods,
            datapoints_to_alarm=periods, treat_missing_data=missing,
        )
        self._notify(alarm)
        return alarm

    def _notify(self, alarm: cloudwatch.Alarm | cloudwatch.CfnAlarm) -> None:
        if isinstance(alarm, cloudwatch.Alarm):
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            alarm.add_ok_action(cw_actions.SnsAction(self.topic))  # the person also hears it is over
            self._tell_when_ok.add(alarm.node.path)
        else:
            alarm.alarm_actions = [self.topic.topic_arn]
            alarm.ok_actions = [self.topic.topic_arn]

    # --- what pages --------------------------------------------------------------------------------------------

    def build(self) -> None:
        for name, meaning in ALERTS.items():
            self.alarm(f"Alert{_camel(name)}Alarm", f"ALERT {name}: {meaning}; see {DOCS}#{name}",
                       self._count(ALERTS_NAMESPACE, name, minutes=1), 0)
        for name, meaning in SECURITY_EVENTS.items():
            self.alarm(f"Security{_camel(name)}Alarm", f"SECURITY {name}: {meaning}; see {DOCS}#{name}",
                       self._count(SECURITY_NAMESPACE, name, minutes=5), SECURITY_THRESHOLDS.get(name, 0))
        self._api_alarms()
        self._channel_error_rate_alarm()
        self._recon_runs_alarm()
        for made_elsewhere in self.stack.node.find_all():  # dead letters, throttles, reconciliation
            if isinstance(made_elsewhere, cloudwatch.Alarm) and made_elsewhere.node.path not in self._tell_when_ok:
                made_elsewhere.add_ok_action(cw_actions.SnsAction(self.topic))
        self._dashboard()

    def _count(self, namespace: str, name: str, *, minutes: int) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace=namespace, metric_name=name, dimensions_map={"Stage": self.stack.stage},
                                 period=cdk.Duration.minutes(minutes), statistic="Sum")

    def _api(self, metric_name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name=metric_name,
                                 dimensions_map={"ApiName": self.stack.api_name, "Stage": API_STAGE},
                                 period=cdk.Duration.minutes(5), statistic=statistic)

    def _api_alarms(self) -> None:
        # 5XXError is 0 or 1 per request: its average is the share answered 5xx. Two bad five-minute periods in a
        # row page, so one slow deploy or a single burst does not.
        self.alarm("Api5xxRateAlarm", f"more than {self.params.api_5xx_rate:.1%} of API requests answered 5xx; "
                   f"see {DOCS}#api_5xx_rate", self._api("5XXError", "Average"), self.params.api_5xx_rate, periods=2)
        self.alarm("ApiLatencyP99Alarm", f"API p99 latency above {self.params.api_p99_latency_ms:.0f} ms; "
                   f"see {DOCS}#api_p99_latency", self._api("Latency", "p99"), self.params.api_p99_latency_ms,
                   periods=3)

    def channel_error_rate_query(self) -> str:
        # ChannelCallFailed is 0 or 1 per call: its average per account is that account's error rate. Accounts
        # are configuration (added without a deploy), so one Metrics Insights query watches all of them and
        # keeps the worst: the alarm names the stage, the dashboard and the log lines name the account.
        # Not SQL, and nothing here comes from a request: the stage is one of the stack's own names.
        return (f'SELECT AVG({CHANNEL_CALL_FAILED}) FROM SCHEMA("{CHANNELS_NAMESPACE}", Account, Channel, Stage) '  # noqa: S608
                f"WHERE Stage = '{self.stack.stage}' GROUP BY Account, Channel ORDER BY AVG() DESC LIMIT 1")

    def _channel_error_rate_alarm(self) -> None:
        alarm = cloudwatch.CfnAlarm(
            self.stack, "ChannelErrorRateAlarm",
            alarm_description=(f"{self.stack.stage}: a channel account fails more than "
                               f"{self.params.channel_error_rate:.0%} of its calls; see {DOCS}#channel_error_rate"),
            metrics=[cloudwatch.CfnAlarm.MetricDataQueryProperty(
                id="worst_account", expression=self.channel_error_rate_query(), period=300, return_data=True)],
            threshold=self.params.channel_error_rate, evaluation_periods=3, datapoints_to_alarm=3,
            comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
        )
        self._notify(alarm)

    def _recon_runs_alarm(self) -> None:
        """Every channel reconciles daily: a day without a single finished run means the schedule or the fan-out
        is broken, which no failure metric would ever show. Production only (other stages may hold no account)."""
        if self.stack.stage != "prod":
            return
        metric = cloudwatch.Metric(namespace=RECON_NAMESPACE, metric_name=RUNS,
                                   dimensions_map={"Stage": self.stack.stage}, period=cdk.Duration.days(1),
                                   statistic="Sum")
        self.alarm("ReconNoRunAlarm", f"no reconciliation run finished in a day; see {DOCS}#recon_no_run", metric, 1,
                   comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                   missing=cloudwatch.TreatMissingData.BREACHING)

    # --- what a person looks at ----------------------------------------------------------------------------------

    def _dashboard(self) -> None:
        stage = self.stack.stage
        five = cdk.Duration.minutes(5)

        def insights(label: str, select: str) -> cloudwatch.MathExpression:
            return cloudwatch.MathExpression(expression=select, label=label, period=five, using_metrics={})

        per_account = f'FROM SCHEMA("{CHANNELS_NAMESPACE}", Account, Channel, Stage) WHERE Stage = \'{stage}\' ' \
                      "GROUP BY Account"
        functions = sorted(self.stack.functions.items())
        dlqs = [(key, dlq) for key, (_, dlq) in sorted(self.stack.queues.items())]
        dashboard = cloudwatch.Dashboard(self.stack, "Dashboard", dashboard_name=f"payhub-{stage}",
                                         default_interval=cdk.Duration.hours(6))
        # every alarm of the stack, those made elsewhere (dead letters, throttles, reconciliation) included
        alarms: list[cloudwatch.IAlarm] = [c for c in self.stack.node.find_all() if isinstance(c, cloudwatch.Alarm)]
        alarms += [cloudwatch.Alarm.from_alarm_arn(self.stack, f"{c.node.id}Ref", c.attr_arn)
                   for c in self.stack.node.find_all() if isinstance(c, cloudwatch.CfnAlarm)
                   and not isinstance(c.node.scope, cloudwatch.Alarm)]
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=6),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="API requests and 5xx rate", width=8,
                                   left=[self._api("Count", "Sum")], right=[self._api("5XXError", "Average")]),
            cloudwatch.GraphWidget(title="API latency (p50, p99)", width=8,
                                   left=[self._api("Latency", "p50"), self._api("Latency", "p99")]),
            cloudwatch.GraphWidget(title="Channel error rate by account", width=8, left=[insights(
                "error rate", f"SELECT AVG({CHANNEL_CALL_FAILED}) {per_account}")]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Channel calls by account", width=8, left=[insights(
                "calls", f"SELECT SUM({CHANNEL_CALLS}) {per_account}")]),
            cloudwatch.GraphWidget(title="Channel latency, slowest call by account (ms)", width=8, left=[insights(
                "latency", f"SELECT MAX({CHANNEL_LATENCY}) {per_account}")]),
            cloudwatch.GraphWidget(title="Dead-letter queue depth", width=8, left=[
                dlq.metric_approximate_number_of_messages_visible(period=five, statistic="Maximum", label=key)
                for key, dlq in dlqs]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Alerts", width=12, stacked=True, left=[
                self._count(ALERTS_NAMESPACE, name, minutes=5) for name in ALERTS]),
            cloudwatch.GraphWidget(title="Security events", width=12, stacked=True, left=[
                self._count(SECURITY_NAMESPACE, name, minutes=5) for name in SECURITY_EVENTS]),
        )
        recon = [cloudwatch.Metric(namespace=RECON_NAMESPACE, metric_name=name, dimensions_map={"Stage": stage},
                                   period=cdk.Duration.hours(1), statistic=statistic)
                 for name, statistic in ((RUNS, "Sum"), (FAILED, "Sum"), (UNRESOLVED, "Maximum"))]
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Reconciliation runs, failures, unresolved differences", width=8, left=recon),
            cloudwatch.GraphWidget(title="Function errors", width=8, left=[
                self._lambda(function.ref, "Errors", name) for name, function in functions]),
            cloudwatch.GraphWidget(title="Function throttles", width=8, left=[
                self._lambda(function.ref, "Throttles", name) for name, function in functions]),
        )

    @staticmethod
    def _lambda(function_name: str, metric_name: str, label: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace="AWS/Lambda", metric_name=metric_name, label=label,
                                 dimensions_map={"FunctionName": function_name}, period=cdk.Duration.minutes(5),
                                 statistic="Sum")


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))
