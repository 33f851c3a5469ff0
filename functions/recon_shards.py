"""A day of 100 million rows: the three steps the ``ReconShards`` state machine runs (infra/recon_stack.py).

    split   (one function)      statement + hub export from S3 -> N Parquet shards in S3, by key
    match   (Distributed Map)   one shard -> its matching result (JSON) in S3, its counts returned
    combine (one function)      every shard's result -> the day's result in S3 (counts returned)

All three share the bucket's prefix ``shards/<account>/<day>/<execution>/``. The per-shard code is
``chalicelib.recon.shards`` (tested locally against the whole day's result; measured by
bench/recon_shards.py); these handlers only move files between S3 and /tmp.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from typing import Any

from chalicelib.observability import configure_logging
from chalicelib.recon import codec, statement_store
from chalicelib.storage.aws import client

MAX_SHARDS = 10_000  # a Distributed Map runs up to 10,000 child executions in parallel


def _prefix(event: dict[str, Any]) -> str:
    return f"shards/{event['account_id']}/{date.fromisoformat(str(event['day'])).isoformat()}/{event['execution']}"


def _download(key: str, path: str) -> str:
    client("s3").download_file(statement_store.bucket(), key, path)
    return path


def split(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"account_id", "day", "execution", "statement_key", "export_keys", "shards"}`` -> the shard list, each
    item naming its files (the functions list nothing: they read and write the keys they are given)."""
    from chalicelib.recon import columnar, shards
    from chalicelib.recon.run import load_day
    from chalicelib.recon.tally import Tally
    from chalicelib.storage import config_repo

    configure_logging()
    count = int(event["shards"])
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"shards must be 1..{MAX_SHARDS}")
    account = config_repo.channel_account(str(event["account_id"]))
    if account is None:
        raise ValueError(f"no channel account {event['account_id']}")
    day, prefix = date.fromisoformat(str(event["day"])), _prefix(event)
    with columnar.Workspace() as space:
        statement = _download(str(event["statement_key"]), space.path("statement"))
        # the data files of a DynamoDB export (its manifest-files.json lists them)
        exports = [_download(str(key), space.path(f"export-{n}.json.gz")) for n, key in enumerate(event["export_keys"])]
        tally = Tally()
        load_day(account, day, statement, exports, tally=tally, space=space)
        tally.check()
        out = space.path("shards")
        made = shards.split(space, out, count)
        files: dict[int, list[str]] = {shard: [] for shard in range(count)}
        for root, _, names in os.walk(out):
            for name in sorted(names):
                local = os.path.join(root, name)
                relative = os.path.relpath(local, out)  # <side>/shard=<k>/<file>.parquet
                files[int(relative.split(os.sep)[1].removeprefix("shard="))].append(relative)
                client("s3").upload_file(local, statement_store.bucket(), f"{prefix}/{relative}")
    common = {"account_id": event["account_id"], "day": event["day"], "execution": event["execution"]}
    return {**common, "of": count, "rows": tally.rows, "records": sum(made.records.values()),
            "shards": [{**common, "shard": shard, "of": count, "files": files[shard]} for shard in range(count)]}


def match(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"account_id", "day", "execution", "shard", "of", "files"}`` -> the shard's counts (its result goes
    to S3)."""
    from chalicelib.recon import shards

    configure_logging()
    prefix, shard = _prefix(event), int(event["shard"])
    with tempfile.TemporaryDirectory(prefix="shard-") as directory:
        for relative in event["files"]:
            local = os.path.join(directory, str(relative))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            _download(f"{prefix}/{relative}", local)
        result = shards.match_shard(date.fromisoformat(str(event["day"])), directory, shard)
    client("s3").put_object(Bucket=statement_store.bucket(), Key=f"{prefix}/results/{shard}.json",
                            Body=json.dumps(codec.result_to_dict(result)).encode())
    return {"shard": shard, "matched": result.matched, "discrepancies": len(result.discrepancies),
            "carried": len(result.carried)}


def combine(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"account_id", "day", "execution", "of"}`` -> the day's counts; the combined result goes to S3."""
    from chalicelib.recon import shards

    configure_logging()
    prefix = _prefix(event)
    results = []
    for shard in range(int(event["of"])):
        key = f"{prefix}/results/{shard}.json"
        body = client("s3").get_object(Bucket=statement_store.bucket(), Key=key)["Body"].read()
        results.append(codec.result_from_dict(json.loads(body)))
    day = shards.combine(results)
    client("s3").put_object(Bucket=statement_store.bucket(), Key=f"{prefix}/result.json",
                            Body=json.dumps(codec.result_to_dict(day)).encode())
    return {"shards": len(results), "matched": day.matched, "matched_amount": day.matched_amount,
            "discrepancies": len(day.discrepancies), "carried": len(day.carried)}
