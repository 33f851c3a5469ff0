"""The operator part of the OpenAPI document: reconciliation runs and their items (``functions/recon.py``).

These operations take an operator key (``payhub operator-key create``), not a merchant key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SECURITY = {"operator": {"type": "http", "scheme": "bearer", "description": "an operator key, op_<stage>_..."}}
_ITEM_STATUSES = ["repaired", "needs_review", "waiting", "retry", "resolved", "repairing"]
_KINDS = ["channel_only", "hub_only", "amount", "currency", "status", "fee", "duplicate_row", "ledger_mismatch"]
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
        "amount_minor": {"type": "integer"}, "currency": {"type": "string"}, "action": {"type": "string"},
        "row": {"type": ["object", "null"]}, "record": {"type": ["object", "null"]}, "details": {"type": "object"}}},
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


def paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    def operator(operation: dict[str, Any]) -> dict[str, Any]:
        return {**operation, "security": [{"operator": []}], "tags": ["reconciliation (operators)"]}

    return {
        "/v1/recon/runs": {"get": operator(op("List reconciliation runs, newest day first", 200, "ReconRunList",
                                               query={"account": _TEXT, "date": _DATE, "limit": _LIMIT,
                                                      "starting_after": _TEXT}))},
        "/v1/recon/runs/{run_id}": {"get": operator(op("Retrieve a run with links to its report files", 200,
                                                       "ReconRun", params=("run_id",), param_schema=RUN_ID, errors=(400,)))},
        "/v1/recon/runs/{run_id}/items": {"get": operator(op("List a run's differences", 200, "ReconItemList",
                                                             params=("run_id",), param_schema=RUN_ID, errors=(400,),
                                                             query={"status": _TEXT, "limit": _LIMIT,
                                                                    "starting_after": _TEXT}))},
    }
