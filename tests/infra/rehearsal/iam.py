"""Every AWS call a function made, as the IAM requests AWS would authorize, decided against its role.

The calls come from the recorder in each function process (``runtime.py``) and from the event source
mappings (Lambda polls a queue with the function's role). Each becomes one or more (action, resource ARN,
context) requests: a transaction is authorized item by item, a batch table by table, and a call on a resource
encrypted with a customer-managed KMS key also needs that key (SQS, Secrets Manager and S3 ask KMS with the
caller's permissions). The decisions are made by @cloud-copilot/iam-simulate (infra/node), a maintained
simulator of IAM's evaluation logic, through ``infra/node/iam_simulate.cjs``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.infra.rehearsal.cfn import ACCOUNT

ROOT = Path(__file__).resolve().parents[3]
NODE_DIR = ROOT / "infra" / "node"
SIMULATOR = NODE_DIR / "iam_simulate.cjs"


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        extra = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{extra}"


class Unmapped(Exception):
    """A call the rehearsal does not know how to authorize: add it here rather than let it pass unchecked."""


@dataclass
class Keys:
    """What the checks need to know about the local resources: which KMS key encrypts what."""

    region: str
    key_arns: dict[str, str]  # alias name or key id -> key ARN
    queue_keys: dict[str, str]  # queue name -> key ARN (SSE-KMS)
    secret_keys: dict[str, str]  # secret ARN -> key ARN
    bucket_keys: dict[str, str]  # bucket name -> key ARN (default encryption)

    def key(self, key_id: str) -> str:
        if key_id.startswith("arn:"):
            return key_id
        return self.key_arns[key_id]


def _table(region: str, name: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def _queue_name(names: dict[str, Any]) -> str:
    return str(names.get("QueueName") or names["QueueUrl"].rstrip("/").rsplit("/", 1)[-1])


_DYNAMODB_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
_S3_ACTIONS = {"PutObject": "PutObject", "GetObject": "GetObject", "HeadObject": "GetObject",
               "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
               "CompleteMultipartUpload": "PutObject", "AbortMultipartUpload": "AbortMultipartUpload"}


def requests_for(call: dict[str, Any], keys: Keys) -> list[Request]:
    service, operation, names = call["service"], call["operation"], call["names"]
    region = call.get("region") or keys.region
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return [Request(f"dynamodb:{_DYNAMODB_ITEM_ACTIONS[kind]}", _table(region, table))
                    for kind, table in names["items"]]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [Request(f"dynamodb:{operation}", _table(region, table)) for table in names["tables"]]
        return [Request(f"dynamodb:{operation}", _table(region, names["TableName"], names.get("IndexName")))]
    if service == "dynamodbstreams":  # IAM names stream actions under dynamodb:, on the stream's ARN
        return [Request(f"dynamodb:{operation}", names["StreamArn"])]
    if service == "sqs":
        name = _queue_name(names)
        arn = f"arn:aws:sqs:{region}:{ACCOUNT}:{name}"
        action = "SendMessage" if operation == "SendMessageBatch" else operation
        found = [Request(f"sqs:{action}", arn)]
        key = keys.queue_keys.get(name)
        if key and action == "SendMessage":  # the producer asks KMS for the message's data key
            found += [Request("kms:GenerateDataKey", key), Request("kms:Decrypt", key)]
        elif key and action == "ReceiveMessage":
            found.append(Request("kms:Decrypt", key))
        return found
    if service == "secretsmanager":
        secret = call.get("arn") or f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{names['SecretId']}"
        found = [Request(f"secretsmanager:{operation}", secret)]
        key = keys.secret_keys.get(secret)
        if key and operation == "GetSecretValue":
            found.append(Request("kms:Decrypt", key))
        elif key and operation == "PutSecretValue":
            found += [Request("kms:GenerateDataKey", key), Request("kms:Decrypt", key)]
        return found
    if service == "kms":
        return [Request(f"kms:{operation}", keys.key(names["KeyId"]))]
    if service == "s3" and operation in _S3_ACTIONS:
        found = [Request(f"s3:{_S3_ACTIONS[operation]}", f"arn:aws:s3:::{names['Bucket']}/{names['Key']}")]
        key = keys.bucket_keys.get(names["Bucket"])
        if key and operation in ("PutObject", "CreateMultipartUpload", "UploadPart"):
            found.append(Request("kms:GenerateDataKey", key))
        elif key and operation in ("GetObject", "CompleteMultipartUpload"):
            found.append(Request("kms:Decrypt", key))
        return found
    if service == "s3" and operation == "ListObjectsV2":  # ReconShards' match lists its shard's files
        return [Request("s3:ListBucket", f"arn:aws:s3:::{names['Bucket']}", (("s3:prefix", names.get("Prefix", "")),))]
    if service == "cloudwatch" and operation == "PutMetricData":
        return [Request("cloudwatch:PutMetricData", "*", (("cloudwatch:namespace", names["Namespace"]),))]
    raise Unmapped(f"{service}:{operation} is not mapped to IAM requests in tests/infra/rehearsal/iam.py")


def resource_policies(template: Any) -> dict[str, dict[str, Any]]:
    """Resource ARN -> its policy in the template: KMS key policies (a key's own policy must let IAM grant it),
    queue policies and bucket policies (both deny requests that are not over TLS)."""
    found = {}
    for logical_id, resource in template.of_type("AWS::KMS::Key").items():
        found[template.arns[logical_id]] = template.resolve(resource["Properties"]["KeyPolicy"])
    for resource in template.of_type("AWS::SQS::QueuePolicy").values():
        props = resource["Properties"]
        for queue in props["Queues"]:
            found[template.arns[queue["Ref"]]] = template.resolve(props["PolicyDocument"])
    for resource in template.of_type("AWS::S3::BucketPolicy").values():
        props = resource["Properties"]
        found[f"arn:aws:s3:::{template.resolve(props['Bucket'])}"] = template.resolve(props["PolicyDocument"])
    return found


def _resource_policy(resource: str, policies: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if resource.startswith("arn:aws:s3:::"):
        return policies.get(resource.split("/", 1)[0])
    return policies.get(resource)


# What every call from a function carries: boto3 on Lambda always speaks https.
REQUEST_CONTEXT = {"aws:SecureTransport": "true"}


def simulate(principal: str, policies: list[dict[str, Any]], requests: list[Request],
             resource_policies: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """The simulator's decision for each request: "Allowed", "ImplicitlyDenied" or "ExplicitlyDenied"."""
    if not (NODE_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
        raise RuntimeError("the IAM simulator is not installed: run `make node-tools` (npm ci in infra/node)")
    payload = [{"principal": principal, "policies": policies, "action": r.action, "resource": r.resource,
                "resourcePolicy": _resource_policy(r.resource, resource_policies or {}),
                "context": {**REQUEST_CONTEXT, **dict(r.context)}} for r in requests]
    done = subprocess.run(["node", str(SIMULATOR)], input=json.dumps(payload), capture_output=True, text=True,  # noqa: S603, S607
                          cwd=NODE_DIR, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"iam_simulate.cjs failed: {done.stderr[-2000:]}")
    answers = json.loads(done.stdout)
    return [a["result"] if not a["errors"] else f"invalid request: {a['errors']}" for a in answers]
