"""Cold-start cost of every Lambda handler: import time of its module and peak RSS, in fresh interpreters.

Each handler is imported ``--runs`` times (default 5), each time in a new ``python -I`` process, so nothing
is shared between runs except the OS page cache (as on a warm Lambda host, the code is already on disk
cache; .pyc files exist after the first run). The child times ``importlib.import_module`` plus the
``getattr`` of the handler with ``time.perf_counter`` and reports its peak RSS (``ru_maxrss``).

The handlers are every deployed function's (``infra.functions``, the table the template is built from).
Each is also given as a ratio to the floor, ``import boto3, pydantic, chalice, cryptography``, timed the same
way in the same rounds, so a loaded machine moves both sides of the ratio; the goal is 1.25x at most. Where a
function's first request loads or builds what the import left out (``FIRST_REQUESTS``), that work is timed after
the import in the same child and the goal is judged on the two together: a deferral is no saving otherwise.

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
from collections.abc import Callable
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, fmt, median, table  # noqa: E402

from infra.functions import ROUTE_GROUPS, WORKERS  # noqa: E402  (the table the template is built from)

# Every deployed function's handler, as the template names it.
HANDLERS: tuple[str, ...] = tuple(group.handler for group in ROUTE_GROUPS) + tuple(w.handler for w in WORKERS)
# The anchor every handler is compared with, timed in the same run the same way: the four libraries a function
# of this hub cannot do without (the AWS SDK, request models, the API framework, the crypto primitives).
FLOOR = "(floor: import boto3, pydantic, chalice, cryptography)"
FLOOR_IMPORT = "import boto3, pydantic, chalice, cryptography"
# Since pydantic 2, ``import pydantic`` loads none of its model machinery (it is imported on first use), so the
# floor above holds no pydantic worth the name. This second anchor adds what any function that validates with a
# model pays once: BaseModel and the schema building behind the first model class.
FLOOR_MODELS = "(floor + one pydantic model built)"
FLOOR_MODELS_IMPORT = FLOOR_IMPORT + "; from pydantic import BaseModel; type('M', (BaseModel,), {'__annotations__': {'x': int}})"
ANCHORS = {FLOOR: FLOOR_IMPORT, FLOOR_MODELS: FLOOR_MODELS_IMPORT}
TARGET_RATIO = 1.25  # issue 9: every function within 1.25x the floor
BASELINE = "(interpreter only)"

CHILD = """
import importlib, json, resource, sys, time
sys.path.insert(0, {root!r})
target = {target!r}
start, cpu_start = time.perf_counter(), time.process_time()
anchors = {anchors!r}
if target in anchors:
    exec(anchors[target])
elif target:
    module, attr = target.rsplit(".", 1)
    getattr(importlib.import_module(module), attr)
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
first_cpu = 0.0
if {first!r}:  # what the handler's first request does before it reaches the network, timed on top of the import
    cpu_start = time.process_time()
    exec({first!r})
    first_cpu = time.process_time() - cpu_start
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"ms": elapsed * 1000, "cpu_ms": cpu * 1000, "first_cpu_ms": first_cpu * 1000, "rss_kb": rss_kb,
                  "modules": len(sys.modules)}}))
"""

# A saving at import is no saving if the first request only pays it later. So for every function whose first request
# loads or builds something the import left out (a channel adapter, a request model built on first use, the routing
# and risk modules of a create, a worker's deferred modules), that work is run after the import in the same child,
# as the most common request of that function does it, and the import plus it is what the goal is judged on.
_ACCOUNT_DOCUMENT = """
from chalicelib.config.accounts import ChannelAccountConfig
ChannelAccountConfig.model_validate_json('{"account_id": "wx-main", "channel": "wechatpay", "methods": ["wechat.native"],'
                                         ' "api_base_url": "https://api.mch.weixin.qq.com", "settings": {"mchid": "1"}}')
"""
_ACCOUNT = _ACCOUNT_DOCUMENT + """
from chalicelib.channels import registry
registry.adapter("wechatpay")  # the adapter's module, its transport and metrics wrapper
"""
_CREATE_PAYMENT = _ACCOUNT + """
from chalicelib.service.inputs import CreatePaymentInput
CreatePaymentInput.model_validate({"merchant_order_no": "o-1", "amount": 100, "currency": "CNY", "description": "tea",
                                   "method": "wechat.native", "metadata": {"k": "v"}})
