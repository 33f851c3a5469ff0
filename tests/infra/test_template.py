"""What cfn-lint cannot see: the synthesized stack wires every function, queue and route as designed.

Expected values are written out here (route -> function, handlers, queues -> workers) rather than derived
from infra/functions.py, so a slip in the catalog fails a test instead of being copied into the template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra.resources import resources

# docs/design.md#api-split and #api-contract: every route and the group (Lambda) that must serve it.
ROUTE_TO_GROUP = {
    ("POST", "/v1/payments"): "payments",
    ("GET", "/v1/payments"): "payments",
    ("GET", "/v1/payments/{payment_id}"): "payments",
    ("POST", "/v1/payments/{payment_id}/confirm"): "payments",
    ("POST", "/v1/payments/{payment_id}/close"): "payments",
    ("POST", "/v1/payments/{payment_id}/step_up"): "payments",
    ("POST", "/v1/payments/{payment_id}/step_up/verify"): "payments",
    ("POST", "/v1/payers/{user_id}/authenticators/options"): "payments",
    ("POST", "/v1/payers/{user_id}/authenticators"): "payments",
    ("GET", "/v1/events"): "payments",
    ("GET", "/v1/events/{event_id}"): "payments",
    ("POST", "/v1/events/{event_id}/redeliver"): "payments",
    ("GET", "/v1/openapi.json"): "payments",
    ("POST", "/v1/payments/{payment_id}/refunds"): "refunds",
    ("GET", "/v1/refunds"): "refunds",
    ("GET", "/v1/refunds/{refund_id}"): "refunds",
    ("GET", "/v1/payments/{payment_id}/bill"): "bills",
    ("GET", "/v1/refunds/{refund_id}/bill"): "bills",
    ("GET", "/v1/bills/{token}"): "bills",
    ("GET", "/v1/statements/{month}"): "bills",
    ("POST", "/callbacks/{channel}/{account}"): "callbacks",
    ("GET", "/v1/recon/runs"): "recon",
    ("GET", "/v1/recon/runs/{run_id}"): "recon",
    ("GET", "/v1/recon/runs/{run_id}/items"): "recon",
    ("POST", "/v1/recon/runs/{run_id}/items/{item_id}/close"): "recon",
    ("GET", "/v1/operator/merchants/{merchant_id}/api-keys"): "operator",
    ("POST", "/v1/operator/merchants/{merchant_id}/api-keys"): "operator",
    ("POST", "/v1/operator/merchants/{merchant_id}/api-keys/{key_id}/rotate"): "operator",
    ("POST", "/v1/operator/merchants/{merchant_id}/api-keys/{key_id}/revoke"): "operator",
    ("POST", "/v1/operator/merchants/{merchant_id}/suspend"): "operator",
    ("POST", "/v1/operator/merchants/{merchant_id}/reactivate"): "operator",
    ("POST", "/v1/operator/merchants/{merchant_id}/webhook-secret/rotate"): "operator",
    ("GET", "/v1/operator/audit"): "operator",
    ("POST", "/v1/checkout_sessions"): "checkout",
    ("GET", "/v1/checkout_sessions/{session_id}"): "checkout",
    ("GET", "/checkout/{session_id}/{key}"): "checkout",
    ("GET", "/checkout/{session_id}/{key}/status"): "checkout",
    ("GET", "/checkout/{session_id}/{key}/return"): "checkout",
    ("POST", "/checkout/{session_id}/{key}/return"): "checkout",
    ("GET", "/checkout/{session_id}/{key}/wechat-oauth"): "checkout",
    ("POST", "/checkout/{session_id}/{key}/pay"): "checkout",
    ("POST", "/checkout/{session_id}/{key}/confirm"): "checkout",
    ("POST", "/checkout/{session_id}/{key}/forget"): "checkout",
    ("GET", "/checkout-assets/{name}"): "checkout",
    ("POST", "/checkout/{session_id}/{key}/stepup"): "checkout",
    ("POST", "/checkout/{session_id}/{key}/stepup/webauthn"): "checkout",
    ("POST", "/v1/invoices"): "invoices",
    ("GET", "/v1/invoices/{invoice_id}"): "invoices",
    ("POST", "/v1/invoices/{invoice_id}/reversals"): "invoices",
    ("POST", "/invoice-callbacks/nuonuo/{merchant_id}"): "invoices",
    ("GET", "/v1/operator/risk/rules"): "operator",
    ("POST", "/v1/operator/risk/rules"): "operator",
    ("GET", "/v1/operator/payments/{payment_id}/risk"): "operator",
    ("POST", "/v1/operator/payout_batches/{batch_id}/approve"): "operator",
    ("POST", "/v1/operator/payout_batches/{batch_id}/reject"): "operator",
    ("GET", "/v1/operator/transfers/receipts"): "operator",
    ("POST", "/v1/operator/transfers/receipts/{receipt_id}/approve"): "operator",
    ("POST", "/v1/operator/transfers/receipts/{receipt_id}/assign"): "operator",
    ("POST", "/v1/operator/transfers/receipts/{receipt_id}/return"): "operator",
    ("POST", "/v1/operator/transfers/receipts/{receipt_id}/keep"): "operator",
    ("POST", "/v1/payout_batches"): "payouts",
    ("POST", "/v1/payout_batches/validate"): "payouts",
    ("GET", "/v1/payout_batches/{batch_id}"): "payouts",
    ("GET", "/v1/payout_batches/{batch_id}/items"): "payouts",
    ("GET", "/v1/payout_batches/{batch_id}/result"): "payouts",
    ("POST", "/v1/payout_batches/{batch_id}/retry"): "payouts",
}
GROUP_HANDLERS = {
    "payments": "functions.payments.app",
    "refunds": "functions.refunds.app",
    "callbacks": "functions.callbacks.app",
    "recon": "functions.recon.app",
    "operator": "functions.operator_api.app",
    "bills": "functions.bills.app",
    "checkout": "functions.checkout.app",
    "invoices": "functions.invoices.app",
    "payouts": "functions.payouts.app",
}
QUEUE_WORKER_HANDLERS = {
    "webhooks": "functions.webhook_worker.handler",
    "status-sync": "functions.status_sync_worker.handler",
    "refunds": "functions.refund_worker.handler",
    "recon": "functions.recon_worker.handler",
    "invoices": "functions.invoice_worker.handler",
    "payouts": "functions.payout_worker.handler",
}
RECON_FANOUT_HANDLER = "functions.recon_fanout.fan_out"
ARCHIVE_SWEEP_HANDLER = "functions.archive_sweep.handler"  # docs/alerts-and-retention.md#retention-policy
OUTBOX_RELAY_HANDLER = "functions.outbox_relay.handler"  # docs/outbox.md
STATEMENTS_HANDLER = "functions.statements.handler"  # docs/bills.md#monthly-statements
SETTLEMENT_HANDLER = "functions.settlement_fanout.fan_out"  # docs/settlement.md
RECON_SHARD_HANDLERS = {"functions.recon_shards.plan", "functions.recon_shards.partition", "functions.recon_shards.match",
                        "functions.recon_shards.combine"}
SWEEP_HANDLERS = {
    "outbox_sweep": "functions.sweeps.outbox_sweep",
    "status_sync_sweep": "functions.sweeps.status_sync_sweep",
    "transfers_sweep": "functions.sweeps.transfers_sweep",
}
GUARDED_SERVICES = ("dynamodb:", "sqs:", "secretsmanager:", "kms:")


@pytest.fixture(scope="module")
def dev(synth) -> dict[str, Any]:
    return synth("dev")


def of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == type_name}


def functions_by_handler(template: dict[str, Any]) -> dict[str, str]:
    """Handler string -> logical id; each handler must belong to exactly one function."""
    result: dict[str, str] = {}
    for logical_id, function in of_type(template, "AWS::Serverless::Function").items():
        handler = function["Properties"]["Handler"]
        assert handler not in result, f"two functions share handler {handler}"
        result[handler] = logical_id
    return result


def ref_target(value: Any) -> str:
    """The logical id a Ref / GetAtt points at."""
    if "Ref" in value:
        return value["Ref"]
    return value["Fn::GetAtt"][0]


def queue_by_name(template: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    matches = [(lid, q) for lid, q in of_type(template, "AWS::SQS::Queue").items()
               if q["Properties"].get("QueueName") == name]
    assert len(matches) == 1, f"queue {name}: {len(matches)} found"
    return matches[0]


# --- stateful resources ---------------------------------------------------------------------------------

def test_tables_match_the_shared_definitions(dev):
    tables = {t["Properties"]["TableName"]: t for t in of_type(dev, "AWS::DynamoDB::Table").values()}
    spec = resources("dev")
    assert set(tables) == {t.name for t in spec.tables}
    key_id = key_with_alias(dev, spec.names.kms_alias)
    for table in spec.tables:
        props = tables[table.name]["Properties"]
        keys = {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]}
        assert keys == {table.partition_key: "HASH", **({table.sort_key: "RANGE"} if table.sort_key else {})}
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["SSESpecification"]["SSEType"] == "KMS"
        assert ref_target(props["SSESpecification"]["KMSMasterKeyId"]) == key_id
        if table.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {"AttributeName": table.ttl_attribute, "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props
        indexes = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
        assert set(indexes) == {i.name for i in table.indexes}
        for index in table.indexes:
            schema = {k["AttributeName"]: k["KeyType"] for k in indexes[index.name]["KeySchema"]}
            assert schema == {index.partition_key: "HASH", **({index.sort_key: "RANGE"} if index.sort_key else {})}
            assert indexes[index.name]["Projection"]["ProjectionType"] == index.projection
            if index.name == "gsi1":  # the event list holds keys only: event updates must not write to it
                assert index.projection == "KEYS_ONLY"
            if index.name == "listing":  # only attributes that never change: one index write per object
                assert indexes[index.name]["Projection"] == {
                    "ProjectionType": "INCLUDE", "NonKeyAttributes": ["method", "channel", "payment_id"]}
        assert tables[table.name]["DeletionPolicy"] == "Retain"


def _only(resources_of_type: dict[str, Any]) -> str:
    assert len(resources_of_type) == 1
    return next(iter(resources_of_type))


def key_with_alias(template: dict[str, Any], alias_name: str) -> str:
    """Logical id of the KMS key an alias points at."""
    (target,) = [ref_target(a["Properties"]["TargetKeyId"]) for a in of_type(template, "AWS::KMS::Alias").values()
                 if a["Properties"]["AliasName"] == alias_name]
    return target


def test_the_stage_key_and_the_card_vault_keys_with_their_aliases(dev):
    names = resources("dev").names
    keys = of_type(dev, "AWS::KMS::Key")
    assert len(keys) == 4 and len(of_type(dev, "AWS::KMS::Alias")) == 4
    for alias in (names.kms_alias, names.card_vault_key_alias):
        props = keys[key_with_alias(dev, alias)]["Properties"]
        assert props["EnableKeyRotation"] is True
        assert props.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    fingerprint = keys[key_with_alias(dev, names.card_fingerprint_key_alias)]
    # AWS cannot rotate HMAC keys automatically (and a rotated key would change every fingerprint).
    assert fingerprint["Properties"]["KeySpec"] == "HMAC_256"
    assert fingerprint["Properties"]["KeyUsage"] == "GENERATE_VERIFY_MAC"
    assert not fingerprint["Properties"].get("EnableKeyRotation", False)
    links = keys[key_with_alias(dev, names.link_key_alias)]["Properties"]
    assert (links["KeySpec"], links["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert all(key["DeletionPolicy"] == "Retain" for key in keys.values())


def test_only_list_and_bill_functions_may_sign_with_the_link_key_and_only_by_mac(dev):
    link_key = key_with_alias(dev, resources("dev").names.link_key_alias)
    handlers = functions_by_handler(dev)
    roles = {dev["Resources"][lid]["Properties"]["Role"]["Fn::GetAtt"][0]: handler for handler, lid in handlers.items()}
    granted: dict[str, set[str]] = {}
    for role, statement in statements(dev):
        for resource in as_list(statement["Resource"]):
            if isinstance(resource, dict) and resource.get("Fn::GetAtt", [None])[0] == link_key:
                granted.setdefault(roles[role], set()).update(as_list(statement["Action"]))
    assert granted == {handler: {"kms:GenerateMac"} for handler in (
        "functions.payments.app", "functions.refunds.app", "functions.bills.app")}


def test_statements_are_made_daily_at_15_beijing_by_their_function(dev):
    statements_fn = functions_by_handler(dev)["functions.statements.handler"]
    rules = [rule["Properties"] for rule in of_type(dev, "AWS::Events::Rule").values()
             if any(ref_target(t["Arn"]) == statements_fn for t in rule["Properties"]["Targets"])]
    assert [rule["ScheduleExpression"] for rule in rules] == ["cron(0 7 * * ? *)"]


def test_merchants_are_settled_daily_at_16_beijing_by_their_function(dev):
    fan_out = functions_by_handler(dev)[SETTLEMENT_HANDLER]
    rules = [rule["Properties"] for rule in of_type(dev, "AWS::Events::Rule").values()
             if any(ref_target(t["Arn"]) == fan_out for t in rule["Properties"]["Targets"])]
    assert [rule["ScheduleExpression"] for rule in rules] == ["cron(0 8 * * ? *)"]


def test_documents_bucket_is_private_encrypted_and_given_to_the_functions_that_write_it(dev):
    (bucket_id, bucket), = [(lid, b) for lid, b in of_type(dev, "AWS::S3::Bucket").items()
                            if "payhub-dev-documents-" in json.dumps(b["Properties"]["BucketName"])]
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    functions = of_type(dev, "AWS::Serverless::Function")
    handlers = functions_by_handler(dev)
    for handler in ("functions.bills.app", "functions.statements.handler"):
        env = functions[handlers[handler]]["Properties"]["Environment"]["Variables"]
        assert ref_target(env["PAYHUB_DOCUMENTS_BUCKET"]) == bucket_id


def test_only_the_pre_order_and_checkout_functions_may_use_the_card_vault_keys_and_only_as_they_need(dev):
    names = resources("dev").names
    vault_key = key_with_alias(dev, names.card_vault_key_alias)
    fingerprint_key = key_with_alias(dev, names.card_fingerprint_key_alias)
    handlers = functions_by_handler(dev)
    roles = {dev["Resources"][lid]["Properties"]["Role"]["Fn::GetAtt"][0]: handler for handler, lid in handlers.items()}
    granted: dict[tuple[str, str], set[str]] = {}
    for role, statement in statements(dev):
        for resource in as_list(statement["Resource"]):
            target = resource["Fn::GetAtt"][0] if isinstance(resource, dict) and "Fn::GetAtt" in resource else None
            if target in (vault_key, fingerprint_key):
                granted.setdefault((roles[role], target), set()).update(as_list(statement["Action"]))
    assert granted == {
        ("functions.payments.app", vault_key): {"kms:GenerateDataKey", "kms:Decrypt"},
        ("functions.payments.app", fingerprint_key): {"kms:GenerateMac"},
        # the hosted page's card fields: the payer types the card into the hub, never into the merchant's page
        ("functions.checkout.app", vault_key): {"kms:GenerateDataKey", "kms:Decrypt"},
        ("functions.checkout.app", fingerprint_key): {"kms:GenerateMac"},
    }


def test_every_queue_has_an_encrypted_dead_letter_queue_with_redrive(dev):
    for spec in resources("dev").queues:
        _, queue = queue_by_name(dev, spec.name)
        dlq_id, dlq = queue_by_name(dev, spec.dead_letter_name)
        redrive = queue["Properties"]["RedrivePolicy"]
        assert ref_target(redrive["deadLetterTargetArn"]) == dlq_id
        assert redrive["maxReceiveCount"] == spec.max_receive_count
        assert queue["Properties"]["VisibilityTimeout"] == spec.visibility_timeout_s
        for props in (queue["Properties"], dlq["Properties"]):
            assert "KmsMasterKeyId" in props


def queue_mappings(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: m for lid, m in of_type(template, "AWS::Lambda::EventSourceMapping").items()
            if m["Properties"]["EventSourceArn"]["Fn::GetAtt"][1] == "Arn"}


def stream_mappings(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: m for lid, m in of_type(template, "AWS::Lambda::EventSourceMapping").items()
            if m["Properties"]["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"}


def test_every_worker_consumes_its_queue_reporting_batch_item_failures(dev):
    handlers = functions_by_handler(dev)
    mappings = queue_mappings(dev)
    assert len(mappings) == len(QUEUE_WORKER_HANDLERS)
    seen = set()
    for mapping in mappings.values():
        props = mapping["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        queue_id = ref_target(props["EventSourceArn"])
        queue_name = dev["Resources"][queue_id]["Properties"]["QueueName"]
        key = next(q.key for q in resources("dev").queues if q.name == queue_name)
        assert ref_target(props["FunctionName"]) == handlers[QUEUE_WORKER_HANDLERS[key]]
        function = dev["Resources"][handlers[QUEUE_WORKER_HANDLERS[key]]]["Properties"]
        assert dev["Resources"][queue_id]["Properties"]["VisibilityTimeout"] >= 6 * function["Timeout"]
        seen.add(key)
    assert seen == set(QUEUE_WORKER_HANDLERS)


def test_new_outbox_items_and_nothing_else_reach_the_relay_from_the_state_tables_stream(dev):
    handlers = functions_by_handler(dev)
    [mapping] = stream_mappings(dev).values()
    props = mapping["Properties"]
    table_id = props["EventSourceArn"]["Fn::GetAtt"][0]
    table = dev["Resources"][table_id]["Properties"]
    assert table["TableName"] == resources("dev").names.state_table
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert ref_target(props["FunctionName"]) == handlers[OUTBOX_RELAY_HANDLER]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["StartingPosition"] == "TRIM_HORIZON" and props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 10  # then the outbox sweep publishes what is left
    [pattern] = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"outbox_shard": {"S": [{"exists": True}]}}}}
    # Only the relay may read the stream, and it may do nothing else with it.
    readers = {}
    for role_id, role in of_type(dev, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(a in ("dynamodb:GetRecords", "dynamodb:GetShardIterator") for a in actions):
                    readers[role_id] = (sorted(actions), statement["Resource"])
    relay_role = ref_target(dev["Resources"][handlers[OUTBOX_RELAY_HANDLER]]["Properties"]["Role"])
    assert list(readers) == [relay_role]
    actions, resource = readers[relay_role]
    assert actions == ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                       "dynamodb:ListStreams"]
    assert resource == {"Fn::GetAtt": [table_id, "StreamArn"]}


def test_schedules_invoke_the_sweeps(dev):
    handlers = functions_by_handler(dev)
    rules = of_type(dev, "AWS::Events::Rule")
    targets = {ref_target(t["Arn"]): r["Properties"]["ScheduleExpression"]
               for r in rules.values() for t in r["Properties"]["Targets"]}
    expected = {s.function: s.rate_minutes for s in resources("dev").schedules}
    assert set(expected) == set(SWEEP_HANDLERS)
    for sweep, handler in SWEEP_HANDLERS.items():
        minutes = expected[sweep]
        assert targets[handlers[handler]] == f"rate({minutes} minute{'s' if minutes > 1 else ''})"
    permitted = {ref_target(p["Properties"]["FunctionName"]) for p in of_type(dev, "AWS::Lambda::Permission").values()
                 if p["Properties"]["Principal"] == "events.amazonaws.com"}
    assert permitted == {handlers[h] for h in SWEEP_HANDLERS.values()} | {handlers[RECON_FANOUT_HANDLER],
                                                                    handlers[ARCHIVE_SWEEP_HANDLER],
                                                                    handlers[STATEMENTS_HANDLER],
                                                                    handlers[SETTLEMENT_HANDLER]}


def test_an_alarm_fires_on_any_message_in_any_dead_letter_queue(dev):
    alarmed = set()
    for alarm in of_type(dev, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props.get("MetricName") != "ApproximateNumberOfMessagesVisible":
            continue
        assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["AlarmActions"], "an alarm nobody hears"
        (dimension,) = props["Dimensions"]
        alarmed.add(dev["Resources"][dimension["Value"]["Fn::GetAtt"][0]]["Properties"]["QueueName"])
    assert alarmed == {q.dead_letter_name for q in resources("dev").queues}


# --- the API split (docs/design.md#api-split) -----------------------------------------------------------

def rest_api(template: dict[str, Any]) -> dict[str, Any]:
    return of_type(template, "AWS::Serverless::Api")[_only(of_type(template, "AWS::Serverless::Api"))]["Properties"]


def integrations(template: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(METHOD, path, logical id of the integrated function) for every route in the API definition."""
    for path, methods in rest_api(template)["DefinitionBody"]["paths"].items():
        for method, operation in methods.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            text, variables = uri if isinstance(uri, list) else (uri, {})
            variable = re.search(r"\$\{([^}]+)\}/invocations", text).group(1)  # type: ignore[union-attr]
            target = ref_target(variables[variable]) if variable in variables else variable.split(".")[0]
            yield method.upper(), path, target


