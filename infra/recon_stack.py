"""The reconciliation parts of ``PayHub-<stage>``: its bucket, the daily per-channel schedules, the IAM for
buckets (its metrics are embedded in its logs: no grant), and the alarms on unresolved differences and failed runs.

Called from ``infra/stack.py`` at the points named there; kept apart so the stack module stays about the
hub's general shape.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sam as sam
from aws_cdk import aws_stepfunctions as sfn

from chalicelib.recon.metrics import FAILED, NAMESPACE, UNRESOLVED
from infra import functions as catalog
from infra import retention

if TYPE_CHECKING:
    from infra.stack import PayHubStack

# Statements and reports are the evidence of each day's reconciliation: kept as long as the stage's
# recon_evidence retention (infra/retention.py, default ten years).
REPORT_HOT_DAYS = 90


def env_name(bucket_logical_id: str) -> str:
    """``ReconBucket`` -> ``PAYHUB_RECON_BUCKET``: how a function learns the deployed bucket name."""
    return "PAYHUB_" + re.sub(r"(?<!^)(?=[A-Z])", "_", bucket_logical_id).upper()


def create_buckets(stack: PayHubStack) -> dict[str, s3.Bucket]:
    buckets = {}
    for spec in stack.res.buckets:
        buckets[spec.logical_id] = s3.Bucket(
            stack, spec.logical_id,
            bucket_name=f"{spec.name}-{cdk.Aws.ACCOUNT_ID}-{cdk.Aws.REGION}",  # bucket names are global
            encryption=s3.BucketEncryption.KMS, encryption_key=stack.key, bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, versioned=True,
            lifecycle_rules=[s3.LifecycleRule(
                expiration=cdk.Duration.days(retention.recon_evidence_days(stack)),  # a stage parameter
                # reports are read in the days after their run; then they are evidence, kept in a cheaper class
                transitions=[s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                                           transition_after=cdk.Duration.days(REPORT_HOT_DAYS))],
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
    return buckets


def add_bucket_env(stack: PayHubStack, function: sam.CfnFunction, access: catalog.Access) -> None:
    for logical_id in access.buckets:
        function.add_property_override(f"Environment.Variables.{env_name(logical_id)}",
                                       stack.buckets[logical_id].bucket_name)


def access_statements(stack: PayHubStack, access: catalog.Access) -> list[iam.PolicyStatement]:
    statements = []
    for logical_id, level in access.buckets.items():
        actions = ["s3:GetObject"] + (["s3:PutObject", "s3:AbortMultipartUpload"] if level == catalog.WRITE else [])
        if level == catalog.ARCHIVE:  # each object locked until its record's retention ends (infra/retention.py)
            actions += ["s3:PutObject", "s3:PutObjectRetention"]
        statements.append(iam.PolicyStatement(actions=actions,
                                              resources=[stack.buckets[logical_id].arn_for_objects("*")]))
    for logical_id in access.bucket_lists:
        statements.append(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[stack.buckets[logical_id].bucket_arn],
                                              conditions={"StringLike": {"s3:prefix": ["shards/*"]}}))
    return statements


def schedule_daily(stack: PayHubStack) -> None:
    """One rule per channel at its statement time, invoking the fan-out with ``{"channel": ...}``."""
    for spec in stack.res.daily_schedules:
        function = stack.functions[spec.function]
        rule = events.CfnRule(
            stack, spec.logical_id, schedule_expression=spec.cron, state="ENABLED",
            targets=[events.CfnRule.TargetProperty(arn=cdk.Fn.get_att(function.logical_id, "Arn").to_string(),
                                                   id=spec.function, input=json.dumps(spec.payload))],
        )
        lambda_.CfnPermission(
            stack, f"{spec.logical_id}Permission", action="lambda:InvokeFunction", function_name=function.ref,
            principal="events.amazonaws.com", source_arn=rule.attr_arn,
        )


def alarm_on_recon(stack: PayHubStack) -> None:
    for logical_id, metric_name, statistic, description in (
        ("ReconUnresolvedAlarm", UNRESOLVED, "Maximum", "a reconciliation run left differences unresolved"),
        ("ReconFailedRunsAlarm", FAILED, "Sum", "a reconciliation run failed (statement malformed or unavailable)"),
    ):
        metric = cloudwatch.Metric(namespace=NAMESPACE, metric_name=metric_name,
                                   dimensions_map={"Stage": stack.stage}, period=cdk.Duration.hours(1),
                                   statistic=statistic)
        alarm = cloudwatch.Alarm(
            stack, logical_id, alarm_description=f"{stack.stage}: {description}; see GET /v1/recon/runs",
            metric=metric, threshold=0, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(stack.alarm_topic))


SHARD_FUNCTIONS = ("recon_shard_plan", "recon_shard_partition", "recon_shard_match", "recon_shard_combine")
SHARD_CONCURRENCY = 200  # functions at once in each map: Lambda concurrency the account spares for a big day
_RETRY = [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                           "Lambda.TooManyRequestsException"],
           "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2.0}]


def shard_state_machine(stack: PayHubStack) -> sfn.CfnStateMachine:
    """``ReconShards``: plan (lease, statement, pool, the statement cut into parts), a Distributed Map over the
    statement parts and the export's data files (each partitioned by key), a Distributed Map over the shards
    (each matched), combine (the run completed from the shards' results). Started with ``{"account_id",
    "day", "execution", "export_keys", "shards"[, "part_lines", "statement_key"]}`` (docs/recon-engine.md)."""
    arns = {name: cdk.Fn.get_att(stack.functions[name].logical_id, "Arn").to_string() for name in SHARD_FUNCTIONS}
    name = f"payhub-{stack.stage}-recon-shards"

    def invoke(function: str, then: str | None, result_path: str | None = "$") -> dict[str, object]:
        state: dict[str, object] = {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": arns[function], "Payload.$": "$"},
            "ResultSelector": {"value.$": "$.Payload"}, "Retry": _RETRY,
        }
        if result_path == "$":
            state["OutputPath"] = "$.value"
        else:
            state["ResultPath"] = result_path
        state.update({"Next": then} if then else {"End": True})
        return state

    def distributed(items: str, function: str, then: str, result_path: str | None) -> dict[str, object]:
        return {
            "Type": "Map", "ItemsPath": items, "MaxConcurrency": SHARD_CONCURRENCY, "ToleratedFailurePercentage": 0,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                              "StartAt": "Step", "States": {"Step": {**invoke(function, None), "OutputPath": "$.value"}}},
            "ResultPath": result_path, "Next": then,
        }

    definition = {
        "Comment": "A reconciliation day as shards: cut, partition each part, match each shard, combine "
                   "(chalicelib/recon/shards.py, functions/recon_shards.py)",
        "StartAt": "Plan",
        "States": {
            "Plan": invoke("recon_shard_plan", "Partition"),
            # each statement part and each export data file -> its partitions; their counts into $.partitioned
            "Partition": distributed("$.parts", "recon_shard_partition", "MatchShards", "$.partitioned"),
            "MatchShards": distributed("$.shards", "recon_shard_match", "Combine", None),
            "Combine": invoke("recon_shard_combine", None),
        },
    }
    own_arn = f"arn:{cdk.Aws.PARTITION}:states:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:stateMachine:{name}"
    role = iam.Role(stack, "ReconShardsRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                    description=f"{stack.stage}: the ReconShards state machine invokes its four functions")
    role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=list(arns.values())))
    # A Distributed Map runs its items as child executions of this same state machine.
    role.add_to_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[own_arn]))
    role.add_to_policy(iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"],
                                           resources=[f"{own_arn.replace(':stateMachine:', ':execution:')}:*"]))
    machine = sfn.CfnStateMachine(stack, "ReconShards", state_machine_name=name, state_machine_type="STANDARD",
                                  role_arn=role.role_arn, definition_string=stack.to_json_string(definition))
    # Its policy must exist before the machine starts invoking; the role itself is implied by the GetAtt.
    machine.node.add_dependency(role.node.find_child("DefaultPolicy"))
    return machine