from chalicelib.routing.rules import NO_RULES  # a merchant without routing rules: the create's most common case
import chalicelib.stepup.hooks, chalicelib.risk.provider, chalicelib.stepup.credentials
"""
# The first document a container renders, by the hub's own PDF writer: a payment's bill, and a statement (of 20
# lines: what it costs per line beyond that is bench/documents.py's figure).
_RENDER = """
from chalicelib.bills import bills
bills.render_bill({"kind": "payment", "id": "bill_pay_1", "merchant": {"id": "mch_1", "name": "茶馆 Tea House"},
                   "merchant_order_no": "1001", "description": "绿茶 Green tea", "payment_id": "pay_1",
                   "method": "wechat.native", "channel": "wechatpay", "channel_transaction_id": "4200001234",
                   "amount": 8888, "currency": "CNY", "amount_refunded": 0, "fee": None, "status": "succeeded",
                   "created_at": "2026-03-01T02:14:05Z", "paid_at": "2026-03-01T02:14:31Z", "version": 1})
"""
_RENDER_STATEMENT = """
from chalicelib.bills import statements
lines = tuple(statements.Line("2026-03-01", f"2026-03-01T02:{n:02d}:31Z", "payment", 100 + n, "CNY", f"jnl_{n}",
                              f"pay_{n}", f"订单-{n}", channel="wechatpay", channel_transaction_id=f"4200{n:010d}")
              for n in range(20))
statements.to_pdf(statements.Statement("mch_1", "茶馆 Tea House", "2026-03", "CNY", lines,
                                       sum(x.amount for x in lines), "2026-04-01T07:00:00Z"))
"""
FIRST_REQUESTS: dict[str, tuple[str, str]] = {
    "functions.payments.app": ("create a WeChat Native payment: body model, routing rules, risk decision, adapter",
                               _CREATE_PAYMENT),
    "functions.checkout.app": ("create a checkout session: body model, routing rules", """
from chalicelib.checkout.inputs import CreateCheckoutSessionInput
CreateCheckoutSessionInput.model_validate({"merchant_order_no": "o-1", "amount": 100, "currency": "CNY",
                                           "description": "tea", "allowed_methods": ["wechat.native"],
                                           "return_url": "https://shop.example/done"})
from chalicelib.routing.rules import NO_RULES
"""),
    "functions.refunds.app": ("create a refund: body model, risk decision", """
from chalicelib.service.inputs import CreateRefundInput
CreateRefundInput.model_validate({"amount": 100, "merchant_refund_no": "r-1"})
import chalicelib.stepup.hooks, chalicelib.risk.provider, chalicelib.stepup.credentials
"""),
    "functions.callbacks.app": ("a WeChat Pay callback: account document, adapter", _ACCOUNT),
    "functions.invoices.app": ("create an invoice: body model", """
from chalicelib.invoices.inputs import CreateInvoiceInput
CreateInvoiceInput.model_validate({"merchant_invoice_no": "i-1", "kind": "ordinary", "payment_ids": ["pay_1"],
                                   "buyer": {"type": "person", "name": "Li Lei"},
                                   "lines": [{"description": "tea", "tax_code": "1030201020000000000",
                                              "tax_rate": "0.13", "amount": 100}]})
"""),
    "functions.operator_api.app": ("create an API key: body model", """
from chalicelib.service.operator_inputs import CreateApiKeyInput
CreateApiKeyInput.model_validate({"name": "shop"})
"""),
    "functions.status_sync_worker.handler": ("query a WeChat attempt: account document, adapter", _ACCOUNT),
    "functions.refund_worker.handler": ("submit a WeChat refund: account document, adapter", _ACCOUNT),
    "functions.recon_worker.handler": ("a WeChat Pay day: account document, adapter", _ACCOUNT),
    "functions.invoice_worker.handler": ("issue an invoice: the issuing and reversal modules", """
import chalicelib.invoices.issuing, chalicelib.invoices.reversal
"""),
    "functions.bills.app": ("a payment's bill, rendered: the PDF writer and its font", _RENDER),
    "functions.statements.handler": ("a month's statements, rendered: the PDF writer and its font",
                                     _RENDER_STATEMENT),
    "functions.recon_fanout.fan_out": ("the daily fan-out: the channel accounts' documents", _ACCOUNT_DOCUMENT),
    "functions.sweeps.status_sync_sweep": ("a sweep: the status-sync service", """
import chalicelib.service.status_sync
"""),
    "functions.recon_shards.plan": ("plan a WeChat Pay day: the run's modules, the statement's reader, the account", """
import chalicelib.recon.repo, chalicelib.recon.run, chalicelib.recon.shards, chalicelib.recon.day_records
import chalicelib.channels.wechatpay.bill
""" + _ACCOUNT),
    "functions.recon_shards.partition": ("partition a part: the shard module, both sides' readers, DuckDB", """
import chalicelib.recon.shards, chalicelib.channels.wechatpay.bill_columnar, chalicelib.recon.hub_records, duckdb
"""),
    "functions.recon_shards.match": ("match a shard: the shard module, DuckDB", """
