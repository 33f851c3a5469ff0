"""Create a stage's tables, queues (with DLQs) and KMS keys over boto3, from infra/resources.py.

The same definitions the CDK stack synthesizes, so local and deployed resources cannot drift apart.
Idempotent: existing resources are left as they are.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.config.settings import settings
from chalicelib.storage.aws import client
from infra.resources import KmsKey, Queue, Table, resources


def _create_table(table: Table) -> None:
    dynamodb = client("dynamodb")
    key_schema = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
    if table.sort_key:
        key_schema.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
    params: dict[str, Any] = {
        "TableName": table.name, "BillingMode": "PAY_PER_REQUEST", "KeySchema": key_schema,
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in table.attributes],
    }
    if table.indexes:
        params["GlobalSecondaryIndexes"] = [{
            "IndexName": index.name,
            "KeySchema": [{"AttributeName": index.partition_key, "KeyType": "HASH"}] + (
                [{"AttributeName": index.sort_key, "KeyType": "RANGE"}] if index.sort_key else []),
            "Projection": {"ProjectionType": index.projection, **(
                {"NonKeyAttributes": list(index.non_key_attributes)} if index.non_key_attributes else {})},
        } for index in table.indexes]
    if table.stream:
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream}
    try:
        dynamodb.create_table(**params)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return
    if table.ttl_attribute:
        dynamodb.update_time_to_live(TableName=table.name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": table.ttl_attribute})


def _create_queue(queue: Queue) -> None:
    sqs = client("sqs")
    dlq_url = sqs.create_queue(QueueName=queue.dead_letter_name,
                               Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(QueueName=queue.name, Attributes={
        "VisibilityTimeout": str(queue.visibility_timeout_s),
        "MessageRetentionPeriod": str(queue.retention_s),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}),
    })


def _create_kms_key(spec: KmsKey) -> None:
    kms = client("kms")
    aliases = {a["AliasName"] for page in kms.get_paginator("list_aliases").paginate() for a in page["Aliases"]}
    if spec.alias in aliases:
        return
    key_id = kms.create_key(Description=spec.description, KeySpec=spec.key_spec,
                            KeyUsage=spec.key_usage)["KeyMetadata"]["KeyId"]
    if spec.rotation:
        kms.enable_key_rotation(KeyId=key_id)
    kms.create_alias(AliasName=spec.alias, TargetKeyId=key_id)


def _create_bucket(name: str, *, object_lock: bool = False) -> None:
    s3 = client("s3")
    try:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": settings().region},
                         ObjectLockEnabledForBucket=object_lock)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def create_stage_resources(stage: str) -> None:
    defs = resources(stage)
    for table in defs.tables:
        _create_table(table)
    for queue in defs.queues:
        _create_queue(queue)
    for key in defs.keys:
        _create_kms_key(key)
    for bucket in defs.buckets:
        _create_bucket(bucket.name)
    _create_bucket(defs.names.archive_bucket, object_lock=True)  # infra/retention.py: records kept under lock
