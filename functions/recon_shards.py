"""A day of 100 million rows: the four steps of the ``ReconShards`` state machine (infra/recon_stack.py).

    plan       (one function)        take the run's lease, fetch the statement (S3), read the pool, cut the
                                     statement into numbered parts -> the parts to partition
    partition  (Distributed Map)     one statement part or one export data file -> its rows or records as
                                     Parquet partitions by key; a statement part's counts
    match      (Distributed Map)     one shard's partitions (+ its pooled items) -> its result (JSON, S3)
    combine    (one function)        every shard's result + every part's counts -> the day's result, then the
                                     run's items, repairs, pool, ledger check, reports (``run.complete``)

No step reads the whole day: the statement is cut by ``plan`` without being parsed, each export data file
(a DynamoDB export to S3 writes many) and each statement part is read by its own function. Every step shares
the bucket prefix ``shards/<account>/<day>/<execution>/``. The per-step code is ``chalicelib.recon.shards``
(tested locally against the Python engine; measured by bench/recon_shards.py): these handlers move files
between S3 and /tmp and pass the state on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import date
from typing import Any

from chalicelib.observability import configure_logging
from chalicelib.recon import codec, statement_store
from chalicelib.storage.aws import client
from functions import imported

MAX_SHARDS = 1_000  # the shard list travels in the state (256 KB): ~100 bytes an item
DEFAULT_PART_LINES = 1_000_000
RUN_LEASE_S = 4 * 3600  # the state machine holds the run for all its steps


def _prefix(event: dict[str, Any]) -> str:
    return f"shards/{event['account_id']}/{date.fromisoformat(str(event['day'])).isoformat()}/{event['execution']}"


def _common(event: dict[str, Any]) -> dict[str, Any]:
    return {"account_id": event["account_id"], "day": event["day"], "execution": event["execution"],
            "of": int(event["of"])}


def _download(key: str, path: str) -> str:
    client("s3").download_file(statement_store.bucket(), key, path)
    return path


def _account(account_id: str) -> Any:
    from chalicelib.storage import config_repo

    account = config_repo.channel_account(account_id)
    if account is None:
        raise ValueError(f"no channel account {account_id}")
    return account


def _stored(key: str) -> statement_store.StoredStatement:
    digest, size = hashlib.sha256(), 0
    for chunk in statement_store.read(key):
        digest.update(chunk)
        size += len(chunk)
    return statement_store.StoredStatement(key, digest.hexdigest(), size)


def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"account_id", "day", "execution", "export_keys", "shards"[, "part_lines", "statement_key"]}`` -> the state the maps
    run on (``export_keys``: the data files a DynamoDB export's ``manifest-files.json`` lists)."""
    from chalicelib.config.fee_schedule import fee_rate_bps
    from chalicelib.domain.clock import iso, require_day_over, utcnow
    from chalicelib.recon import repo, shards
    from chalicelib.recon.fetch import fetch

    configure_logging()
    count = int(event["shards"])
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"shards must be 1..{MAX_SHARDS}")
    account = _account(str(event["account_id"]))
    day, prefix = date.fromisoformat(str(event["day"])), _prefix(event)
    require_day_over(day)  # a day still running has a partial statement: refused before the run is begun
    token = repo.begin_run(account.account_id, account.config.channel, day, now=iso(utcnow()), lease_s=RUN_LEASE_S)
    s3, bucket = client("s3"), statement_store.bucket()
    # The statement: fetched from the channel as a run fetches it, or already in the bucket (a channel that
    # delivers its file there), named by ``statement_key``.
    given = event.get("statement_key")
    stored = fetch(account, day, token) if not given else _stored(str(given))
    pool, pool_day = repo.pool_for(account.account_id, day)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/pool.json",
                  Body=json.dumps([codec.pooled_to_dict(entry) for entry in pool]).encode())
    with tempfile.TemporaryDirectory(prefix="plan-") as directory:
        statement = _download(stored.key, os.path.join(directory, "statement"))
        cut = shards.chunk_lines(statement, os.path.join(directory, "parts"),
                                 int(event.get("part_lines") or DEFAULT_PART_LINES))
        shards.statement_summary(cut)  # the bill ends with its summary, or the day is not shardable
        parts = []
        for number, local in enumerate(cut.parts):
            key = f"{prefix}/statement/{os.path.basename(local)}"
            s3.upload_file(local, bucket, key)
            parts.append({"side": "statement", "key": key, "name": f"s{number:05d}"})
    parts += [{"side": "export", "key": str(key), "name": f"e{number:05d}", "number": number,
               "fee_rate_bps": fee_rate_bps(account)}
              for number, key in enumerate(event["export_keys"])]
    common = {"account_id": account.account_id, "day": day.isoformat(), "execution": event["execution"], "of": count}
    return {**common, "token": token, "pool_day": pool_day.isoformat() if pool_day else None,
            "statement": {"key": stored.key, "sha256": stored.sha256, "size_bytes": stored.size_bytes},
            "header": cut.header, "tail": cut.tail, "lines": cut.lines,
            "parts": [{**common, "header": cut.header, **part} for part in parts],
            "shards": [{**common, "shard": shard} for shard in range(count)]}