import chalicelib.recon.shards, duckdb
"""),
    "functions.recon_shards.combine": ("combine the shards: the run's modules, the statement's reader, the account", """
import chalicelib.recon.repo, chalicelib.recon.run, chalicelib.recon.shards, chalicelib.recon.tally
import chalicelib.channels.wechatpay.bill
""" + _ACCOUNT),
}


@dataclass
class Sample:
    import_ms: float
    cpu_ms: float
    first_cpu_ms: float
    rss_mb: float
    modules: int
    process_ms: float


def child_env() -> dict[str, str]:
    """A Lambda-like environment: stage, region, function name and fake credentials, nothing else from the parent.
    The function name is what tells ``functions/__init__.py`` it runs in Lambda (it pauses garbage collection
    while the handler is imported)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PAYHUB_STAGE": "local", "AWS_LAMBDA_FUNCTION_NAME": "payhub-cold-start-bench",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "ap-east-1", "AWS_REGION": "ap-east-1",
        "LANG": "C.UTF-8",
    }


def first_request(target: str) -> str:
    return FIRST_REQUESTS[target][1] if target in FIRST_REQUESTS else ""


def run_once(target: str, first: str = "", root: str = ROOT) -> Sample:
    code = CHILD.format(root=root, target=target, first=first, anchors=ANCHORS)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-I", "-c", code], env=child_env(), cwd=root,
                         capture_output=True, text=True, check=False)
    process_ms = (time.perf_counter() - started) * 1000
    if out.returncode != 0:
        raise RuntimeError(f"importing {target} failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return Sample(result["ms"], result["cpu_ms"], result["first_cpu_ms"], result["rss_kb"] / 1024, result["modules"], process_ms)


PROJECT_PACKAGES = frozenset({"app", "functions", "chalicelib"})


@dataclass
class _Node:
    depth: int
    name: str
    self_ms: float
    cumulative_ms: float
    children: list[_Node]


def import_breakdown(target: str, top: int = 5) -> list[tuple[str, float]]:
    """Where one handler's import time goes, from one ``-X importtime`` run (which itself adds overhead).

    Our own modules count their self time as "own code"; every other package is charged its cumulative time
    where our code (or the handler's import chain) first imports it, so nothing is counted twice.
    """
    module = target.rsplit(".", 1)[0]
    code = f"import sys; sys.path.insert(0, {ROOT!r}); import {module}"
    out = subprocess.run([sys.executable, "-I", "-X", "importtime", "-c", code], env=child_env(), cwd=ROOT,
                         capture_output=True, text=True, check=False)
    stack: list[_Node] = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, raw_name = line[len("import time:"):].split("|", 2)
        depth = (len(raw_name) - len(raw_name.lstrip(" "))) // 2
        children: list[_Node] = []
        while stack and stack[-1].depth > depth:  # -X importtime prints children before their parent
            children.append(stack.pop())
        stack.append(_Node(depth, raw_name.strip(), float(self_us) / 1000, float(cumulative_us) / 1000, children))

    totals: dict[str, float] = defaultdict(float)

    def charge(node: _Node) -> None:
        root = node.name.split(".")[0]
        if root in PROJECT_PACKAGES:
            totals["own code"] += node.self_ms
            for child in node.children:
                charge(child)
        elif root in sys.stdlib_module_names:
            totals["stdlib"] += node.cumulative_ms
        else:
            totals[root] += node.cumulative_ms

    for node in stack:
        charge(node)
    return sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-breakdown", action="store_true", help="skip the -X importtime attribution")
    parser.add_argument("--before", metavar="DIR", help="another checkout of the repository (e.g. `git worktree add"
                        " DIR main`) whose handlers are measured in the same rounds, for before/after figures")
    args = parser.parse_args(argv)

    begun = time.perf_counter()
    for target in HANDLERS:  # compile .pyc files once so every measured run sees the same disk state
        run_once(target, first_request(target))
        if args.before:
            run_once(target, first_request(target), args.before)
    targets = (BASELINE, *ANCHORS, *HANDLERS)
    samples: dict[str, list[Sample]] = {t: [] for t in targets}
    before: dict[str, list[Sample]] = {t: [] for t in HANDLERS}
    for _ in range(args.runs):  # round-robin, so a noisy moment spreads over all handlers, not one
        for target in targets:
            samples[target].append(run_once("" if target == BASELINE else target, first_request(target)))
            if args.before and target in HANDLERS:
                before[target].append(run_once(target, first_request(target), args.before))

    def ratio(target: str, anchor: str, measure: Callable[[Sample], float], of: dict[str, list[Sample]] = samples
              ) -> float:
        """Median over the rounds of target / anchor measured in the same round, seconds apart: a load that comes
        and goes over the run moves both sides of each ratio alike."""
        pairs = zip(of[target], samples[anchor], strict=True)
        return median([measure(t) / measure(a) for t, a in pairs])

    def cpu(sample: Sample) -> float:
        return sample.cpu_ms

    def cpu_with_first(sample: Sample) -> float:
        return sample.cpu_ms + sample.first_cpu_ms

    rows = []
    over = []
    first_rows = []
    for target in targets:
        wall = [s.import_ms for s in samples[target]]
        ratios = ["", "", "", "", ""]
        if target != BASELINE:
            judged = ratio(target, FLOOR, cpu_with_first)  # the import alone where the first request defers nothing
            ratios = [f"{ratio(target, FLOOR, lambda s: s.import_ms):.2f}", f"{ratio(target, FLOOR, cpu):.2f}",
                      f"{judged:.2f}" if target in FIRST_REQUESTS else "", f"{ratio(target, FLOOR_MODELS, cpu):.2f}", ""]
            if target in HANDLERS:
                ratios[4] = "ok" if judged <= TARGET_RATIO else "OVER"
                if judged > TARGET_RATIO:
                    over.append(f"{target} {judged:.2f}")
            if target in FIRST_REQUESTS:
                first_rows.append([target, FIRST_REQUESTS[target][0],
                                   fmt(median([s.first_cpu_ms for s in samples[target]]))])
        rows.append([
            target, fmt(median(wall)), fmt(min(wall)), fmt(max(wall)), fmt(median([s.cpu_ms for s in samples[target]])),
            *ratios, fmt(median([s.rss_mb for s in samples[target]])), str(samples[target][0].modules),
            fmt(median([s.process_ms for s in samples[target]]), 0),
        ])
    breakdowns = [] if args.no_breakdown else [(t, import_breakdown(t)) for t in HANDLERS]

    print(f"## Cold start: import + getattr of each handler, {args.runs} fresh `python -I` processes each\n")
    print(table(["handler", "wall ms", "min", "max", "CPU ms", "x floor wall", "x floor CPU",
                 "+ 1st request x floor CPU", "x floor+models CPU", f"<= {TARGET_RATIO}x", "peak RSS MB", "modules",
                 "process ms"], rows))
    print("\nwall ms: importlib.import_module + getattr, timed in the child (interpreter start excluded), median;"
          " CPU ms: the same span in\nprocess CPU time (time.process_time), which a busy machine inflates far less"
          " than wall time")
    print(f"x floor: median over the {args.runs} rounds of (handler / floor of the same round), in wall and in CPU"
          " time; + 1st request: the import\nplus its first request's own work (below), in CPU time; x floor+models:"
          " the import in CPU time against the floor plus one pydantic\nmodel built (BaseModel and its schema"
          f" machinery); <= {TARGET_RATIO}x: judged on the import plus the first request where there is one")
    print("peak RSS: ru_maxrss of the child after the import and the first request's work; process ms: whole child,"
          " as seen by the parent")
    print(f"\nwithin {TARGET_RATIO}x the floor in CPU time: {len(HANDLERS) - len(over)} of {len(HANDLERS)} functions"
          + (f"; over: {', '.join(over)}" if over else ""))
    print("\nThe first request's own work: what it loads or builds before reaching the network (CPU ms, median), run"
          " after the import\nin the same process; the other functions' first requests load nothing the import did not")
    print(table(["handler", "first request", "CPU ms"], first_rows, align_left=2))
    if args.before:
        compared = [[t, f"{ratio(t, FLOOR, cpu, before):.2f}", f"{ratio(t, FLOOR, cpu):.2f}",
                     f"{ratio(t, FLOOR, cpu_with_first, before):.2f}" if t in FIRST_REQUESTS else "",
                     f"{ratio(t, FLOOR, cpu_with_first):.2f}" if t in FIRST_REQUESTS else ""] for t in HANDLERS]
        print(f"\nBefore ({args.before}) and now, measured in the same rounds against the same floor (CPU time):")
        print(table(["handler", "import before", "import now", "+ 1st request before", "+ 1st request now"],
                    compared))
    if breakdowns:
        print("\nWhere the import time goes (one `-X importtime` run per handler, which inflates totals):"
              " each third-party package\nis charged its cumulative time where the handler's import chain first"
              " imports it; 'own code' = self time of app/functions/chalicelib")
        print(table(["handler", "heaviest packages (ms)"],
                    [[t, ", ".join(f"{name} {ms:.0f}" for name, ms in ranked)] for t, ranked in breakdowns]))
    print(f"\n(cold_start.py took {time.perf_counter() - begun:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
