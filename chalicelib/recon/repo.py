"""The recon table: one run record per (account, day), its discrepancy items, and the cross-day pool.

  RUNS                   / <day>#<account>                 the run (one per account and day; re-runs update it)
  ITEMS#<run_id>         / <object kind>#<object id>#<kind>  one discrepancy (deterministic key: a re-run finds it)
  POOL#<account>#<day>   / <object kind>#<object id>#<side>  what the run of <day> left waiting for later days

A run holds a lease on its record (conditional update), so two runs of the same day never interleave; items
are created with a condition and change status only from the status they were read in, so a repair recorded
once is never recorded (or done) twice.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.config.settings import settings
from chalicelib.domain.errors import Conflict, InvalidRequest
from chalicelib.recon.codec import pooled_from_dict, pooled_to_dict
from chalicelib.recon.model import CARRY_DAYS, Pooled
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item, to_value

RUNS_PK = "RUNS"
_RUN_ID = re.compile(r"^rr_([0-9]{8})_([a-z0-9][a-z0-9_-]{1,62})$")


class RunInProgress(Conflict):
    """Another run of the same account and day holds the lease."""

    code = "recon_run_in_progress"


def table() -> str:
    return settings().names.recon_table


def run_id(account_id: str, day: date) -> str:
    return f"rr_{day:%Y%m%d}_{account_id}"


def parse_run_id(value: str) -> tuple[str, date]:
    match = _RUN_ID.match(value)
    if not match:
        raise InvalidRequest(f"{value!r} is not a reconciliation run id", param="run_id")
    digits = match.group(1)
    try:
        day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError as exc:
        raise InvalidRequest(f"{value!r} is not a reconciliation run id", param="run_id") from exc
    return match.group(2), day


def _run_key(account_id: str, day: date) -> dict[str, str]:
    return {"pk": RUNS_PK, "sk": f"{day.isoformat()}#{account_id}"}


def _update(key: dict[str, str], values: dict[str, Any], *, condition: str | None = None,
            condition_values: dict[str, Any] | None = None, add: dict[str, int] | None = None,
            remove: tuple[str, ...] = ()) -> None:
    names = {f"#v{i}": name for i, name in enumerate(values)}
    expression = "SET " + ", ".join(f"#v{i} = :v{i}" for i in range(len(values)))
    attribute_values = {f":v{i}": to_value(value) for i, value in enumerate(values.values())}
    for i, (name, delta) in enumerate((add or {}).items()):
        names[f"#a{i}"] = name
        attribute_values[f":a{i}"] = to_value(delta)
    if add:
        expression += " ADD " + ", ".join(f"#a{i} :a{i}" for i in range(len(add)))
    if remove:
        names.update({f"#r{i}": name for i, name in enumerate(remove)})
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
    params: dict[str, Any] = {"TableName": table(), "Key": to_item(key), "UpdateExpression": expression,
                              "ExpressionAttributeNames": names}
    if condition:
        params["ConditionExpression"] = condition
        for token in re.findall(r"#\w+", condition):
            names.setdefault(token, token[1:])
        attribute_values.update({k: to_value(v) for k, v in (condition_values or {}).items()})
    if attribute_values:
        params["ExpressionAttributeValues"] = attribute_values
    client("dynamodb").update_item(**params)


def _condition_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


# --- runs ----------------------------------------------------------------------------------------------------


def begin_run(account_id: str, channel: str, day: date, *, now: str, lease_s: int) -> str:
    """Take the run's lease (or the lease of a run that died); returns the lease token."""
    token = secrets.token_hex(8)
    values = {"run_id": run_id(account_id, day), "account_id": account_id, "channel": channel,
              "day": day.isoformat(), "status": "running", "lease": token, "lease_until": int(time.time()) + lease_s,
              "started_at": now}
    try:
        _update(_run_key(account_id, day), values, add={"executions": 1}, remove=("failure_reason",),
                condition="attribute_not_exists(pk) OR #status <> :running OR lease_until < :now",
                condition_values={":running": "running", ":now": int(time.time())})
    except ClientError as exc:
        if _condition_failed(exc):
            raise RunInProgress(f"a run of {account_id} for {day} is in progress") from exc
        raise
    return token