def test_each_route_is_served_by_its_own_groups_function(dev):
    handlers = functions_by_handler(dev)
    actual = {(method, path): target for method, path, target in integrations(dev)}
    expected = {route: handlers[GROUP_HANDLERS[group]] for route, group in ROUTE_TO_GROUP.items()}
    assert actual == expected
    assert len(set(expected.values())) == 9  # payments, refunds, callbacks, recon, operator, bills, checkout, invoices,
    # payouts


def test_one_invoke_permission_per_route_scoped_to_method_and_path(dev):
    handlers = functions_by_handler(dev)
    api_id = _only(of_type(dev, "AWS::Serverless::Api"))
    granted = []
    for permission in of_type(dev, "AWS::Lambda::Permission").values():
        props = permission["Properties"]
        if props["Principal"] != "apigateway.amazonaws.com":
            continue
        text, variables = props["SourceArn"]["Fn::Sub"]
        assert ref_target(variables["Api"]) == api_id
        method, source_path = re.fullmatch(r".*:\$\{Api\}/\*/([A-Z]+)(/.*)", text).groups()  # type: ignore[union-attr]
        granted.append((ref_target(props["FunctionName"]), method, source_path))
    expected = [(handlers[GROUP_HANDLERS[group]], method, re.sub(r"\{[^}]+\}", "*", path))
                for (method, path), group in ROUTE_TO_GROUP.items()]
    assert sorted(granted) == sorted(expected)


