"""The deployed shape of one stage: ``PayHub-<stage>``.

Stateful resources come from ``infra.resources`` (shared with the local stack), functions and their access
from ``infra.functions``; this module only turns them into CloudFormation. The Chalice construct packages
the staged project (``infra.build``) as a SAM template; afterwards the stack

1. gives every function its own role, log group, layer and sizing;
2. splits the API (docs/design.md#api-split): one clone of Chalice's ``APIHandler`` per route group, each group's
   integration uri pointed at its clone, one invoke permission per route; the original is removed;
3. wires the workers to their queues (with ``ReportBatchItemFailures``) and the sweeps to their schedules.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sam as sam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib.config.names import queue_url_variable
from infra import alerting, build, gateway_responses, recon_stack, retention
from infra import functions as catalog
from infra.resources import KmsKey, Queue, Resources, Table, resources

# TLS 1.2+ with forward secrecy on the API's own (edge) endpoint. Enhanced policies ("SecurityPolicy_*")
# apply to the execute-api endpoint itself, not only to custom domains, and need an endpoint access mode;
# STRICT also refuses requests whose SNI/Host does not match the API (domain fronting).
API_SECURITY_POLICY = "SecurityPolicy_TLS12_PFS_2025_EDGE"
API_ENDPOINT_ACCESS_MODE = "STRICT"
# The API Gateway throttles of a group's routes add up to this share of its Lambda's reserved concurrency:
# API Gateway then answers 429 (retryable, documented) before Lambda throttles, which API Gateway turns into
# a 500. Concurrency = rate x duration, so this holds while requests take <= 1 s (timeouts are 15 s: a slow
# channel can still saturate the function, which the throttles alarm reports).
THROTTLE_SHARE_OF_CONCURRENCY = 0.8
# AWS guidance for SQS event sources: visibility timeout at least 6x the function timeout, or messages
# reappear while a retried batch is still being processed.
VISIBILITY_TO_TIMEOUT_RATIO = 6
# Lambda event filtering: new items carrying outbox_shard, i.e. outbox events not yet published.
OUTBOX_STREAM_FILTER = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"outbox_shard": {"S": [{"exists": True}]}}}}
INTEGRATION_URI = "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Arn}/invocations"
LOG_RETENTION = {"prod": logs.RetentionDays.ONE_YEAR}  # other stages: one month
# A DNS name as ACM and API Gateway take it: lower-case labels, no trailing dot, no wildcard.
DOMAIN_NAME_PATTERN = r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
# An edge API's custom domain is served by CloudFront, which takes certificates from us-east-1 only.
CERTIFICATE_ARN_PATTERN = r"^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/[0-9a-f-]{36}$"


def logical_name(function_name: str) -> str:
    """Chalice's logical id for a function name: ``webhook_worker`` -> ``WebhookWorker``."""
    return "".join(part.title() for part in re.split(r"[_-]", function_name))


