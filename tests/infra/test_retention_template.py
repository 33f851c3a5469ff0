"""Retention in the template: the archive bucket is locked, encrypted and tiered with one expiry per record kind
from the stage parameters; reconciliation evidence lives as long as its parameter says; the archival sweep runs
daily over its segments with exactly the access it needs; a money record below five years is refused at synth."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest

from chalicelib.retention.policy import DEFAULT_RETENTION_DAYS

ARCHIVE_HANDLER = "functions.archive_sweep.handler"


def of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == type_name}


def bucket(template: dict[str, Any], infix: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(lid, b) for lid, b in of_type(template, "AWS::S3::Bucket").items()
                if infix in json.dumps(b["Properties"]["BucketName"])]
    return found


def archive_function(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [(lid, f) for lid, f in of_type(template, "AWS::Serverless::Function").items()
                if f["Properties"]["Handler"] == ARCHIVE_HANDLER]
    return found


@pytest.fixture(scope="module")
def dev(synth) -> dict[str, Any]:
    return synth("dev")


@pytest.fixture(scope="module")
def longer() -> dict[str, Any]:
    from infra.app import synth_stage

    app = cdk.App(context={"retention_payments_days": "4000", "retention_recon_evidence_days": "2500",
                           "archive_lock_mode": "COMPLIANCE", "archive_segments": "2"})
    stack = synth_stage(app, "prod")
    return app.synth().get_stack_by_name(stack.stack_name).template


def test_the_archive_bucket_is_locked_private_encrypted_and_kept(dev):
    _, archive = bucket(dev, "payhub-dev-archive-")
    props = archive["Properties"]
    assert props["ObjectLockEnabled"] is True and props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"] == "aws:kms"
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert archive["DeletionPolicy"] == "Retain"


def lifecycle(bucket_resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule.get("Prefix", rule.get("Id", "")): rule
            for rule in bucket_resource["Properties"]["LifecycleConfiguration"]["Rules"]}


def test_each_archived_kind_expires_after_its_retention_and_moves_to_glacier_instant_retrieval(dev, longer):
    for template, payments_days in ((dev, DEFAULT_RETENTION_DAYS["payments"]), (longer, 4000)):
        rules = lifecycle(bucket(template, "-archive-")[1])
        expected = {**DEFAULT_RETENTION_DAYS, "payments": payments_days}
        for kind in ("payments", "refunds", "events", "audit"):
            rule = rules[f"records/{kind}/"]
            assert rule["ExpirationInDays"] == expected[kind] and rule["Status"] == "Enabled"
            assert rule["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": 30}]
    assert min(DEFAULT_RETENTION_DAYS[k] for k in ("payments", "refunds", "ledger", "audit")) >= 5 * 365


def test_recon_evidence_is_kept_as_long_as_its_parameter_no_longer_three_years(dev, longer):
    for template, days in ((dev, DEFAULT_RETENTION_DAYS["recon_evidence"]), (longer, 2500)):
        (rule,) = [r for r in lifecycle(bucket(template, "-recon-")[1]).values() if "ExpirationInDays" in r]
        assert rule["ExpirationInDays"] == days
        assert rule["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": 90}]


def test_the_sweep_runs_daily_on_every_segment_and_knows_the_policy(dev, longer):
    for template, segments, mode in ((dev, 4, "GOVERNANCE"), (longer, 2, "COMPLIANCE")):
        function_id, function = archive_function(template)
        (rule,) = [r for r in of_type(template, "AWS::Events::Rule").values()
                   if any(t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} for t in r["Properties"]["Targets"])]
        assert rule["Properties"]["ScheduleExpression"] == "cron(0 19 * * ? *)"
        inputs = [json.loads(t["Input"]) for t in rule["Properties"]["Targets"]]
        assert inputs == [{"segment": n, "segments": segments} for n in range(segments)]
        env = function["Properties"]["Environment"]["Variables"]
        kept = json.loads(env["PAYHUB_RETENTION"])
        assert kept["lock_mode"] == mode and kept["hot_days"] == 400
        assert env["PAYHUB_ARCHIVE_BUCKET"] == {"Ref": bucket(template, "-archive-")[0]}
        assert function["Properties"]["Timeout"] == 900


def test_only_the_sweep_may_scan_and_lock_objects_and_only_where_it_works(dev):
    function_id, function = archive_function(dev)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    state_table = next(lid for lid, t in of_type(dev, "AWS::DynamoDB::Table").items()
                       if t["Properties"]["TableName"] == "payhub-dev-state")
    archive_id = bucket(dev, "-archive-")[0]
    for lid, role in of_type(dev, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                text = json.dumps(statement["Resource"])
                if "dynamodb:Scan" in actions and statement["Resource"] == {"Fn::GetAtt": [state_table, "Arn"]}:
                    assert lid == role_id  # the state table: the sweep alone (others scan only the config table)
                elif "dynamodb:Scan" in actions:
                    # the config table only: statements and settlement list merchants, the transfers sweep reserves
                    assert lid.startswith(("StatementsRole", "SettlementFanoutRole", "TransfersSweepRole")) and \
                        "ConfigTable" in text, (lid, text)
                if "s3:PutObjectRetention" in actions:
                    assert lid == role_id and archive_id in text
                if archive_id in text:
                    assert lid == role_id, f"{lid} reaches the archive"
    assert any(a["Properties"].get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
               and a["Properties"]["MetricName"] == "Errors" for a in of_type(dev, "AWS::CloudWatch::Alarm").values())


@pytest.mark.parametrize(("context", "message"), [
    ({"retention_payments_days": "1500"}, "five-year floor"),
    ({"retention_audit_days": "a decade"}, "not a whole number"),
    ({"archive_hot_days": "30"}, "may still refund"),
    ({"archive_lock_mode": "OFF"}, "lock_mode"),
])
def test_a_policy_that_would_lose_records_is_refused_at_synth(context, message):
    from infra.retention import policy

    with pytest.raises(ValueError, match=message):
        policy(cdk.Stack(cdk.App(context=context), "Probe"))