def test_route_groups_have_own_roles_caps_and_throttles_below_the_caps(dev):
    functions = of_type(dev, "AWS::Serverless::Function")
    handlers = functions_by_handler(dev)
    roles = [functions[lid]["Properties"]["Role"]["Fn::GetAtt"][0] for lid in functions]
    assert len(set(roles)) == len(roles), "every function has its own role"
    settings = rest_api(dev)["MethodSettings"]
    for group, handler in GROUP_HANDLERS.items():
        cap = functions[handlers[handler]]["Properties"]["ReservedConcurrentExecutions"]
        assert cap >= 1
        paths = [path for (_, path), g in ROUTE_TO_GROUP.items() if g == group]
        throttles = [s for s in settings if s["ResourcePath"] in {"/" + p.replace("/", "~1") for p in paths}]
        assert len(throttles) == len(paths)
        assert sum(s["ThrottlingRateLimit"] for s in throttles) < cap or cap < len(paths)
        assert sum(s["ThrottlingBurstLimit"] for s in throttles) < cap or cap < len(paths)


def test_chalices_shared_handler_and_role_are_gone(dev):
    assert "APIHandler" not in dev["Resources"] and "DefaultRole" not in dev["Resources"]
    assert "APIHandlerInvokePermission" not in dev["Resources"]
    assert "APIHandler" not in json.dumps(dev)