class PayHubStack(cdk.Stack):
    def __init__(self, scope: Construct, stage: str, project_dir: Path, layer_zip: Path,
                 engine_layer_zip: Path, **kwargs: Any) -> None:
        super().__init__(scope, f"PayHub-{stage}", **kwargs)
        self.stage = stage
        self.res: Resources = resources(stage)
        cdk.Tags.of(self).add("payhub:stage", stage)
        self._stage_parameters()

        self.keys = {spec.logical_id: self._kms_key(spec) for spec in self.res.keys}
        self.key = self.keys["Key"]  # tables, queues and secrets
        self.tables = {table.logical_id: self._table(table) for table in self.res.tables}
        self.queues = {queue.key: self._queue(queue) for queue in self.res.queues}
        self.buckets = recon_stack.create_buckets(self)
        self.buckets.update(retention.create_buckets(self))
        self.alarm_topic = sns.Topic(self, "AlarmTopic", display_name=f"payhub {stage} alarms")
        self.layer = lambda_.LayerVersion(
            self, "RuntimeDeps",
            code=lambda_.Code.from_asset(str(layer_zip)),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
            description="payhub runtime packages (layers/build.py)",
        )
        self.plugin_layers = plugin_layers(self.node.try_get_context("plugin_layers"))
        # DuckDB (~60 MB unzipped) only where the reconciliation engine runs: the ReconShards functions.
        self.engine_layer = lambda_.LayerVersion(
            self, "ReconEngine",
            code=lambda_.Code.from_asset(str(engine_layer_zip)),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
            description="payhub reconciliation engine: DuckDB (layers/build.py --layer engine)",
        )

        self.chalice = self._chalice(project_dir)
        self.rest_api: sam.CfnApi = self.chalice.get_resource("RestAPI")  # type: ignore[assignment]
        # Named, so the API Gateway metrics the alarms watch (dimension ApiName) have a name known at synth.
        self.api_name = self.res.names.prefix
        self.rest_api.name = self.api_name
        self.functions: dict[str, sam.CfnFunction] = {}
        self._split_api()
        self._wire_workers()
        self._remove_chalice_defaults()
        self._secure_api()
        self._custom_domain()
        for dead_letter_queue in (dlq for _, dlq in self.queues.values()):
            self._alarm_on_depth(dead_letter_queue)
        recon_stack.alarm_on_recon(self)
        alerting.Alerting(self).build()
        recon_stack.shard_state_machine(self)

    # --- stage parameters -----------------------------------------------------------------------------------

    def _stage_parameters(self) -> None:
        """What differs between two deployments of the same stage: where the hub is reached from outside.

        Parameters rather than context, so that one synthesized template serves every account; the functions
        learn the public URL from the stack (PAYHUB_PUBLIC_BASE_URL), and refuse to start without it.
        """
        self.domain_name = cdk.CfnParameter(
            self, "DomainName", type="String", allowed_pattern=DOMAIN_NAME_PATTERN,
            constraint_description="a lower-case DNS name such as pay-dev.example.com",
            description="Custom domain of the API; channels call back at https://<DomainName>/callbacks/...")
        self.certificate_arn = cdk.CfnParameter(
            self, "CertificateArn", type="String", allowed_pattern=CERTIFICATE_ARN_PATTERN,
            constraint_description="an ACM certificate ARN in us-east-1",
            description="ACM certificate (us-east-1, edge API) covering DomainName")
        self.public_base_url = cdk.Fn.join("", ["https://", self.domain_name.value_as_string])

    def _custom_domain(self) -> None:
        """The API on https://<DomainName>/ (base path "/"), through SAM's own Domain support: SAM creates the
        domain name and its base path mapping after the API's stage, which a mapping defined beside the
        Chalice-generated API could not wait for."""
        self.rest_api.add_property_override("Domain", {
            "DomainName": self.domain_name.value_as_string,
            "CertificateArn": self.certificate_arn.value_as_string,
            "EndpointConfiguration": "EDGE",
            "SecurityPolicy": "TLS_1_2",
            "BasePath": ["/"],
        })
        cdk.CfnOutput(self, "PublicBaseUrl", value=self.public_base_url,
                      description="what every function is given as PAYHUB_PUBLIC_BASE_URL")

    # --- stateful resources -------------------------------------------------------------------------------

    def _kms_key(self, spec: KmsKey) -> kms.Key:
        return kms.Key(
            self, spec.logical_id,
            alias=spec.alias,
            description=spec.description,
            key_spec=kms.KeySpec[spec.key_spec],
            key_usage=kms.KeyUsage[spec.key_usage],
            enable_key_rotation=spec.rotation,
            removal_policy=cdk.RemovalPolicy.RETAIN,  # what it encrypted outlives any stack
        )

    def _table(self, spec: Table) -> dynamodb.Table:
        table = dynamodb.Table(
            self, spec.logical_id,
            table_name=spec.name,
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=_attribute(spec.sort_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            time_to_live_attribute=spec.ttl_attribute,
            stream=dynamodb.StreamViewType[spec.stream] if spec.stream else None,
            deletion_protection=self.stage == "prod",
            removal_policy=cdk.RemovalPolicy.RETAIN,  # money records outlive any stack
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(name=index.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=_attribute(index.sort_key),
                projection_type=dynamodb.ProjectionType[index.projection],
                non_key_attributes=list(index.non_key_attributes) or None,
            )
        return table

    def _queue(self, spec: Queue) -> tuple[sqs.Queue, sqs.Queue]:
        dead_letters = sqs.Queue(
            self, spec.logical_id.removesuffix("Queue") + "DeadLetterQueue",
            queue_name=spec.dead_letter_name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            retention_period=cdk.Duration.days(14),  # the maximum: time to investigate and redrive
            enforce_ssl=True,
        )
        queue = sqs.Queue(
            self, spec.logical_id,
            queue_name=spec.name,
            visibility_timeout=cdk.Duration.seconds(spec.visibility_timeout_s),
            retention_period=cdk.Duration.seconds(spec.retention_s),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=spec.max_receive_count, queue=dead_letters),
            enforce_ssl=True,
        )
        return queue, dead_letters

    # --- the Chalice app ----------------------------------------------------------------------------------

    def _chalice(self, project_dir: Path) -> Chalice:
        # The construct names the Chalice stage after the CDK scope ("PayHub-dev"), which config.json does
        # not know, so the stage's own block is passed explicitly. It also writes chalice.out/ into the
        # working directory: keep that under build/.
        config = json.loads((project_dir / ".chalice" / "config.json").read_text())
        stage_config = {**config["stages"][self.stage], "automatic_layer": False}
        with contextlib.chdir(project_dir.parent.parent), _importing_from(project_dir):
            return Chalice(self, "App", source_dir=str(project_dir), stage_config=stage_config)

    def _sam_function(self, name: str) -> sam.CfnFunction:
        return self.chalice.get_resource(logical_name(name))  # type: ignore[return-value]

    def _configure(self, function: sam.CfnFunction, name: str, handler: str, access: catalog.Access,
                   memory_mb: int, timeout_s: int, engine: bool = False) -> None:
        """What every function gets: its handler, own role and log group, the layer, the stage's env."""
        log_group = logs.LogGroup(
            self, f"{logical_name(name)}Logs",
            log_group_name=f"/aws/lambda/{self.res.names.prefix}/{name}",
            retention=LOG_RETENTION.get(self.stage, logs.RetentionDays.ONE_MONTH),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        function.handler = handler
        function.role = self._role(name, access, log_group).role_arn
        # The reconciliation engine's layer where it runs; protocol plugins (docs/routing.md) ship in layers of their
        # own, given at deploy: every function that talks to channels gets them, so the registry finds their entry points.
        function.layers = [self.layer.layer_version_arn, *([self.engine_layer.layer_version_arn] if engine else []),
                           *(self.plugin_layers if access.channel_secrets else [])]
        function.memory_size = memory_mb
        function.timeout = timeout_s
        function.tracing = "Active"
        function.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name})
        function.add_property_override("Environment.Variables.PAYHUB_STAGE", self.stage)
        function.add_property_override("Environment.Variables.PAYHUB_PUBLIC_BASE_URL", self.public_base_url)
        for key in access.sends_to:  # queue URLs from the template: no GetQueueUrl at run time
            function.add_property_override(f"Environment.Variables.{queue_url_variable(key)}",
                                           self.queues[key][0].queue_url)
        recon_stack.add_bucket_env(self, function, access)
        self.functions[name] = function

    # --- the API split (docs/design.md#api-split) ---------------------------------------------------------

    def _split_api(self) -> None:
        template = self.chalice.get_resource("APIHandler")
        body = self.rest_api.definition_body
        _check_routes_match(body)
        method_settings = []
        for group in catalog.ROUTE_GROUPS:
            function = self._clone_api_handler(template, group)  # type: ignore[arg-type]
            sizing = group.sizing[self.stage]
            for method, path in group.routes:
                body["paths"][path][method.lower()]["x-amazon-apigateway-integration"]["uri"] = cdk.Fn.sub(
                    INTEGRATION_URI, {"Arn": cdk.Fn.get_att(function.logical_id, "Arn").to_string()}
                )
                self._permit_route(function, group.name, method, path)
                method_settings.append(_throttle(method, path, sizing.reserved_concurrency, len(group.routes)))
        body["x-amazon-apigateway-gateway-responses"] = gateway_responses.definition()
        self.rest_api.definition_body = body
        self.rest_api.method_settings = method_settings

    def _clone_api_handler(self, template: sam.CfnFunction, group: catalog.RouteGroup) -> sam.CfnFunction:
        # Same code asset, runtime and environment as Chalice's APIHandler; never a FunctionName, so stages
        # and stacks can never collide on a name.
        sizing = group.sizing[self.stage]
        function = sam.CfnFunction(
            self, f"{group.name.title()}Function",
            code_uri=template.code_uri,
            runtime=template.runtime,
            architectures=template.architectures,
            environment=template.environment,
            reserved_concurrent_executions=sizing.reserved_concurrency,
        )
        self._configure(function, f"{group.name}_api", group.handler, group.access, sizing.memory_mb,
                        sizing.timeout_s)
        self._alarm_on_throttles(function, group.name)
        return function

    def _permit_route(self, function: sam.CfnFunction, group: str, method: str, path: str) -> None:
        """One invoke permission per route, scoped to its method and path (path parameters become ``*``)."""
        source_path = re.sub(r"\{[^}]+\}", "*", path)
        lambda_.CfnPermission(
            self, f"Invoke{logical_name(group)}{method.title()}{_path_id(path)}",
            action="lambda:InvokeFunction",
            function_name=function.ref,
            principal="apigateway.amazonaws.com",
            source_arn=cdk.Fn.sub(
                "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/*/" + method + source_path,
                {"Api": self.rest_api.ref},
            ),
        )

    def _remove_chalice_defaults(self) -> None:
        """Drop what the split replaced: the shared handler, its /* permission and the shared role."""
        included = self.chalice.sam_template
        for logical_id in ("APIHandler", "APIHandlerInvokePermission", "DefaultRole"):
            included.node.try_remove_child(logical_id)
        outputs = included.node.find_child("$Outputs")
        for logical_id in ("APIHandlerArn", "APIHandlerName"):
            outputs.node.try_remove_child(logical_id)

    def _secure_api(self) -> None:
        self.rest_api.add_property_override("SecurityPolicy", API_SECURITY_POLICY)
        self.rest_api.add_property_override("EndpointAccessMode", API_ENDPOINT_ACCESS_MODE)

    # --- workers ------------------------------------------------------------------------------------------

    def _wire_workers(self) -> None:
        schedules = {schedule.function: schedule for schedule in self.res.schedules}
        for worker in catalog.WORKERS:
            function = self._sam_function(worker.name)
            self._configure(function, worker.name, worker.handler, worker.access, worker.memory_mb,
                            worker.timeout_s, engine=worker.engine)
            if worker.ephemeral_mb != 512:  # Lambda's default /tmp
                function.add_property_override("EphemeralStorage", {"Size": worker.ephemeral_mb})
            if worker.queue is not None:
                self._consume(function, worker)
            if worker.stream is not None:
                self._relay_stream(function, worker)
            if worker.name in schedules:
                self._schedule(function, worker.name, schedules[worker.name].rate_minutes)
        recon_stack.schedule_daily(self)
        retention.schedule_archival(self)

    def _consume(self, function: sam.CfnFunction, worker: catalog.Worker) -> None:
        spec = next(queue for queue in self.res.queues if queue.key == worker.queue)
        if spec.visibility_timeout_s < VISIBILITY_TO_TIMEOUT_RATIO * worker.timeout_s:
            raise ValueError(f"{spec.name}: visibility timeout {spec.visibility_timeout_s}s is below "
                             f"{VISIBILITY_TO_TIMEOUT_RATIO}x the {worker.name} timeout ({worker.timeout_s}s)")
        queue, _ = self.queues[spec.key]
        lambda_.CfnEventSourceMapping(
            self, f"{logical_name(worker.name)}Source",
            function_name=function.ref,
            event_source_arn=queue.queue_arn,
            batch_size=spec.batch_size,
            # Without it one failed message fails the whole batch, or worse, Chalice-style handlers that
            # swallow errors delete failed messages silently. Handlers return batchItemFailures.
            function_response_types=["ReportBatchItemFailures"],
        )

    def _relay_stream(self, function: sam.CfnFunction, worker: catalog.Worker) -> None:
        """The outbox relay reads the state table's stream: only INSERTs of items that carry ``outbox_shard``
        reach it (the filter keeps every other write from invoking it). A failed record is retried from where
        the handler says; after ``STREAM_RETRIES`` the stream moves on and the outbox sweep publishes it."""
        assert worker.stream is not None
        table = self.tables[worker.stream]
        lambda_.CfnEventSourceMapping(
            self, f"{logical_name(worker.name)}Source",
            function_name=function.ref,
            event_source_arn=table.table_stream_arn,
            starting_position="TRIM_HORIZON",  # nothing written before the mapping existed is skipped
            batch_size=catalog.STREAM_BATCH,
            maximum_batching_window_in_seconds=0,  # latency first: a webhook waits on this
            parallelization_factor=catalog.STREAM_PARALLELIZATION,
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=catalog.STREAM_RETRIES,
            function_response_types=["ReportBatchItemFailures"],
            filter_criteria=lambda_.CfnEventSourceMapping.FilterCriteriaProperty(filters=[
                lambda_.CfnEventSourceMapping.FilterProperty(pattern=json.dumps(OUTBOX_STREAM_FILTER))]),
        )

    def _schedule(self, function: sam.CfnFunction, name: str, rate_minutes: int) -> None:
        unit = "minute" if rate_minutes == 1 else "minutes"
        rule = events.CfnRule(
            self, f"{logical_name(name)}Schedule",
            schedule_expression=f"rate({rate_minutes} {unit})",
            state="ENABLED",
            targets=[events.CfnRule.TargetProperty(arn=cdk.Fn.get_att(function.logical_id, "Arn").to_string(),
                                                   id=name)],
        )
        lambda_.CfnPermission(
            self, f"{logical_name(name)}SchedulePermission",
            action="lambda:InvokeFunction",
            function_name=function.ref,
            principal="events.amazonaws.com",
            source_arn=rule.attr_arn,
        )

    # --- least privilege ----------------------------------------------------------------------------------

    def _role(self, name: str, access: catalog.Access, log_group: logs.LogGroup) -> iam.Role:
        statements = [
            iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[log_group.log_group_arn]),
            # X-Ray accepts no resource-level scoping: "*" is the only valid resource for these two actions.
            iam.PolicyStatement(actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]),
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                                resources=[self.key.key_arn]),
        ]
        for logical_id, level in access.tables.items():
            statements += self._table_statements(logical_id, level)
        if access.scans:
            statements.append(iam.PolicyStatement(
                actions=["dynamodb:Scan"], resources=[self.tables[logical_id].table_arn for logical_id in access.scans]))
        statements += [iam.PolicyStatement(actions=list(actions), resources=[self.keys[logical_id].key_arn])
                       for logical_id, actions in access.kms.items()]
        if access.sends_to:
            statements.append(iam.PolicyStatement(
                actions=["sqs:SendMessage"],
                resources=[self.queues[key][0].queue_arn for key in access.sends_to]))
        statements += self._consumer_statements(name)
        secret_prefixes = ([f"payhub/{self.stage}/channels/"] if access.channel_secrets else []) + (
            [f"payhub/{self.stage}/merchants/"] if access.merchant_webhook_secrets else []) + (
            [self.res.names.invoicing_secret_prefix()] if access.invoicing_secrets else []) + (
            [f"payhub/{self.stage}/risk/"] if access.risk_secrets else []) + (
            [f"payhub/{self.stage}/banks/"] if access.bank_secrets else [])
        if secret_prefixes:
            statements.append(iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[self.format_arn(service="secretsmanager", resource="secret", resource_name=f"{p}*",
                                           arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
                           for p in secret_prefixes]))
        if access.rotates_merchant_webhook_secrets:
            statements.append(iam.PolicyStatement(
                actions=["secretsmanager:PutSecretValue"],
                resources=[self.format_arn(service="secretsmanager", resource="secret",
                                           resource_name=f"payhub/{self.stage}/merchants/*",
                                           arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]))
        statements += recon_stack.access_statements(self, access)
        return iam.Role(
            self, f"{logical_name(name)}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"payhub {self.stage} {name}: least privilege, see infra/functions.py",
            inline_policies={"access": iam.PolicyDocument(statements=statements)},
        )

    def _table_statements(self, logical_id: str, level: str) -> list[iam.PolicyStatement]:
        actions = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"]
        table = self.tables[logical_id]
        extra: list[iam.PolicyStatement] = []
        if level == catalog.APPEND:
            actions += ["dynamodb:PutItem"]  # new entries only: entries are never updated nor deleted
            # ...but the running totals kept beside them (a balance and a day total per account and shard,
            # chalicelib/storage/ledger_repo.py) are added to: UpdateItem on those keys and no others.
            extra.append(iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"], resources=[table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(catalog.LEDGER_TOTAL_KEYS)}}))
        elif level == catalog.WRITE:
            actions += ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]
        return [iam.PolicyStatement(actions=actions, resources=[table.table_arn, f"{table.table_arn}/index/*"]),
                *extra]

    def _consumer_statements(self, name: str) -> list[iam.PolicyStatement]:
        worker = catalog.WORKERS_BY_NAME.get(name)
        if worker is not None and worker.stream is not None:
            stream_arn = self.tables[worker.stream].table_stream_arn
            assert stream_arn is not None
            return [iam.PolicyStatement(
                actions=["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                         "dynamodb:ListStreams"],
                resources=[stream_arn])]
        if worker is None or worker.queue is None:
            return []
        queue, _ = self.queues[worker.queue]
        return [iam.PolicyStatement(
            actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                     "sqs:GetQueueAttributes"],
            resources=[queue.queue_arn])]

    # --- alarms -------------------------------------------------------------------------------------------

    def _alarm_on_depth(self, dead_letters: sqs.Queue) -> None:
        alarm = cloudwatch.Alarm(
            self, f"{dead_letters.node.id}Alarm",
            alarm_description=f"{self.stage}: messages in a dead-letter queue need a human",
            metric=dead_letters.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic="Maximum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))

    def _alarm_on_throttles(self, function: sam.CfnFunction, group: str) -> None:
        metric = cloudwatch.Metric(
            namespace="AWS/Lambda", metric_name="Throttles", dimensions_map={"FunctionName": function.ref},
            period=cdk.Duration.minutes(1), statistic="Sum")
        alarm = cloudwatch.Alarm(
            self, f"{logical_name(group)}ThrottlesAlarm",
            alarm_description=f"{self.stage}: the {group} function hit its reserved concurrency",
            metric=metric, threshold=0, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))


@contextlib.contextmanager
def _importing_from(project_dir: Path) -> Iterator[None]:
    """Make Chalice load app.py and functions/ from the staged copy, as Lambda will, not from the repo.

    Chalice imports the app in-process to read its routes, and appends vendor/ to the END of sys.path, so
    the repo's own functions/ (on the path for infra.resources) would win; a stale module from an earlier
    synth of another stage would win too.
    """
    for name in [n for n in sys.modules if n == "app" or n == "functions" or n.startswith("functions.")]:
        del sys.modules[name]
    saved = list(sys.path)
    sys.path[:0] = [str(project_dir), str(project_dir / "vendor")]
    # Chalice imports the app under the stage's environment, where settings refuse to load without the public
    # URL the deployed stack provides. Reading routes needs none: a placeholder of a reserved TLD, process only.
    # (A local URL of the builder's shell would be refused there too, so it is replaced for the import.)
    # Chalice also leaves the stage's own variables (PAYHUB_STAGE...) in os.environ: the builder's environment
    # is put back whole afterwards, so a process that synthesizes a stage does not then run as it.
    builder_environ = dict(os.environ)
    os.environ["PAYHUB_PUBLIC_BASE_URL"] = build.PACKAGING_PUBLIC_BASE_URL
    try:
        yield
    finally:
        sys.path[:] = saved
        os.environ.clear()
        os.environ.update(builder_environ)


LAYER_VERSION_ARN_PATTERN = r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]{1,140}:[0-9]+$"
MAX_PLUGIN_LAYERS = 4  # Lambda takes 5 layers a function; the hub's own is the first


