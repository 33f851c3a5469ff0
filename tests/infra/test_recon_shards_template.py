"""The ReconShards state machine in the template: plan, a Distributed Map partitioning every statement part and
export file, a Distributed Map matching every shard, combine; its role invokes exactly its four functions and
starts only its own child executions; the shard functions' rights."""

from __future__ import annotations

import json
from typing import Any

import pytest

SHARD_HANDLERS = {"Plan": "functions.recon_shards.plan", "Partition": "functions.recon_shards.partition",
                  "Match": "functions.recon_shards.match", "Combine": "functions.recon_shards.combine"}


@pytest.fixture(scope="module")
def dev(synth: Any) -> dict[str, Any]:
    return synth("dev")


def _definition(machine: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The definition with every function ARN replaced by the logical id it points at."""
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text, targets = "", set()
    for part in parts:
        if isinstance(part, str):
            text += part
        else:
            target = part["Fn::GetAtt"][0]
            targets.add(target)
            text += target
    return json.loads(text), targets


def test_the_state_machine_splits_maps_every_shard_distributed_and_combines(dev: dict[str, Any]) -> None:
    resources = dev["Resources"]
    machine = resources["ReconShards"]
    assert machine["Type"] == "AWS::StepFunctions::StateMachine"
    definition, targets = _definition(machine)
    handlers = {resources[target]["Properties"]["Handler"] for target in targets}
    assert handlers == set(SHARD_HANDLERS.values())
    states = definition["States"]
    assert definition["StartAt"] == "Plan" and states["Plan"]["Next"] == "Partition"
    for name, items, then, step in (("Partition", "$.parts", "MatchShards", "Partition"),
                                    ("MatchShards", "$.shards", "Combine", "Match")):
        mapped = states[name]
        assert mapped["Type"] == "Map" and mapped["ItemsPath"] == items and mapped["Next"] == then
        assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}
        assert mapped["MaxConcurrency"] > 0 and mapped["ToleratedFailurePercentage"] == 0
        task = mapped["ItemProcessor"]["States"]["Step"]
        assert resources[task["Parameters"]["FunctionName"]]["Properties"]["Handler"] == SHARD_HANDLERS[step]
        assert task["Retry"]
    assert states["Partition"]["ResultPath"] == "$.partitioned"  # combine adds the parts' counts up
    assert states["Combine"]["End"] is True


def test_the_role_invokes_its_four_functions_and_its_own_children_only(dev: dict[str, Any]) -> None:
    resources = dev["Resources"]
    role_id = resources["ReconShards"]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    assert resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "states.amazonaws.com"}
    policies = [r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"
                and any(role.get("Ref") == role_id for role in r["Properties"]["Roles"])]
    statements = [s for policy in policies for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {"lambda:InvokeFunction", "states:StartExecution", "states:DescribeExecution",
                       "states:StopExecution"}
    invoked = {r["Fn::GetAtt"][0] for s in statements if s["Action"] == "lambda:InvokeFunction" for r in s["Resource"]}
    assert {resources[target]["Properties"]["Handler"] for target in invoked} == set(SHARD_HANDLERS.values())
    start = next(s for s in statements if s["Action"] == "states:StartExecution")
    assert "stateMachine:payhub-dev-recon-shards" in json.dumps(start["Resource"])


def test_shard_functions_have_only_the_rights_their_step_uses(dev: dict[str, Any]) -> None:
    resources = dev["Resources"]
    by_handler = {r["Properties"]["Handler"]: lid for lid, r in resources.items()
                  if r["Type"] == "AWS::Serverless::Function"}

    def policy(handler: str) -> str:
        role = resources[by_handler[handler]]["Properties"]["Role"]["Fn::GetAtt"][0]
        return json.dumps(resources[role]["Properties"]["Policies"])  # inline: infra/stack.py _role

    match = policy(SHARD_HANDLERS["Match"])
    assert "s3:PutObject" in match and "s3:ListBucket" in match and "shards/*" in match
    assert "dynamodb:" not in match and "secretsmanager:" not in match
    partition = policy(SHARD_HANDLERS["Partition"])
    assert "s3:PutObject" in partition and "s3:ListBucket" not in partition and "secretsmanager:" not in partition
    # plan and combine begin and complete the run as the recon worker does
    assert "dynamodb:" in policy(SHARD_HANDLERS["Plan"]) and "sqs:SendMessage" in policy(SHARD_HANDLERS["Combine"])
    for handler in SHARD_HANDLERS.values():
        props = resources[by_handler[handler]]["Properties"]
        assert len(props["Layers"]) == 2  # the runtime layer and the engine's
    assert resources[by_handler[SHARD_HANDLERS["Plan"]]]["Properties"]["EphemeralStorage"] == {"Size": 10_240}