def test_every_function_has_layer_stage_env_and_no_fixed_name(dev):
    layers = of_type(dev, "AWS::Lambda::LayerVersion")
    layer_id = _only({key: value for key, value in layers.items() if key.startswith("RuntimeDeps")})
    engine_id = _only({key: value for key, value in layers.items() if key.startswith("ReconEngine")})
    functions = of_type(dev, "AWS::Serverless::Function")
    assert set(functions_by_handler(dev)) == (
        set(GROUP_HANDLERS.values()) | set(QUEUE_WORKER_HANDLERS.values()) | set(SWEEP_HANDLERS.values())
        | {RECON_FANOUT_HANDLER, ARCHIVE_SWEEP_HANDLER, OUTBOX_RELAY_HANDLER, STATEMENTS_HANDLER, SETTLEMENT_HANDLER}
        | RECON_SHARD_HANDLERS)
    for function in functions.values():
        props = function["Properties"]
        # DuckDB's layer only where the engine runs: every other function's package and cold start stay as they were
        engine = [engine_id] if props["Handler"] in RECON_SHARD_HANDLERS else []
        assert [ref_target(layer) for layer in props["Layers"]] == [layer_id, *engine]
        assert props["Environment"]["Variables"]["PAYHUB_STAGE"] == "dev"
        assert props["Runtime"] == "python3.11"
        assert "FunctionName" not in props


