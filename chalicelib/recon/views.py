"""What the operator API shows of runs and items (the stored records, minus internal fields)."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import NotFound
from chalicelib.recon import repo, statement_store
from chalicelib.service import query_params
from chalicelib.storage.aws import client

REPORT_URL_TTL_S = 3600
_RUN_INTERNAL = ("pk", "sk", "lease", "lease_until")
_ITEM_INTERNAL = ("pk",)


def _report_links(keys: dict[str, str]) -> dict[str, dict[str, str]]:
    s3 = client("s3")
    return {name: {"key": key, "url": s3.generate_presigned_url(
        "get_object", Params={"Bucket": statement_store.bucket(), "Key": key}, ExpiresIn=REPORT_URL_TTL_S)}
        for name, key in sorted(keys.items())}


def public_run(run: dict[str, Any], *, links: bool = False) -> dict[str, Any]:
    shown = {"id": run["run_id"], "object": "recon_run",
             **{k: v for k, v in run.items() if k not in _RUN_INTERNAL and k != "run_id"}}
    if links and run.get("reports"):
        shown["reports"] = _report_links(run["reports"])
    return shown


def public_item(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["sk"], "object": "recon_item",
            **{k: v for k, v in item.items() if k not in _ITEM_INTERNAL and k != "sk"}}


def _limit(text: str | None) -> int:
    return query_params.limit(text, default=50, maximum=200)


def list_runs(params: dict[str, str]) -> dict[str, Any]:
    day = query_params.day(params["date"]) if params.get("date") else None
    runs, cursor = repo.list_runs(day=day, account_id=params.get("account") or None, limit=_limit(params.get("limit")),
                                  after=params.get("starting_after") or None)
    return {"object": "list", "data": [public_run(run) for run in runs], "has_more": cursor is not None,
            "next_starting_after": cursor}


def get_run(run_id: str) -> dict[str, Any]:
    account_id, day = repo.parse_run_id(run_id)
    run = repo.get_run(account_id, day)
    if run is None:
        raise NotFound(f"no reconciliation run {run_id}", param="run_id")
    return public_run(run, links=True)


def list_items(run_id: str, params: dict[str, str]) -> dict[str, Any]:
    get_run(run_id)  # 404 for an unknown run, not an empty list
    items, cursor = repo.items_page(run_id, status=params.get("status") or None, limit=_limit(params.get("limit")),
                                    after=params.get("starting_after") or None)
    return {"object": "list", "data": [public_item(item) for item in items], "has_more": cursor is not None,
            "next_starting_after": cursor}
