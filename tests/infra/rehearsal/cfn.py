"""The synthesized template as the rehearsal reads it: intrinsics resolved against the local resources, the
stateful resources created in moto from their own template properties, and the wiring of every function.

A small CloudFormation for exactly what the stack uses: ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``,
``Fn::Select``, ``Fn::Split``, pseudo parameters, stage parameters. An intrinsic or a resource type it
does not know fails loudly, so the template cannot grow past what the rehearsal checks without notice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"  # moto's account


@dataclass
class Function:
    logical_id: str
    name: str  # the physical name the rehearsal gives it (Lambda would generate one)
    handler: str
    environment: dict[str, str]
    role: str  # logical id of its AWS::IAM::Role
    memory_mb: int
    timeout_s: int
    layers: list[str]  # asset paths of its layers
    code: str  # asset path of its code

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{{region}}:{ACCOUNT}:function:{self.name}"


@dataclass
class Template:
    body: dict[str, Any]
    region: str
    parameters: dict[str, str]
    assets: dict[str, str]  # S3 object key of an asset -> its path in the cloud assembly
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> name / id
    arns: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    stream_arns: dict[str, str] = field(default_factory=dict)  # table logical id -> its stream's ARN

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.body["Resources"])

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {logical_id: r for logical_id, r in self.resources.items() if r["Type"] == kind}

    # --- intrinsics -----------------------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, arg)] = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(logical_id, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(p) for p in self.resolve(parts))
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                resolved = {k: self.resolve(v) for k, v in variables.items()}
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(
                    resolved[m.group(1)] if m.group(1) in resolved else
                    self._get_att(*m.group(1).split(".", 1)) if "." in m.group(1) else self._ref(m.group(1))),
                    text)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(index)]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key.startswith("Fn::") or key == "Condition":
                raise NotImplementedError(f"the rehearsal does not resolve {key}")
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "PayHub-dev"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"Ref {name}: not a parameter nor a resource the rehearsal created")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn" and logical_id in self.arns:
            return self.arns[logical_id]
        if attribute == "StreamArn" and logical_id in self.stream_arns:
            return self.stream_arns[logical_id]
        raise KeyError(f"GetAtt {logical_id}.{attribute}: not known to the rehearsal")

    # --- the functions --------------------------------------------------------------------------------------

    def name_functions_and_roles(self) -> None:
        """Lambda and IAM would generate these names; the rehearsal picks stable ones."""
        for logical_id in self.of_type("AWS::IAM::Role"):
            self.physical[logical_id] = f"PayHub-dev-{logical_id}"
            self.arns[logical_id] = f"arn:aws:iam::{ACCOUNT}:role/PayHub-dev-{logical_id}"
        for logical_id in self.of_type("AWS::Serverless::Function"):
            self.physical[logical_id] = f"PayHub-dev-{logical_id}"
            self.arns[logical_id] = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:PayHub-dev-{logical_id}"
        for logical_id, resource in self.of_type("AWS::Logs::LogGroup").items():
            name = self.resolve(resource["Properties"]["LogGroupName"])
            self.physical[logical_id] = name
            self.arns[logical_id] = f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{name}:*"
        for logical_id in self.of_type("AWS::Events::Rule"):
            self.arns[logical_id] = f"arn:aws:events:{self.region}:{ACCOUNT}:rule/PayHub-dev-{logical_id}"
        for logical_id in self.of_type("AWS::Serverless::Api"):
            self.physical[logical_id] = "rehearsalapi"
        for logical_id in self.of_type("AWS::Lambda::LayerVersion"):
            self.arns[logical_id] = f"arn:aws:lambda:{self.region}:{ACCOUNT}:layer:{logical_id}:1"
            self.physical[logical_id] = self.arns[logical_id]

    def functions(self) -> dict[str, Function]:
        layer_assets = {lid: self._asset(r["Properties"]["Content"])
                        for lid, r in self.of_type("AWS::Lambda::LayerVersion").items()}
        found = {}
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            role = props["Role"]["Fn::GetAtt"][0]
            layers = [layer_assets[layer["Ref"]] for layer in props.get("Layers", [])]
            found[logical_id] = Function(
                logical_id=logical_id, name=self.physical[logical_id], handler=props["Handler"],
                environment={k: str(self.resolve(v)) for k, v in props["Environment"]["Variables"].items()},
                role=role, memory_mb=int(props["MemorySize"]), timeout_s=int(props["Timeout"]),
                layers=layers, code=self._asset(props["CodeUri"]))
        return found

    def _asset(self, location: dict[str, Any]) -> str:
        key = location.get("S3Key") or location.get("Key")
        if key is None:
            raise KeyError(f"not an asset location: {location}")
        return self.assets[str(self.resolve(key))]

    def role_policies(self, role: str) -> list[dict[str, Any]]:
        props = self.resources[role]["Properties"]
        if props.get("ManagedPolicyArns"):
            raise NotImplementedError(f"{role}: managed policies are not evaluated by the rehearsal")
        return [{"name": p["PolicyName"], "policy": self.resolve(p["PolicyDocument"])}
                for p in props.get("Policies", [])]

    def routes(self) -> list[tuple[str, str, str]]:
        """(METHOD, path template, function logical id) from the API's OpenAPI body, as API Gateway routes."""
        [api] = self.of_type("AWS::Serverless::Api").values()
        found = []
        for path, methods in api["Properties"]["DefinitionBody"]["paths"].items():
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration")
                if method == "options" or integration is None:
                    continue
                uri = integration["uri"]["Fn::Sub"]
                [function] = [v["Fn::GetAtt"][0] for v in uri[1].values()]
                found.append((method.upper(), path, function))
        return found

    def binary_media_types(self) -> list[str]:
        [api] = self.of_type("AWS::Serverless::Api").values()
        return list(api["Properties"]["DefinitionBody"].get("x-amazon-apigateway-binary-media-types", []))

    def queue_triggers(self) -> list[tuple[str, str, int]]:
        """(queue logical id, function logical id, batch size) of every SQS event source mapping."""
        return self._triggers("Arn")

    def stream_triggers(self) -> list[tuple[str, str, int]]:
        """(table logical id, function logical id, batch size) of every DynamoDB stream event source mapping."""
        return self._triggers("StreamArn")

    def _triggers(self, attribute: str) -> list[tuple[str, str, int]]:
        found = []
        for resource in self.of_type("AWS::Lambda::EventSourceMapping").values():
            props = resource["Properties"]
            assert props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
            source, source_attribute = props["EventSourceArn"]["Fn::GetAtt"]
            if source_attribute == attribute:
                found.append((source, props["FunctionName"]["Ref"], int(props.get("BatchSize", 10))))
        return found

    def schedules(self) -> list[tuple[str, str, str, dict[str, Any] | None]]:
        """(rule logical id, schedule expression, function logical id, constant input) of every rule."""
        found = []
        for logical_id, resource in self.of_type("AWS::Events::Rule").items():
            props = resource["Properties"]
            for target in props["Targets"]:
                function = target["Arn"]["Fn::GetAtt"][0]
                found.append((logical_id, props["ScheduleExpression"], function,
                              json.loads(target["Input"]) if "Input" in target else None))
        return found