def test_api_endpoint_refuses_tls_below_1_2(dev):
    api = rest_api(dev)
    assert api["SecurityPolicy"].startswith("SecurityPolicy_TLS12") or api["SecurityPolicy"].startswith(
        "SecurityPolicy_TLS13")
    assert api["EndpointAccessMode"] == "STRICT"


# --- least privilege and isolation ----------------------------------------------------------------------

def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        props = resource["Properties"]
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])] if resource["Type"] == "AWS::IAM::Role" \
            else [props["PolicyDocument"]] if resource["Type"] == "AWS::IAM::Policy" else []
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_resource_for_data_or_secrets(dev):
    for role, statement in statements(dev):
        actions = as_list(statement["Action"])
        if any(a.startswith(GUARDED_SERVICES) or a == "*" for a in actions):
            for resource in as_list(statement["Resource"]):
                assert resource != "*", f"{role}: {actions} on *"


def test_secret_access_is_exactly_this_stages_prefixes(dev):
    secret_resources = set()
    for _, statement in statements(dev):
        if any(a.startswith("secretsmanager:") for a in as_list(statement["Action"])):
            for resource in as_list(statement["Resource"]):
                secret_resources.add(json.dumps(resource))
    assert secret_resources
    for resource in secret_resources:
        assert re.search(r"secret:payhub/dev/(channels|merchants|invoicing|risk|banks)/\*", resource), resource


