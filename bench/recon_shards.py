"""A reconciliation day as shards, run here: split, every shard matched in its own process, combined; and what a
day of 100 million rows costs on the ReconShards state machine, computed from these figures.

Data: recon_matching.py's files (a WeChat trade bill and a DynamoDB JSON export, 1,000,000 rows each by
default, generated if ``--data`` does not hold them). Steps, each in a fresh interpreter:

* **split** (the ``recon_shard_split`` function's work without S3): ``run.load_day`` (the bill by DuckDB, the
  export by DuckDB at the same time) then ``shards.split`` into ``--shards`` Parquet partitions.
* **match shard k** (``recon_shard_match``): ``shards.match_shard`` on one DuckDB thread with DuckDB's 256 MB
  limit, as a 1,024 MB Lambda (about 0.58 vCPU) runs it; wall, CPU and peak RSS per shard.
* **combine** (``recon_shard_combine``): ``shards.combine`` of every shard's result; its counts are checked
  against plain DuckDB's on the same files (recon_matching.py's ``duckdb`` child; the script exits 1 when
  they differ).

The 100M extrapolation keeps the measured shard size (so per-shard time and memory are measured, not scaled):
100M / rows-per-shard shards, each billed as a 1,024 MB function for its measured CPU time divided by the
0.58 vCPU such a function gets; the split and the combine scale linearly from the measured CPU seconds, on one
vCPU (a 3,008 MB function). Prices (us-east-1, x86, list
prices): Lambda $0.0000166667 per GB-s and $0.20 per million requests; Step Functions Standard $0.025 per
1,000 state transitions; Express child executions $1.00 per million plus $0.00001667 per GB-s (64 MB
billed); S3 PUT $0.005 and GET $0.0004 per 1,000.

    python bench/recon_shards.py [--rows 1000000] [--shards 8] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, fmt, table  # noqa: E402

GB_S, LAMBDA_REQUEST = 0.0000166667, 0.20 / 1e6
TRANSITION = 0.025 / 1000
EXPRESS_REQUEST, EXPRESS_GB_S = 1.00 / 1e6, 0.00001667
S3_PUT, S3_GET = 0.005 / 1000, 0.0004 / 1000
MATCH_MB, SPLIT_MB = 1024, 3008
VCPU_AT = {1024: 1024 / 1769, 3008: 1.0}  # Lambda gives one full vCPU at 1,769 MB, proportionally below
DAY_ROWS = 100_000_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_split(data: str, out: str, shards: int) -> dict[str, Any]:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import recon_matching as bench

    from chalicelib.recon import columnar
    from chalicelib.recon import shards as sharding
    from chalicelib.recon.run import load_day
    from chalicelib.recon.tally import Tally

    account = bench._account()
    started, cpu = time.perf_counter(), time.process_time()
    with columnar.Workspace(threads=2) as space:
        tally = Tally()
        load_day(account, bench.DAY, os.path.join(data, bench.STATEMENT), [os.path.join(data, bench.EXPORT)],
                 tally=tally, space=space)
        tally.check()
        made = sharding.split(space, out, shards)
    files = sum(len(names) for _, _, names in os.walk(out))
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu, "peak_mb": _peak_mb(),
            "rows": made.rows, "records": made.records, "files": files}


def child_match(data: str, out: str, shard: int) -> dict[str, Any]:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import recon_matching as bench

    from chalicelib.recon import codec
    from chalicelib.recon import shards as sharding

    started, cpu = time.perf_counter(), time.process_time()
    result = sharding.match_shard(bench.DAY, out, shard, threads=1)
    with open(os.path.join(out, f"result-{shard}.json"), "w", encoding="utf-8") as stream:
        json.dump(codec.result_to_dict(result), stream)
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu, "peak_mb": _peak_mb()}


def child_combine(data: str, out: str, shards: int) -> dict[str, Any]:
    from chalicelib.recon import codec
    from chalicelib.recon import shards as sharding

    started, cpu = time.perf_counter(), time.process_time()
    results = []
    for shard in range(shards):
        with open(os.path.join(out, f"result-{shard}.json"), encoding="utf-8") as stream:
            results.append(codec.result_from_dict(json.load(stream)))
    day = sharding.combine(results)
    counts = Counter(str(found.kind) for found in day.discrepancies)
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu, "peak_mb": _peak_mb(),
            "classes": dict(counts), "carried": len(day.carried), "matched": day.matched,
            "matched_amount": day.matched_amount}


def run(*argv: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, os.path.abspath(__file__), *argv], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {argv[:2]} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--data", help="recon_matching.py's data directory (generated there when missing)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, data, out, number = args.child
        measure = {"split": child_split, "match": child_match, "combine": child_combine}[mode]
        print(json.dumps(measure(data, out, int(number))))
        return 0
    started = time.perf_counter()
    data = args.data or tempfile.mkdtemp(prefix="recon-shards-data-")
    out = tempfile.mkdtemp(prefix="recon-shards-")
    try:
        meta_path = os.path.join(data, "meta.json")
        if not os.path.exists(meta_path) or json.load(open(meta_path, encoding="utf-8")).get("rows") != args.rows:
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "recon_matching.py"), "--child", "generate",
                            "--data", data, "--rows", str(args.rows)], cwd=ROOT, check=True, capture_output=True)
        split = run("--child", "split", data, out, str(args.shards))
        matches = [run("--child", "match", data, out, str(shard)) for shard in range(args.shards)]
        combined = run("--child", "combine", data, out, str(args.shards))
        done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "recon_matching.py"), "--child", "duckdb",
                               "--data", data, "--rows", str(args.rows)], cwd=ROOT, capture_output=True, text=True,
                              check=True)
        reference = json.loads(done.stdout.strip().splitlines()[-1])
        agree = (all(combined["classes"].get(klass, 0) == count for klass, count in reference["classes"].items())
                 and sum(combined["classes"].values()) == sum(reference["classes"].values())
                 and (combined["carried"], combined["matched"], combined["matched_amount"])
                 == (reference["carried"], reference["matched"], reference["matched_amount"]))
        rows = sum(split["rows"].values())
        print(f"## Reconciliation as shards: {rows:,} statement rows x {sum(split['records'].values()):,} hub records, "
              f"{args.shards} shards\n")
        lines = [("split (load + partition)", fmt(split["wall"]), fmt(split["cpu"]), fmt(split["peak_mb"]), f"{rows:,}")]
        for shard, measured in enumerate(matches):
            lines.append((f"match shard {shard}", fmt(measured["wall"]), fmt(measured["cpu"]), fmt(measured["peak_mb"]),
                          f"{split['rows'].get(str(shard), split['rows'].get(shard, 0)):,}"))
        lines.append(("combine", fmt(combined["wall"]), fmt(combined["cpu"]), fmt(combined["peak_mb"]), "-"))
        print(table(["step", "wall s", "CPU s", "peak RSS MB", "rows"], lines))
        print(f"\ncombined: {combined['matched']:,} matched, {json.dumps(combined['classes'], sort_keys=True)}, "
              f"{combined['carried']} carried, matched {json.dumps(combined['matched_amount'])}: "
              f"{'the same as' if agree else 'DIFFERENT from'} plain DuckDB's counts on the same files")

        per_shard_rows = rows / args.shards
        shard_cpu = max(measured["cpu"] for measured in matches)  # the slowest shard prices every one
        shard_peak = max(measured["peak_mb"] for measured in matches)
        shards_100m = int(-(-DAY_ROWS // per_shard_rows))
        match_s = shard_cpu / VCPU_AT[MATCH_MB]
        split_s = split["cpu"] * DAY_ROWS / rows / VCPU_AT[SPLIT_MB]  # DuckDB's 2 threads help it little: priced at 1
        files_per_shard = split["files"] / args.shards
        combine_s = combined["cpu"] * DAY_ROWS / rows / VCPU_AT[SPLIT_MB]
        lambda_cost = (shards_100m * match_s * MATCH_MB / 1024 * GB_S + (split_s + combine_s) * SPLIT_MB / 1024 * GB_S
                       + (shards_100m + 2) * LAMBDA_REQUEST)
        sfn_cost = 6 * TRANSITION + shards_100m * (EXPRESS_REQUEST + match_s * 64 / 1024 * EXPRESS_GB_S)
        s3_cost = (shards_100m * files_per_shard + shards_100m + 1) * S3_PUT + (shards_100m * files_per_shard
                                                                                + shards_100m + 2) * S3_GET
        concurrency = 200
        waves = -(-shards_100m // concurrency)
        print(f"\n### 100,000,000 rows, extrapolated from these shards ({per_shard_rows:,.0f} rows a shard, as measured)\n")
        print(table(["quantity", "value"], [
            ("shards", f"{shards_100m:,}"),
            ("per shard: CPU s measured (slowest) -> s on a 1,024 MB function", f"{shard_cpu:.2f} -> {match_s:.1f}"),
            ("per shard: peak RSS MB measured (slowest)", fmt(shard_peak)),
            ("split: s on a 3,008 MB function (linear from the measured split)", fmt(split_s)),
            (f"matching wall time at {concurrency} shards at once ({waves} waves)", fmt(waves * match_s)),
            ("day wall time: split + matching + combine (~s; combine linear in the differences)",
             fmt(split_s + waves * match_s + combined["cpu"] * DAY_ROWS / rows / VCPU_AT[SPLIT_MB])),
            ("Lambda $ (GB-s + requests)", f"{lambda_cost:.3f}"),
            ("Step Functions $ (transitions + Express children)", f"{sfn_cost:.3f}"),
            ("S3 $ (PUT + GET of shard files and results)", f"{s3_cost:.4f}"),
            ("total $ a day", f"{lambda_cost + sfn_cost + s3_cost:.3f}"),
        ]))
        print(f"\n(recon_shards.py took {time.perf_counter() - started:.1f} s)")
        return 0 if agree else 1
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if not args.data:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