def finish_run(account_id: str, day: date, token: str, values: dict[str, Any]) -> None:
    """Record the outcome and release the lease, only if this run still holds it."""
    try:
        _update(_run_key(account_id, day), {**values, "lease_until": 0},
                condition="lease = :token", condition_values={":token": token})
    except ClientError as exc:
        if _condition_failed(exc):
            raise RunInProgress(f"the run of {account_id} for {day} lost its lease") from exc
        raise


def update_run(account_id: str, day: date, values: dict[str, Any]) -> bool:
    """Refresh a finished run's figures (a later run resolved its waiting items); never a running one."""
    try:
        _update(_run_key(account_id, day), values, condition="attribute_exists(pk) AND #status <> :running",
                condition_values={":running": "running"})
    except ClientError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


REFRESH_DAYS = 31  # how far after a re-run of a day later days are refreshed


def get_run(account_id: str, day: date) -> dict[str, Any] | None:
    item = client("dynamodb").get_item(TableName=table(), Key=to_item(_run_key(account_id, day)),
                                       ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def completed_days_after(account_id: str, day: date, *, until: date) -> list[date]:
    """The account's days after ``day`` (up to ``until``, at most ``REFRESH_DAYS``) with a completed run, oldest
    first: the days a re-run of ``day`` refreshes."""
    days = []
    for n in range(1, REFRESH_DAYS + 1):
        later = day + timedelta(days=n)
        if later >= until:
            break
        run = get_run(account_id, later)
        if run is not None and run.get("completed_at"):
            days.append(later)
    return days


def list_runs(*, day: date | None, account_id: str | None, limit: int,
              after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest day first. ``after``: the last run id of the previous page."""
    condition, values = "pk = :pk", {":pk": RUNS_PK}
    if day is not None:
        condition += " AND begins_with(sk, :day)"
        values[":day"] = f"{day.isoformat()}#"
    params: dict[str, Any] = {"TableName": table(), "KeyConditionExpression": condition,
                              "ExpressionAttributeValues": to_item(values), "ScanIndexForward": False}
    if account_id is not None:
        params["FilterExpression"] = "account_id = :account"
        params["ExpressionAttributeValues"][":account"] = {"S": account_id}
    if after is not None:
        after_account, after_day = parse_run_id(after)
        params["ExclusiveStartKey"] = to_item(_run_key(after_account, after_day))
    found: list[dict[str, Any]] = []
    while len(found) <= limit:
        page = client("dynamodb").query(**params, Limit=max(limit * 2, 20))
        found += [from_item(item) for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    has_more = len(found) > limit
    return found[:limit], (found[limit - 1]["run_id"] if has_more and limit else None)


# --- items ---------------------------------------------------------------------------------------------------


def item_key(object_kind: str, object_id: str, kind: str) -> str:
    return f"{object_kind}#{object_id}#{kind}"


def items(run: str) -> dict[str, dict[str, Any]]:
    """Every item of a run by its key (a day's differences are few; the rows themselves are never stored)."""
    found: dict[str, dict[str, Any]] = {}
    for page in client("dynamodb").get_paginator("query").paginate(
        TableName=table(), KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": f"ITEMS#{run}"}},
        ConsistentRead=True,
    ):
        for raw in page.get("Items", []):
            item = from_item(raw)
            # DynamoDB items leave out null attributes; a reason always shows both sides, null or not.
            item["reasons"] = [{"field": r["field"], "hub": r.get("hub"), "channel": r.get("channel")}
                               for r in item.get("reasons") or []]
            found[item["sk"]] = item
    return found


def items_page(run: str, *, status: str | None, limit: int,
               after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    selected = [item for _, item in sorted(items(run).items()) if status is None or item["status"] == status]
    if after is not None:
        selected = [item for item in selected if item["sk"] > after]
    return selected[:limit], (selected[limit - 1]["sk"] if len(selected) > limit and limit else None)


def put_new_item(run: str, key: str, values: dict[str, Any]) -> bool:
    """Create an item; False when it already exists (a re-run never overwrites what a run recorded)."""
    try:
        client("dynamodb").put_item(TableName=table(), Item=to_item({"pk": f"ITEMS#{run}", "sk": key, **values}),
                                    ConditionExpression="attribute_not_exists(pk)")
    except ClientError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


def move_item(run: str, key: str, *, expected_status: str, values: dict[str, Any]) -> bool:
    """Change an item only if it is still in ``expected_status``; False if someone else moved it first."""
    try:
        _update({"pk": f"ITEMS#{run}", "sk": key}, values, condition="#status = :expected",
                condition_values={":expected": expected_status})
    except ClientError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


# --- the cross-day pool -------------------------------------------------------------------------------------


def _pool_pk(account_id: str, day: date) -> str:
    return f"POOL#{account_id}#{day.isoformat()}"


def pool_entry_key(entry: Pooled) -> str:
    side = "row" if entry.row is not None else "record"
    subject = entry.row if entry.row is not None else entry.record
    assert subject is not None
    return f"{subject.kind}#{subject.object_id}#{side}"


def _pool_items(account_id: str, day: date) -> Iterator[dict[str, Any]]:
    for page in client("dynamodb").get_paginator("query").paginate(
        TableName=table(), KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": _pool_pk(account_id, day)}}, ConsistentRead=True,
    ):
        yield from (from_item(raw) for raw in page.get("Items", []))


class PreviousDayNotReconciled(Exception):
    """The day before has a run that has not completed (its statement is late, or it failed): days are closed in
    order, or the day before's pool would be skipped now and matched twice later."""


def pool_for(account_id: str, day: date) -> tuple[list[Pooled], date | None]:
    """What the latest completed earlier run (within the carry window) left waiting, and that run's day.
    Reading a fixed earlier snapshot makes a re-run of ``day`` start from exactly the same pool. Raises
    ``PreviousDayNotReconciled`` while the day before has a run that has not completed."""
    previous = get_run(account_id, day - timedelta(days=1))
    if previous is not None and not previous.get("completed_at"):
        reason = previous.get("failure_reason") or previous.get("status") or "not completed"
        raise PreviousDayNotReconciled(f"{day - timedelta(days=1)} is not reconciled yet ({reason}); "
                                       f"{day} runs after it")
    for back in range(1, CARRY_DAYS + 2):
        earlier = day - timedelta(days=back)
        run = get_run(account_id, earlier)
        if run is not None and run.get("completed_at"):
            return [pooled_from_dict(item["entry"]) for item in _pool_items(account_id, earlier)], earlier
    return [], None


def save_pool(account_id: str, day: date, entries: Iterable[Pooled]) -> None:
    """Replace the run's carry-over snapshot with ``entries``."""
    wanted = {pool_entry_key(entry): entry for entry in entries}
    stale = [item["sk"] for item in _pool_items(account_id, day) if item["sk"] not in wanted]
    requests = [{"DeleteRequest": {"Key": to_item({"pk": _pool_pk(account_id, day), "sk": key})}} for key in stale]
    requests += [{"PutRequest": {"Item": to_item({"pk": _pool_pk(account_id, day), "sk": key,
                                                  "entry": pooled_to_dict(entry)})}}
                 for key, entry in wanted.items()]
    for start in range(0, len(requests), 25):
        _batch_write(requests[start:start + 25])


def _batch_write(requests: list[dict[str, Any]]) -> None:
    pending = {table(): requests}
    for attempt in range(8):
        answer = client("dynamodb").batch_write_item(RequestItems=pending)
        pending = answer.get("UnprocessedItems") or {}
        if not pending:
            return
        time.sleep(0.05 * (attempt + 1))
    raise RuntimeError("the recon table kept refusing pool writes (throttled)")