def test_only_the_payments_refunds_and_checkout_functions_read_the_risk_providers_secret(dev):
    readers = {role for role, statement in statements(dev)
               if any("payhub/dev/risk/" in json.dumps(r) for r in as_list(statement["Resource"]))}
    assert readers and all(any(name in role for name in ("Payments", "Refunds", "Checkout")) for role in readers), readers
    assert any("Checkout" in role for role in readers), readers  # the page's attempts are decided and stepped up


def test_stages_share_no_names(synth):
    def names(template: dict[str, Any]) -> set[str]:
        found = set()
        for resource in template["Resources"].values():
            for key in ("TableName", "QueueName", "AliasName", "LogGroupName", "Name"):
                value = resource["Properties"].get(key)
                if isinstance(value, str):
                    found.add(value)
        return found

    test_names, prod_names = names(synth("test")), names(synth("prod"))
    assert test_names and prod_names
    assert not test_names & prod_names
    assert all("test" in name for name in test_names)
    assert all("prod" in name for name in prod_names)
    for template, stage in ((synth("test"), "test"), (synth("prod"), "prod")):
        env = {f["Properties"]["Environment"]["Variables"]["PAYHUB_STAGE"]
               for f in of_type(template, "AWS::Serverless::Function").values()}
        assert env == {stage}


