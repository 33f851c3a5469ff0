"""Run every benchmark and print its figures under a header describing the machine (``make bench``).

Each benchmark runs in its own interpreter (the AWS-call count starts a whole local stack in-process and
sets the environment before importing the hub), with this interpreter, from the repository root.

    python bench/run_all.py            # recon_matching.py on 1,000,000 rows (a few minutes)
    python bench/run_all.py --quick    # recon_matching.py on 100,000 rows, for CI
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = ("cold_start.py", "dynamodb_calls.py", "callback_verify.py", "sm2.py", "recon_matching.py", "local_http.py",
           "moto_transactions.py", "checkout_page.py", "risk_rules.py", "documents.py",
           "recon_shards.py", "payout_batch.py")
RECON_ROWS, RECON_ROWS_QUICK = 1_000_000, 100_000  # recon_matching.py: ~2.5 min at 1M rows, ~20 s with --quick


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def machine_header() -> str:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        "# payhub benchmarks",
        f"date:    {now}",
        f"cpu:     {cpu_model()}",
        f"cores:   {cores} (usable by this process: {usable})",
        f"ram:     {ram_gib()}",
        f"python:  {platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        f"os:      {platform.system()} {platform.release()}",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark under a machine header.")
    parser.add_argument("--quick", action="store_true",
                        help=f"recon_matching.py on {RECON_ROWS_QUICK:,} rows instead of {RECON_ROWS:,} (for CI)")
    args = parser.parse_args()
    recon_rows = ["--rows", str(RECON_ROWS_QUICK if args.quick else RECON_ROWS)]
    # recon_matching.py: the DuckDB engine and plain DuckDB three times each, alternately, compared by median
    script_args = {"recon_matching.py": [*recon_rows, "--pairs", "3"], "recon_shards.py": recon_rows}
    if args.quick:  # moto_transactions.py: 10,000 payments take several minutes
        script_args["moto_transactions.py"] = ["--payments", "2000", "--before", "100", "--put-anchor", "500"]
    print(machine_header(), flush=True)
    failed = []
    durations = []
    for script in SCRIPTS:
        print(f"\n{'=' * 100}\n", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, os.path.join(HERE, script), *script_args.get(script, [])], cwd=ROOT)
        durations.append((script, time.perf_counter() - started, code))
        if code != 0:
            failed.append(script)
    print(f"\n{'=' * 100}\n")
    for script, seconds, code in durations:
        print(f"{script:<22} {seconds:6.1f} s{'' if code == 0 else f'  FAILED (exit {code})'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
