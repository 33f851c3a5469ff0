"""Cold-start cost of every Lambda handler: import time of its module and peak RSS, in fresh interpreters.

Each handler is imported ``--runs`` times (default 5), each time in a new ``python -I`` process, so nothing
is shared between runs except the OS page cache (as on a warm Lambda host, the code is already on disk
cache; .pyc files exist after the first run). The child times ``importlib.import_module`` plus the
``getattr`` of the handler with ``time.perf_counter`` and reports its peak RSS (``ru_maxrss``).

A separate, untimed ``-X importtime`` run per handler attributes the import time to top-level packages,
to show what a handler pays for.

    python bench/cold_start.py [--runs 5] [--no-breakdown]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, fmt, median, table  # noqa: E402

HANDLERS: tuple[str, ...] = (
    "app.app",
    "functions.payments.app",
    "functions.refunds.app",
    "functions.callbacks.app",
    "functions.webhook_worker.handler",
    "functions.status_sync_worker.handler",
    "functions.refund_worker.handler",
    "functions.sweeps.outbox_sweep",
    "functions.sweeps.status_sync_sweep",
)
BASELINE = "(interpreter only)"

CHILD = """
import importlib, json, resource, sys, time
sys.path.insert(0, {root!r})
target = {target!r}
start = time.perf_counter()
if target:
    module, attr = target.rsplit(".", 1)
    getattr(importlib.import_module(module), attr)
elapsed = time.perf_counter() - start
then_ms = 0.0
if {then!r}:  # a lazy import the handler defers to its first request, timed on top of the handler
    start = time.perf_counter()
    module, attr = {then!r}.rsplit(".", 1)
    getattr(importlib.import_module(module), attr)
    then_ms = (time.perf_counter() - start) * 1000
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"ms": elapsed * 1000, "then_ms": then_ms, "rss_kb": rss_kb, "modules": len(sys.modules)}}))
"""


@dataclass
class Sample:
    import_ms: float
    rss_mb: float
    modules: int
    process_ms: float


def child_env() -> dict[str, str]:
    """A Lambda-like environment: stage, region and fake credentials, nothing else from the parent."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PAYHUB_STAGE": "local",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "ap-east-1", "AWS_REGION": "ap-east-1",
        "LANG": "C.UTF-8",
    }


def run_once(target: str) -> Sample:
    code = CHILD.format(root=ROOT, target=target)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-I", "-c", code], env=child_env(), cwd=ROOT,
                         capture_output=True, text=True, check=False)
    process_ms = (time.perf_counter() - started) * 1000
    if out.returncode != 0:
        raise RuntimeError(f"importing {target} failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return Sample(result["ms"], result["rss_kb"] / 1024, result["modules"], process_ms)


def import_breakdown(target: str, top: int = 4) -> list[tuple[str, float]]:
    """Self time per top-level package, from one ``-X importtime`` run (which itself adds overhead)."""
    module = target.rsplit(".", 1)[0]
    code = f"import sys; sys.path.insert(0, {ROOT!r}); import {module}"
    out = subprocess.run([sys.executable, "-I", "-X", "importtime", "-c", code], env=child_env(), cwd=ROOT,
                         capture_output=True, text=True, check=False)
    per_package: dict[str, float] = defaultdict(float)
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line[len("import time:"):].split("|", 2)
        per_package[name.strip().split(".")[0]] += float(self_us) / 1000
    ranked = sorted(per_package.items(), key=lambda kv: kv[1], reverse=True)
    return ranked[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-breakdown", action="store_true", help="skip the -X importtime attribution")
    args = parser.parse_args(argv)

    begun = time.perf_counter()
    run_once("app.app")  # compile .pyc files once so every measured run sees the same disk state
    rows = []
    breakdowns: list[tuple[str, list[tuple[str, float]]]] = []
    for target in (BASELINE, *HANDLERS):
        samples = [run_once("" if target == BASELINE else target) for _ in range(args.runs)]
        ms = [s.import_ms for s in samples]
        rows.append([
            target, fmt(median(ms)), fmt(min(ms)), fmt(max(ms)),
            fmt(median([s.rss_mb for s in samples])), str(samples[0].modules), fmt(median([s.process_ms for s in samples]), 0),
        ])
        if target != BASELINE and not args.no_breakdown:
            breakdowns.append((target, import_breakdown(target)))

    print(f"## Cold start: import + getattr of each handler, {args.runs} fresh `python -I` processes each\n")
    print(table(["handler", "median ms", "min ms", "max ms", "peak RSS MB", "modules", "process ms"], rows))
    print("\nimport ms: importlib.import_module + getattr, timed in the child (interpreter start excluded)")
    print("peak RSS: ru_maxrss of the child after the import; process ms: whole child, as seen by the parent")
    if breakdowns:
        print("\nWhere the import time goes (self time by top-level package, one `-X importtime` run,"
              " which inflates totals):")
        print(table(["handler", "heaviest packages (ms)"],
                    [[t, ", ".join(f"{name} {ms:.0f}" for name, ms in ranked)] for t, ranked in breakdowns]))
    print(f"\n(cold_start.py took {time.perf_counter() - begun:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