# --- reconciliation (issue 4) ---------------------------------------------------------------------------

# Beijing fetch time per channel, written out: after each channel publishes yesterday's statement.
RECON_CRON_UTC = {
    "wechatpay": "cron(30 2 * * ? *)",  # 10:30 Beijing
    "alipay": "cron(30 2 * * ? *)",
    "unionpay": "cron(30 2 * * ? *)",
    "ecny": "cron(0 3 * * ? *)",
    "stripe": "cron(0 4 * * ? *)",
    "paypal": "cron(0 6 * * ? *)",
}


def test_each_channel_has_a_daily_recon_schedule_after_its_statement_is_published(dev):
    handlers = functions_by_handler(dev)
    fanout = handlers[RECON_FANOUT_HANDLER]
    scheduled = {}
    for rule in of_type(dev, "AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            if ref_target(target["Arn"]) == fanout:
                scheduled[json.loads(target["Input"])["channel"]] = rule["Properties"]["ScheduleExpression"]
    assert scheduled == RECON_CRON_UTC


def test_recon_bucket_is_private_encrypted_and_named_per_account(dev):
    (bucket_id, bucket), = [(lid, b) for lid, b in of_type(dev, "AWS::S3::Bucket").items()
                            if "payhub-dev-recon-" in json.dumps(b["Properties"]["BucketName"])]
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert bucket["DeletionPolicy"] == "Retain"
    assert "payhub-dev-recon-" in json.dumps(props["BucketName"])
    policies = [p for p in of_type(dev, "AWS::S3::BucketPolicy").values()
                if ref_target(p["Properties"]["Bucket"]) == bucket_id]
    assert any(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
               for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"])
    functions = of_type(dev, "AWS::Serverless::Function")
    handlers = functions_by_handler(dev)
    for handler in ("functions.recon_worker.handler", "functions.recon.app"):
        env = functions[handlers[handler]]["Properties"]["Environment"]["Variables"]
        assert ref_target(env["PAYHUB_RECON_BUCKET"]) == bucket_id


def test_alarms_fire_on_unresolved_differences_and_failed_runs(dev):
    alarms = {a["Properties"]["MetricName"]: a["Properties"] for a in of_type(dev, "AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("Namespace") == "PayHub/Recon"}
    assert set(alarms) == {"UnresolvedDifferences", "FailedRuns"}
    for props in alarms.values():
        assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["Dimensions"] == [{"Name": "Stage", "Value": "dev"}]
        assert props["AlarmActions"], "an alarm nobody hears"


def test_no_function_may_put_metric_data(dev):
    """Metrics are embedded in the logs (tests/infra/test_alarms.py): no function needs the CloudWatch API."""
    assert [role for role, statement in statements(dev)
            if any(action.startswith("cloudwatch:") for action in as_list(statement["Action"]))] == []


# --- keys and SSRF (issue 8) ----------------------------------------------------------------------------


def test_only_the_operator_function_may_put_webhook_secrets_and_only_merchants(dev):
    writers = {}
    for role, statement in statements(dev):
        if "secretsmanager:PutSecretValue" in as_list(statement["Action"]):
            writers[role] = [json.dumps(r) for r in as_list(statement["Resource"])]
    [(role, [resource])] = writers.items()
    assert role.startswith("OperatorApiRole"), writers
    assert re.search(r"secret:payhub/dev/merchants/\*", resource), resource


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_deployed_functions_keep_the_guarded_defaults(synth, stage):
    """No deployed function may reach loopback or cache keys longer than the code's default."""
    for function in of_type(synth(stage), "AWS::Serverless::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "PAYHUB_WEBHOOK_ALLOW_LOOPBACK" not in variables
        assert "PAYHUB_AUTH_CACHE_TTL_S" not in variables


def test_functions_get_their_queue_urls_from_the_template_and_never_look_them_up(dev):
    """Every queue a role may send to is named in that function's environment, and no role may GetQueueUrl."""
    from chalicelib.config.names import QUEUES, queue_url_variable

    queues = {logical_id: resource["Properties"]["QueueName"]
              for logical_id, resource in of_type(dev, "AWS::SQS::Queue").items()}
    roles = {ref_target(function["Properties"]["Role"]): function
             for function in of_type(dev, "AWS::Serverless::Function").values()}
    senders = 0
    for role, statement in statements(dev):
        actions = as_list(statement["Action"])
        assert "sqs:GetQueueUrl" not in actions
        if "sqs:SendMessage" not in actions:
            continue
        variables = roles[role]["Properties"]["Environment"]["Variables"]
        for resource in as_list(statement["Resource"]):
            logical_id = resource["Fn::GetAtt"][0]
            [topic] = [q for q in QUEUES if queues[logical_id].endswith(f"-{q}")]
            assert ref_target(variables[queue_url_variable(topic)]) == logical_id
            senders += 1
    assert senders >= 5


def test_ledger_entries_can_only_be_added_and_only_running_totals_updated(dev):
    """The ledger is append-only; the running totals beside its entries are the one thing updated in place, and
    a role may do so only on those keys (dynamodb:LeadingKeys), never on an entry."""
    [ledger] = [logical_id for logical_id, resource in of_type(dev, "AWS::DynamoDB::Table").items()
                if resource["Properties"]["TableName"].endswith("-ledger")]
    updaters = 0
    for _, statement in statements(dev):
        resources = json.dumps(statement["Resource"])
        if ledger not in resources:
            continue
        actions = set(as_list(statement["Action"]))
        assert not actions & {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}, statement
        if "dynamodb:UpdateItem" in actions:
            assert actions == {"dynamodb:UpdateItem"}, statement
            assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["BAL#*", "DAY#*"]}}
            updaters += 1
    assert updaters >= 3  # the functions that post journals: payments, callbacks, refund and status-sync workers...


PLUGIN_LAYER = "arn:aws:lambda:ap-east-1:123456789012:layer:mybank-channel:3"


def test_protocol_plugin_layers_given_at_deploy_reach_every_function_that_talks_to_channels(tmp_path_factory):
    """docs/routing.md#protocol-plugins: `make deploy PLUGIN_LAYERS=...` puts a plugin's layer after the hub's on the
    functions holding channel secrets (the registry finds its entry point there), and on no other."""
    import os

    import aws_cdk as cdk

    from infra.app import synth_stage
    from infra.functions import ROUTE_GROUPS, WORKERS

    saved = dict(os.environ)
    os.environ.pop("PAYHUB_WEBHOOK_ALLOW_LOOPBACK", None)
    try:
        app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk-plugins")), context={"plugin_layers": PLUGIN_LAYER})
        stack = synth_stage(app, "dev")
        template = app.synth().get_stack_by_name(stack.stack_name).template
    finally:
        os.environ.clear()
        os.environ.update(saved)
    channel_handlers = {spec.handler for spec in (*ROUTE_GROUPS, *WORKERS) if spec.access.channel_secrets}
    assert {"functions.callbacks.app", "functions.payments.app", "functions.refund_worker.handler"} <= channel_handlers
    for function in of_type(template, "AWS::Serverless::Function").values():
        props = function["Properties"]
        extra = [layer for layer in props["Layers"][1:] if isinstance(layer, str)]  # the engine's layer is a Ref
        assert extra == ([PLUGIN_LAYER] if props["Handler"] in channel_handlers else []), props["Handler"]


def test_a_plugin_layer_that_is_not_a_versioned_layer_arn_fails_the_synth():
    from infra.stack import plugin_layers

    assert plugin_layers(None) == [] and plugin_layers(f" {PLUGIN_LAYER} ,") == [PLUGIN_LAYER]
    for bad in ("arn:aws:lambda:ap-east-1:123456789012:layer:mybank-channel", "mybank", f"{PLUGIN_LAYER},{PLUGIN_LAYER}"):
        with pytest.raises(ValueError, match="plugin_layers"):
            plugin_layers(bad)


def test_only_what_talks_to_the_reserves_bank_reads_the_bank_keys():
    from infra.functions import ROUTE_GROUPS, WORKERS

    granted = {unit.name for unit in (*ROUTE_GROUPS, *WORKERS) if unit.access.bank_secrets}
    # payouts and settlements; bank transfers in: orders opened (payments), credits read (the sweep), returns
    # decided (operator), refunds sent and followed (refund and status-sync workers)
    assert granted == {"payout_worker", "transfers_sweep", "payments", "operator", "refund_worker",
                       "status_sync_worker"}
