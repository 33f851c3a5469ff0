"""A reconciliation day as shards, run here step by step as the ReconShards state machine runs it, and what a day
of 100 million rows costs there, computed from these figures.

Data: recon_matching.py's files (a WeChat trade bill and a DynamoDB JSON export, 1,000,000 rows each by
default, generated if ``--data`` does not hold them). Each step runs in a fresh interpreter, as a function would:

* **plan** (``recon_shard_plan`` without S3): ``shards.chunk_lines`` cuts the statement into numbered parts of
  ``--part-lines`` lines; the export, one file here, is cut into ``--export-files`` data files as a DynamoDB
  export writes them (that cut is the bench's, not a step's: it is not timed).
* **partition** (``recon_shard_partition``): one child per statement part and per export file, DuckDB on 2
  threads under its 256 MB limit (a 1,769 MB function has one vCPU: priced at 1 vCPU).
* **match** (``recon_shard_match``): one child per shard.
* **combine** (``recon_shard_combine`` without the run's writes): the shards' results added up and the tally
  checked against the summary; its counts are checked against the Python engine's on the same files (the
  script exits 1 when they differ).

The 100M extrapolation keeps the measured part and shard sizes (so per-step time and memory are measured, not
scaled): 100M / part-lines statement parts and as many export files of the measured size, 100M / rows-per-shard
shards; each step billed for its measured CPU seconds on one vCPU (1,769 MB), the slowest of its kind pricing
all of them; plan (one function) linear in rows. Prices (us-east-1, x86, list prices): Lambda $0.0000166667
per GB-s and $0.20 per million requests; Step Functions Standard $0.025 per 1,000 state transitions; Express
child executions $1.00 per million plus $0.00001667 per GB-s (64 MB billed); S3 PUT $0.005 and GET $0.0004
per 1,000. The run's own writes (items, repairs) scale with the differences, not the rows, and are not priced.

    python bench/recon_shards.py [--rows 1000000] [--shards 8] [--part-lines 250000] [--export-files 4] [--data DIR]
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
STEP_MB, COMBINE_MB = 1769, 3008  # infra/functions.py: one vCPU for plan, partition and match
DAY_ROWS = 100_000_000
LAMBDA_LIMIT_S = 900
CONCURRENCY = 200  # infra/recon_stack.py SHARD_CONCURRENCY


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bench() -> Any:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import recon_matching as bench

    return bench


def _timed(work: Any) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    found = work()
    return {**found, "wall": time.perf_counter() - started, "cpu": time.process_time() - cpu, "peak_mb": _peak_mb()}


def child_plan(data: str, out: str, argument: str) -> dict[str, Any]:
    import gzip

    from chalicelib.recon import shards as sharding

    bench = _bench()
    part_lines, export_files = (int(value) for value in argument.split(","))

    def cut() -> dict[str, Any]:
        made = sharding.chunk_lines(os.path.join(data, bench.STATEMENT), os.path.join(out, "parts"), part_lines)
        sharding.statement_summary(made)
        return {"parts": made.parts, "header": made.header, "tail": made.tail, "lines": made.lines}

    measured = _timed(cut)
    with gzip.open(os.path.join(data, bench.EXPORT), "rt", encoding="utf-8") as source:  # not timed: S3 holds these
        lines = source.readlines()
    size = -(-len(lines) // export_files)
    measured["exports"] = []
    for number in range(export_files):
        path = os.path.join(out, f"export-{number}.json.gz")
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as target:
            target.writelines(lines[number * size : (number + 1) * size])
        measured["exports"].append(path)
    return measured


def child_partition(data: str, out: str, argument: str) -> dict[str, Any]:
    from chalicelib.recon import shards as sharding

    bench = _bench()
    with open(os.path.join(out, "plan.json"), encoding="utf-8") as stream:
        plan = json.load(stream)
    side, number = argument.split(":")
    shards = int(plan["shards"])

    def statement() -> dict[str, Any]:
        made = sharding.partition_statement_part(plan["parts"][int(number)], plan["header"],
                                                 os.path.join(out, "shards"), f"s{int(number):05d}", shards)
        return {"rows": sum(made["rows"].values()), "tally": made["tally"]}

    def export() -> dict[str, Any]:
        made = sharding.partition_export_file(plan["exports"][int(number)], os.path.join(out, "shards"),
                                              f"e{int(number):05d}", shards, account_id=bench.ACCOUNT, day=bench.DAY,
                                              fee_rate_bps=bench.FEE_RATE_BPS, number=int(number))
        return {"records": sum(made.values())}

    return _timed(statement if side == "s" else export)


def child_match(data: str, out: str, argument: str) -> dict[str, Any]:
    from chalicelib.recon import codec
    from chalicelib.recon import shards as sharding

    bench = _bench()
    shard = int(argument)

    def match() -> dict[str, Any]:
        result = sharding.match_shard(bench.DAY, os.path.join(out, "shards"), shard, threads=2)
        with open(os.path.join(out, f"result-{shard}.json"), "w", encoding="utf-8") as stream:
            json.dump(codec.result_to_dict(result), stream)
        return {"differences": len(result.discrepancies)}

    return _timed(match)


def child_combine(data: str, out: str, argument: str) -> dict[str, Any]:
    from chalicelib.recon import codec
    from chalicelib.recon import shards as sharding
    from chalicelib.recon.tally import Tally

    with open(os.path.join(out, "plan.json"), encoding="utf-8") as stream:
        plan = json.load(stream)

    def combine() -> dict[str, Any]:
        results = []
        for shard in range(int(plan["shards"])):
            with open(os.path.join(out, f"result-{shard}.json"), encoding="utf-8") as stream:
                results.append(codec.result_from_dict(json.load(stream)))
        day = sharding.combine(results)
        tally = Tally()
        for values in plan["tallies"]:
            sharding.add_tally(tally, values)
        tally._keep(sharding.statement_summary(sharding.Cut(tail=plan["tail"])))
        tally.check()
        counts = Counter(str(found.kind) for found in day.discrepancies)
        return {"classes": dict(counts), "carried": len(day.carried), "matched": day.matched,
                "matched_amount": day.matched_amount, "rows": tally.rows}

    return _timed(combine)


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
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--part-lines", type=int, default=250_000)
    parser.add_argument("--export-files", type=int, default=4)
    parser.add_argument("--data", help="recon_matching.py's data directory (generated there when missing)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, data, out, argument = args.child
        measure = {"plan": child_plan, "partition": child_partition, "match": child_match,
                   "combine": child_combine}[mode]
        print(json.dumps(measure(data, out, argument)))
        return 0
    started = time.perf_counter()
    data = args.data or tempfile.mkdtemp(prefix="recon-shards-data-")
    out = tempfile.mkdtemp(prefix="recon-shards-")
    try:
        meta_path = os.path.join(data, "meta.json")
        if not os.path.exists(meta_path) or json.load(open(meta_path, encoding="utf-8")).get("rows") != args.rows:
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "recon_matching.py"), "--child", "generate",
                            "--data", data, "--rows", str(args.rows)], cwd=ROOT, check=True, capture_output=True)
        plan = run("--child", "plan", data, out, f"{args.part_lines},{args.export_files}")
        plan["shards"] = args.shards
        with open(os.path.join(out, "plan.json"), "w", encoding="utf-8") as stream:
            json.dump(plan, stream)
        statement_parts = [run("--child", "partition", data, out, f"s:{n}") for n in range(len(plan["parts"]))]
        export_parts = [run("--child", "partition", data, out, f"e:{n}") for n in range(len(plan["exports"]))]
        plan["tallies"] = [part["tally"] for part in statement_parts]
        with open(os.path.join(out, "plan.json"), "w", encoding="utf-8") as stream:
            json.dump(plan, stream)
        matches = [run("--child", "match", data, out, str(shard)) for shard in range(args.shards)]
        combined = run("--child", "combine", data, out, "-")
        done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "recon_matching.py"), "--child", "engine",
                               "--data", data, "--rows", str(args.rows)], cwd=ROOT, capture_output=True, text=True,
                              check=True)
        reference = json.loads(done.stdout.strip().splitlines()[-1])
        agree = (all(combined["classes"].get(klass, 0) == count for klass, count in reference["classes"].items())
                 and sum(combined["classes"].values()) == sum(reference["classes"].values())
                 and (combined["carried"], combined["matched"], combined["matched_amount"])
                 == (reference["carried"], reference["matched"], reference["matched_amount"]))
        rows = combined["rows"]
        records = sum(part["records"] for part in export_parts)
        print(f"## Reconciliation as shards: {rows:,} statement rows x {records:,} hub records; "
              f"{len(plan['parts'])} statement parts of {args.part_lines:,} lines, {len(plan['exports'])} export files, "
              f"{args.shards} shards\n")
        lines = [("plan: cut the statement", fmt(plan["wall"]), fmt(plan["cpu"]), fmt(plan["peak_mb"]), f"{rows:,}")]
        lines += [(f"partition statement part {n}", fmt(m["wall"]), fmt(m["cpu"]), fmt(m["peak_mb"]), f"{m['rows']:,}")
                  for n, m in enumerate(statement_parts)]
        lines += [(f"partition export file {n}", fmt(m["wall"]), fmt(m["cpu"]), fmt(m["peak_mb"]), f"{m['records']:,}")
                  for n, m in enumerate(export_parts)]
        lines += [(f"match shard {n}", fmt(m["wall"]), fmt(m["cpu"]), fmt(m["peak_mb"]), f"{m['differences']:,} diff.")
                  for n, m in enumerate(matches)]
        lines.append(("combine + tally check", fmt(combined["wall"]), fmt(combined["cpu"]), fmt(combined["peak_mb"]), "-"))
        print(table(["step", "wall s", "CPU s", "peak RSS MB", "rows"], lines))
        print(f"\ncombined: {combined['matched']:,} matched, {json.dumps(combined['classes'], sort_keys=True)}, "
              f"{combined['carried']} carried, matched {json.dumps(combined['matched_amount'])}: "
              f"{'the same as' if agree else 'DIFFERENT from'} the Python engine's counts on the same files")

        scale = DAY_ROWS / rows
        plan_s = plan["cpu"] * scale  # one function, one vCPU
        part_s = max(m["cpu"] for m in statement_parts)
        export_s = max(m["cpu"] for m in export_parts)
        match_s = max(m["cpu"] for m in matches)
        combine_s = combined["cpu"] * scale  # linear in the differences (7 % of this benchmark's rows)
        n_parts = int(-(-DAY_ROWS // args.part_lines))
        n_exports = int(-(-len(plan["exports"]) * scale // 1))
        n_shards = int(-(-args.shards * scale // 1))
        waves = lambda count: -(-count // CONCURRENCY)  # noqa: E731
        partition_wall = max(waves(n_parts + n_exports) * max(part_s, export_s), 0)
        match_wall = waves(n_shards) * match_s
        gb = STEP_MB / 1024
        lambda_cost = ((plan_s + n_parts * part_s + n_exports * export_s + n_shards * match_s) * gb
                       + combine_s * COMBINE_MB / 1024) * GB_S + (n_parts + n_exports + n_shards + 2) * LAMBDA_REQUEST
        children = n_parts + n_exports + n_shards
        sfn_cost = 8 * TRANSITION + children * EXPRESS_REQUEST + (n_parts * part_s + n_exports * export_s
                                                                  + n_shards * match_s) * 64 / 1024 * EXPRESS_GB_S
        s3_cost = ((n_parts + n_parts * args.shards + n_exports * args.shards + n_shards) * S3_PUT
                   + (n_parts + n_exports + n_shards * (n_parts + n_exports) + n_shards) * S3_GET)
        longest = max(plan_s, part_s, export_s, match_s, combine_s)
        print("\n### 100,000,000 rows, extrapolated (parts, export files and shards of the measured sizes)\n")
        print(table(["quantity", "value"], [
            ("statement parts / export files / shards", f"{n_parts:,} / {n_exports:,} / {n_shards:,}"),
            ("plan: s on one vCPU (linear in rows)", fmt(plan_s)),
            ("partition: slowest statement part / export file, s", f"{fmt(part_s)} / {fmt(export_s)}"),
            ("match: slowest shard, s", fmt(match_s)),
            ("combine + tally: s (linear in differences)", fmt(combine_s)),
            ("longest single function, s (Lambda's limit 900)", f"{fmt(longest)}: "
             f"{'within' if longest < LAMBDA_LIMIT_S else 'OVER'} the limit"),
            (f"day wall time at {CONCURRENCY} functions at once, s",
             fmt(plan_s + partition_wall + match_wall + combine_s)),
            ("Lambda $ (GB-s + requests)", f"{lambda_cost:.3f}"),
            ("Step Functions $ (transitions + Express children)", f"{sfn_cost:.3f}"),
            ("S3 $ (PUT + GET of parts, partitions and results)", f"{s3_cost:.3f}"),
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