def plugin_layers(given: str | None) -> list[str]:
    """The ``plugin_layers`` context (``make deploy PLUGIN_LAYERS=arn1,arn2``): versioned layer ARNs, checked here
    so a typo fails the synth rather than the deployment."""
    arns = [arn.strip() for arn in (given or "").split(",") if arn.strip()]
    bad = [arn for arn in arns if not re.match(LAYER_VERSION_ARN_PATTERN, arn)]
    if bad:
        raise ValueError(f"plugin_layers: not a versioned Lambda layer ARN: {', '.join(bad)}")
    if len(arns) > MAX_PLUGIN_LAYERS or len(set(arns)) != len(arns):
        raise ValueError(f"plugin_layers: at most {MAX_PLUGIN_LAYERS} distinct layers (Lambda allows 5 with the hub's)")
    return arns


def _attribute(name: str | None) -> dynamodb.Attribute | None:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING) if name else None


def _path_id(path: str) -> str:
    return "".join(part.title() for part in re.findall(r"[A-Za-z0-9]+", path))


def _throttle(method: str, path: str, reserved_concurrency: int, routes_in_group: int) -> dict[str, Any]:
    # API Gateway throttles per method, not per function: the group's budget is shared equally between its
    # routes so that all of them at their limit still stay under the function's cap (requests of <= 1 s).
    limit = max(1, int(reserved_concurrency * THROTTLE_SHARE_OF_CONCURRENCY) // routes_in_group)
    return {
        "HttpMethod": method,
        "ResourcePath": "/" + path.replace("/", "~1"),  # API Gateway's escaping: "/v1/x" -> "/~1v1~1x"
        "ThrottlingRateLimit": limit,
        "ThrottlingBurstLimit": limit,
    }


def _check_routes_match(body: dict[str, Any]) -> None:
    """Every route Chalice generated belongs to exactly one group, and every group route exists."""
    generated = {(method.upper(), path) for path, methods in body["paths"].items() for method in methods
                 if method != "options"}
    assigned = [route for group in catalog.ROUTE_GROUPS for route in group.routes]
    if len(assigned) != len(set(assigned)):
        raise ValueError("a route is assigned to more than one group in infra/functions.py")
    if generated != set(assigned):
        raise ValueError(f"routes out of sync with infra/functions.py: only in app {generated - set(assigned)}, "
                         f"only in infra {set(assigned) - generated}")