# --- creating the stateful resources in moto from their template properties ------------------------------------

STATEFUL = ("AWS::KMS::Key", "AWS::KMS::Alias", "AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket")


def provision(template: Template, session: Any) -> None:
    """Create keys, aliases, tables, queues and buckets as CloudFormation would, in dependency order."""
    kms, dynamodb, sqs, s3 = (session.client(s) for s in ("kms", "dynamodb", "sqs", "s3"))
    for logical_id, resource in template.of_type("AWS::KMS::Key").items():
        props = resource["Properties"]
        meta = kms.create_key(Description=props.get("Description", ""), KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
                              KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"))["KeyMetadata"]
        template.physical[logical_id], template.arns[logical_id] = meta["KeyId"], meta["Arn"]
    for resource in template.of_type("AWS::KMS::Alias").values():
        props = template.resolve(resource["Properties"])
        kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    for logical_id, resource in template.of_type("AWS::DynamoDB::Table").items():
        props = template.resolve(resource["Properties"])
        params = {key: props[key] for key in ("TableName", "KeySchema", "AttributeDefinitions") if key in props}
        if props.get("GlobalSecondaryIndexes"):
            params["GlobalSecondaryIndexes"] = [
                {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
                for index in props["GlobalSecondaryIndexes"]]
        params["BillingMode"] = props.get("BillingMode", "PROVISIONED")
        if props.get("StreamSpecification"):
            params["StreamSpecification"] = {"StreamEnabled": True,
                                             "StreamViewType": props["StreamSpecification"]["StreamViewType"]}
        if props.get("SSESpecification", {}).get("SSEEnabled"):
            params["SSESpecification"] = {"Enabled": True, "SSEType": "KMS",
                                          "KMSMasterKeyId": props["SSESpecification"]["KMSMasterKeyId"]}
        description = dynamodb.create_table(**params)["TableDescription"]
        if props.get("TimeToLiveSpecification", {}).get("Enabled"):
            dynamodb.update_time_to_live(TableName=props["TableName"], TimeToLiveSpecification={
                "Enabled": True, "AttributeName": props["TimeToLiveSpecification"]["AttributeName"]})
        template.physical[logical_id], template.arns[logical_id] = props["TableName"], description["TableArn"]
        if "LatestStreamArn" in description:
            template.stream_arns[logical_id] = description["LatestStreamArn"]
    queues = template.of_type("AWS::SQS::Queue")
    # Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
    for logical_id in sorted(queues, key=lambda lid: "RedrivePolicy" in queues[lid]["Properties"]):
        props = template.resolve(queues[logical_id]["Properties"])
        attributes = {key: str(props[key]) for key in ("VisibilityTimeout", "MessageRetentionPeriod",
                                                        "KmsMasterKeyId") if key in props}
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        template.physical[logical_id], template.arns[logical_id] = url, arn
    for logical_id, resource in template.of_type("AWS::S3::Bucket").items():
        props = template.resolve(resource["Properties"])
        s3.create_bucket(Bucket=props["BucketName"],
                         CreateBucketConfiguration={"LocationConstraint": template.region})
        if "BucketEncryption" in props:
            # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
            rules = [{"BucketKeyEnabled": rule.get("BucketKeyEnabled", False),
                      "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                     for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
            s3.put_bucket_encryption(Bucket=props["BucketName"],
                                     ServerSideEncryptionConfiguration={"Rules": rules})
        template.physical[logical_id] = props["BucketName"]
        template.arns[logical_id] = f"arn:aws:s3:::{props['BucketName']}"