def partition(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One item of ``parts`` -> its partitions in S3 (``<prefix>/<side>/shard=<k>/<name>_0.parquet``); a
    statement part's counts."""
    from chalicelib.recon import shards

    configure_logging()
    prefix, name, count = _prefix(event), str(event["name"]), int(event["of"])
    with tempfile.TemporaryDirectory(prefix="part-") as directory:
        # the file's own name: DuckDB tells gzip by the extension
        local = _download(str(event["key"]), os.path.join(directory, str(event["key"]).rsplit("/", 1)[-1]))
        out = os.path.join(directory, "out")
        if event["side"] == "statement":
            made = shards.partition_statement_part(local, str(event["header"]), out, name, count)
            written, tally = made["rows"], made["tally"]
        else:
            # the account's fee rate comes from plan: this step reads no account (and no channel secret)
            rate = event.get("fee_rate_bps")
            written = shards.partition_export_file(local, out, name, count, account_id=str(event["account_id"]),
                                                   day=date.fromisoformat(str(event["day"])),
                                                   fee_rate_bps=None if rate is None else int(rate),
                                                   number=int(event["number"]))
            tally = None
        records = sum(written.values()) if event["side"] == "export" else 0
        for root, _, files in os.walk(out):
            for file in sorted(files):
                path = os.path.join(root, file)
                client("s3").upload_file(path, statement_store.bucket(), f"{prefix}/{os.path.relpath(path, out)}")
    return {"name": name, "shards": sorted(written), "tally": tally, "records": records}


def match(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"account_id", "day", "execution", "of", "shard"}`` -> the shard's counts (its result goes to S3)."""
    from chalicelib.recon import shards

    configure_logging()
    prefix, shard, count = _prefix(event), int(event["shard"]), int(event["of"])
    s3, bucket = client("s3"), statement_store.bucket()
    pool = [codec.pooled_from_dict(entry)
            for entry in json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/pool.json")["Body"].read())]
    with tempfile.TemporaryDirectory(prefix="shard-") as directory:
        for side in ("rows", "records"):
            listed = f"{prefix}/{side}/shard={shard}/"
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=listed):
                for item in page.get("Contents", []):
                    local = os.path.join(directory, side, f"shard={shard}", item["Key"].rsplit("/", 1)[1])
                    os.makedirs(os.path.dirname(local), exist_ok=True)
                    _download(item["Key"], local)
        result = shards.match_shard(date.fromisoformat(str(event["day"])), directory, shard,
                                    shards.pool_for_shard(pool, shard, count))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/results/{shard}.json",
                  Body=json.dumps(codec.result_to_dict(result)).encode())
    return {"shard": shard, "matched": result.matched, "discrepancies": len(result.discrepancies),
            "carried": len(result.carried)}


def combine(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The plan's state plus ``partitioned`` (every part's output) -> the run's outcome: the shards' results
    combined, the statement's counts checked against its summary, then the run completes as a one-process
    run does (``run.complete``: items, repairs, pool, ledger check, run record, reports, metric)."""
    from chalicelib.recon import repo, run, shards
    from chalicelib.recon.tally import Tally

    configure_logging()
    prefix = _prefix(event)
    account, day = _account(str(event["account_id"])), date.fromisoformat(str(event["day"]))
    s3, bucket = client("s3"), statement_store.bucket()
    results = [codec.result_from_dict(json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/results/{shard}.json")
                                                 ["Body"].read())) for shard in range(int(event["of"]))]
    result = shards.combine(results)
    tally = Tally()
    for part in event["partitioned"]:
        if part.get("tally"):
            shards.add_tally(tally, part["tally"])
    tally._keep(shards.statement_summary(shards.Cut(tail=list(event["tail"]))))
    tally.check()
    pool = [codec.pooled_from_dict(entry)
            for entry in json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/pool.json")["Body"].read())]
    stored = statement_store.StoredStatement(**event["statement"])
    pool_day = date.fromisoformat(str(event["pool_day"])) if event.get("pool_day") else None
    hub_count = sum(int(part.get("records") or 0) for part in event["partitioned"])
    outcome = run.complete(account, day, repo.run_id(account.account_id, day), str(event["token"]), stored,
                           tally, hub_count, result, pool, pool_day)
    return {"run_id": outcome.run_id, "status": outcome.status, "unresolved": outcome.unresolved,
            "items_by_status": outcome.items_by_status, "matched": result.matched,
            "discrepancies": len(result.discrepancies), "carried": len(result.carried)}


imported()
