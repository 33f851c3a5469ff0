"""Retention and archival in ``PayHub-<stage>``: the archive bucket, the daily archival schedule, the retention
the functions are told, and the recon evidence's lifetime. Called from ``infra/stack.py``.

Stage parameters (CDK context, e.g. ``cdk deploy -c stage=prod -c retention_payments_days=3653``), defaults in
``chalicelib.retention.policy``; a money record below five years is refused at synth:

``retention_<kind>_days``       kinds: payments, refunds, ledger, audit, recon_evidence, events
``archive_hot_days``            how long a settled record stays in DynamoDB before it is archived (>= 370)
``archive_lock_mode``           S3 Object Lock mode of archived records: GOVERNANCE (default) or COMPLIANCE
``archive_glacier_after_days``  when archive objects move to Glacier Instant Retrieval (default 30)
``archive_segments``            parallel scan segments, one scheduled invocation each (default 4, at most 5)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

from chalicelib.retention.policy import DEFAULT_HOT_DAYS, DEFAULT_RETENTION_DAYS, Policy, from_values

if TYPE_CHECKING:
    from infra.stack import PayHubStack

ARCHIVE_FUNCTION = "archive_sweep"
ARCHIVE_CRON = "cron(0 19 * * ? *)"  # 03:00 Beijing time, the quietest hour of the payment day
ARCHIVED_KINDS = ("payments", "refunds", "events", "audit")  # what the sweep moves (chalicelib/retention/sweep.py)


def policy(stack: cdk.Stack) -> Policy:
    """The stage's retention from its parameters; cached on the stack (read by several builders)."""
    cached = getattr(stack, "_payhub_retention", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    values: dict[str, object] = {}
    for kind in DEFAULT_RETENTION_DAYS:
        raw = stack.node.try_get_context(f"retention_{kind}_days")
        if raw is not None:
            values[kind] = _int(f"retention_{kind}_days", raw)
    hot = stack.node.try_get_context("archive_hot_days")
    values["hot_days"] = _int("archive_hot_days", hot) if hot is not None else DEFAULT_HOT_DAYS
    values["lock_mode"] = stack.node.try_get_context("archive_lock_mode") or "GOVERNANCE"
    try:
        result = from_values(values)
    except ValueError as exc:
        raise ValueError(f"stage parameter {exc}") from None
    stack._payhub_retention = result  # type: ignore[attr-defined]
    return result


def _int(name: str, raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise ValueError(f"stage parameter {name}: {raw!r} is not a whole number of days") from None


def recon_evidence_days(stack: cdk.Stack) -> int:
    return policy(stack).retention_days["recon_evidence"]


def create_buckets(stack: PayHubStack) -> dict[str, s3.Bucket]:
    kept = policy(stack)
    glacier_after = _int("archive_glacier_after_days", stack.node.try_get_context("archive_glacier_after_days") or 30)
    rules = [s3.LifecycleRule(
        id=f"{kind}-retention", prefix=f"records/{kind}/",
        # the object is written hot_days after the record's last change: the record is kept longer than required
        expiration=cdk.Duration.days(kept.retention_days[kind]),
        transitions=[s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                                   transition_after=cdk.Duration.days(glacier_after))],
    ) for kind in ARCHIVED_KINDS]
    rules.append(s3.LifecycleRule(id="abort-uploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(1)))
    bucket = s3.Bucket(
        stack, "ArchiveBucket",
        bucket_name=f"{stack.res.names.archive_bucket}-{cdk.Aws.ACCOUNT_ID}-{cdk.Aws.REGION}",
        encryption=s3.BucketEncryption.KMS, encryption_key=stack.key, bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, versioned=True,
        object_lock_enabled=True,  # each archived object is locked until its record's retention ends
        lifecycle_rules=rules,
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    return {"ArchiveBucket": bucket}


def schedule_archival(stack: PayHubStack) -> None:
    function = stack.functions[ARCHIVE_FUNCTION]
    kept = policy(stack)
    function.add_property_override("Environment.Variables.PAYHUB_RETENTION", json.dumps(
        {**kept.retention_days, "hot_days": kept.hot_days, "lock_mode": kept.lock_mode}, sort_keys=True))
    segments = _int("archive_segments", stack.node.try_get_context("archive_segments") or 4)
    if not 1 <= segments <= 5:  # EventBridge: at most five targets per rule
        raise ValueError(f"stage parameter archive_segments: {segments} is not within 1..5")
    arn = cdk.Fn.get_att(function.logical_id, "Arn").to_string()
    rule = events.CfnRule(
        stack, "ArchiveSweepSchedule", schedule_expression=ARCHIVE_CRON, state="ENABLED",
        targets=[events.CfnRule.TargetProperty(arn=arn, id=f"segment-{segment}",
                                               input=json.dumps({"segment": segment, "segments": segments}))
                 for segment in range(segments)],
    )
    lambda_.CfnPermission(stack, "ArchiveSweepSchedulePermission", action="lambda:InvokeFunction",
                          function_name=function.ref, principal="events.amazonaws.com", source_arn=rule.attr_arn)
    errors = cloudwatch.Metric(namespace="AWS/Lambda", metric_name="Errors",
                               dimensions_map={"FunctionName": function.ref}, period=cdk.Duration.hours(1),
                               statistic="Sum")
    alarm = cloudwatch.Alarm(
        stack, "ArchiveSweepErrorsAlarm", metric=errors, threshold=0, evaluation_periods=1,
        alarm_description=f"{stack.stage}: the archival sweep failed; records stay hot until it is fixed; "
                          "see docs/alerts-and-retention.md#archive_sweep_failed",
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(stack.alarm_topic))
