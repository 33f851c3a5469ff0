"""The operator part of the OpenAPI document: reconciliation runs and their items (``functions/recon.py``),
merchants' API keys, suspension, webhook-secret rotation and the audit trail (``functions/operator_api.py``).

These operations take an operator key (``payhub operator-key create``), not a merchant key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.service.operator_inputs import CreateApiKeyInput, RotateInput, WebhookSecretRotateInput

SECURITY = {"operator": {"type": "http", "scheme": "bearer", "description": "an operator key, op_<stage>_..."}}
_ITEM_STATUSES = ["repaired", "needs_review", "waiting", "retry", "resolved", "repairing"]
_KINDS = ["channel_only", "hub_only", "amount", "currency", "status", "fee", "duplicate_row", "ledger_mismatch",
          "settlement_mismatch"]
SCHEMAS: dict[str, Any] = {
    "ReconRun": {"type": "object", "required": ["id", "account_id", "day", "status"], "properties": {
        "id": {"type": "string", "description": "rr_<YYYYMMDD>_<account>"}, "object": {"const": "recon_run"},
        "account_id": {"type": "string"}, "channel": {"type": "string"}, "day": {"type": "string", "format": "date"},
        "status": {"enum": ["running", "completed", "failed"]}, "failure_reason": {"type": "string"},
        "unresolved": {"type": "integer"}, "items_by_status": {"type": "object"}, "items_by_kind": {"type": "object"},
        "totals": {"type": "object"}, "statement": {"type": "object", "description": "S3 key, SHA-256 and size"},
        "reports": {"type": "object", "description": "csv and html: S3 key and a signed URL (1 h)"},
        "executions": {"type": "integer"}, "started_at": {"type": "string"}, "finished_at": {"type": "string"}}},
    "ReconRunList": {"type": "object", "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/ReconRun"}}, "has_more": {"type": "boolean"},
        "next_starting_after": {"type": ["string", "null"]}}},
    "ReconItem": {"type": "object", "required": ["id", "kind", "status"], "properties": {
        "id": {"type": "string"}, "object": {"const": "recon_item"}, "run_id": {"type": "string"},
        "kind": {"enum": _KINDS}, "object_kind": {"type": "string"}, "object_id": {"type": "string"},
        "status": {"enum": _ITEM_STATUSES}, "reasons": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "hub": {"type": ["string", "null"]}, "channel": {"type": ["string", "null"]}}}},
        "amount_minor": {"type": ["integer", "null"]}, "currency": {"type": ["string", "null"]},
        "action": {"type": "string"},
        "row": {"type": ["object", "null"]}, "record": {"type": ["object", "null"]}, "details": {"type": ["object", "null"]}}},
    "CloseReconItem": {"type": "object", "required": ["note"], "additionalProperties": False, "properties": {
        "note": {"type": "string", "minLength": 1, "description": "what was found and done"}}},
    "ReconItemList": {"type": "object", "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/ReconItem"}}, "has_more": {"type": "boolean"},
        "next_starting_after": {"type": ["string", "null"]}}},
}


# The run id names its Beijing day and account (``recon.repo.parse_run_id``); a day that does not exist
# (rr_20260230_…) is refused as well.
RUN_ID = {"type": "string", "pattern": "^rr_[0-9]{8}_[a-z0-9][a-z0-9_-]{1,62}$"}
_LIMIT = ({"type": "integer", "minimum": 1, "maximum": 200}, False)
_TEXT = ({"type": "string"}, False)
_DATE = ({"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}, False)
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
SCHEMAS.update({
    "RiskRuleDocument": {"type": "object", "additionalProperties": False, "description": "docs/risk.md#rules",
                         "properties": {name: {"type": kind} for name, kind in (
                             ("rules", "array"), ("blocklist", "object"), ("allowlist", "object"),
                             ("limits", "object"), ("providers", "object"))}},
    "RiskRules": {"type": "object", "properties": {"object": {"const": "risk_rules"}, "version": {"type": "integer"},
                                                   "document": {"type": "object"}}},
    "PaymentRisk": {"type": "object", "properties": {"object": {"const": "payment_risk"},
                                                     "payment_id": {"type": "string"}, "risk": {"type": ["object", "null"]},
                                                     "step_up": {"type": ["object", "null"]},
                                                     "decisions": {"type": "array"}}},
    "CreateApiKey": CreateApiKeyInput.model_json_schema(),
    "RotateApiKey": RotateInput.model_json_schema(),
    "RotateWebhookSecret": WebhookSecretRotateInput.model_json_schema(),
    "ApiKey": {"type": "object", "required": ["id", "merchant_id", "status"], "properties": {
        "id": {"type": "string", "description": "key_<20 hex>: names the key, never usable as one"},
        "object": {"const": "api_key"}, "merchant_id": {"type": "string"}, "name": {"type": ["string", "null"]},
        "status": {"enum": ["active", "expired", "revoked"]}, "created_at": {"type": "string"},
        "expires_at": _NULLABLE_TIME, "revoked_at": _NULLABLE_TIME, "replaced_by": {"type": ["string", "null"]},
        "api_key": {"type": "string", "description": "the key itself: only in the answer that created it"},
        "rotated": {"type": "object", "description": "rotate: the old key with the expiry it was given"}}},
    "ApiKeyList": {"type": "object", "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/ApiKey"}}}},
    "Merchant": {"type": "object", "required": ["id", "status"], "properties": {
        "id": {"type": "string"}, "object": {"const": "merchant"}, "name": {"type": "string"},
        "status": {"enum": ["active", "suspended"]}, "late_success_policy": {"enum": ["accept", "refund"]},
        "webhook_url": {"type": ["string", "null"]}}},
    "WebhookSecretRotation": {"type": "object", "required": ["merchant_id", "webhook_secret"], "properties": {
        "merchant_id": {"type": "string"},
        "webhook_secret": {"type": "string", "description": "whsec_...: shown once"},
        "previous_expires_at": {"type": "string", "description": "until then deliveries carry both signatures"}}},
    "AuditRecord": {"type": "object", "required": ["id", "at", "actor", "action", "target"], "properties": {
        "id": {"type": "string"}, "object": {"const": "audit_record"}, "at": {"type": "string"},
        "actor": {"type": "object", "properties": {"via": {"enum": ["api", "cli"]}, "id": {"type": "string"},
                                                   "name": {"type": "string"}}},
        "action": {"type": "string", "description": "api_key.create|rotate|revoke, merchant.create|suspend|"
                   "reactivate, webhook_secret.rotate, channel_account.put, operator_key.create|revoke"},
        "target": {"type": "string"}, "before": {"type": ["object", "null"]}, "after": {"type": ["object", "null"]}}},
    "AuditRecordList": {"type": "object", "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/AuditRecord"}},
        "has_more": {"type": "boolean"}, "next_starting_after": {"type": ["string", "null"]}}},
})


def paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    def operator(operation: dict[str, Any], tag: str = "reconciliation (operators)") -> dict[str, Any]:
        return {**operation, "security": [{"operator": []}], "tags": [tag]}

    def keys(operation: dict[str, Any]) -> dict[str, Any]:
        return operator(operation, "merchant access (operators)")

    merchant = "/v1/operator/merchants/{merchant_id}"
    return {
        f"{merchant}/api-keys": {
            "get": keys(op("List a merchant's API keys (never the keys themselves)", 200, "ApiKeyList",
                           params=("merchant_id",))),
            "post": keys(op("Create an additional API key; the key is in this answer only", 201, "ApiKey",
                            body="CreateApiKey", params=("merchant_id",), errors=(400, 409)))},
        f"{merchant}/api-keys/{{key_id}}/rotate": {"post": keys(op(
            "Issue a new key; the old one keeps working for overlap_seconds, then stops", 201, "ApiKey",
            body="RotateApiKey", params=("merchant_id", "key_id"), errors=(400, 409)))},
        f"{merchant}/api-keys/{{key_id}}/revoke": {"post": keys(op(
            "End a key now (refused by every function within seconds)", 200, "ApiKey",
            params=("merchant_id", "key_id"), errors=(409,)))},
        f"{merchant}/suspend": {"post": keys(op("Suspend a merchant: every key refused within seconds", 200,
                                                "Merchant", params=("merchant_id",)))},
        f"{merchant}/reactivate": {"post": keys(op("Undo a suspension", 200, "Merchant", params=("merchant_id",)))},
        f"{merchant}/webhook-secret/rotate": {"post": keys(op(
            "New webhook secret, shown once; deliveries carry both signatures during the overlap", 201,
            "WebhookSecretRotation", body="RotateWebhookSecret", params=("merchant_id",), errors=(400,)))},
        "/v1/operator/audit": {"get": operator(op("Operator actions, newest first", 200, "AuditRecordList",
                                                  query={"action": _TEXT, "target": _TEXT, "limit": _LIMIT,
                                                         "starting_after": _TEXT}),
                                               "audit (operators)")},
        "/v1/operator/risk/rules": {
            "get": operator(op("The risk rules in force and their version", 200, "RiskRules"), "risk (operators)"),
            "post": operator(op("Put a new version of the risk rules (validated and compiled first)", 201,
                                "RiskRules", body="RiskRuleDocument", errors=(400, 409)), "risk (operators)")},
        "/v1/operator/payments/{payment_id}/risk": {"get": operator(op(
            "A payment's risk decisions (create, confirm, refunds, denied requests) and its step-up", 200,
            "PaymentRisk", params=("payment_id",)), "risk (operators)")},
        "/v1/recon/runs/{run_id}/items/{item_id}/close": {"post": operator(op(
            "Close an item a person has reviewed, with what was found and done (audited)", 200, "ReconItem",
            body="CloseReconItem", params=("run_id", "item_id"), errors=(400, 409)))},
        "/v1/recon/runs": {"get": operator(op("List reconciliation runs, newest day first", 200, "ReconRunList",
                                               query={"account": _TEXT, "date": _DATE, "limit": _LIMIT,
                                                      "starting_after": _TEXT}))},
        "/v1/recon/runs/{run_id}": {"get": operator(op("Retrieve a run with links to its report files", 200,
                                                       "ReconRun", params=("run_id",), param_schema=RUN_ID,
                                                       errors=(400,)))},
        "/v1/recon/runs/{run_id}/items": {"get": operator(op("List a run's differences", 200, "ReconItemList",
                                                             params=("run_id",), param_schema=RUN_ID, errors=(400,),
                                                             query={"status": _TEXT, "limit": _LIMIT,
                                                                    "starting_after": _TEXT}))},
    }
