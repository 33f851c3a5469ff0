"""Does the local stack stay flat as its tables grow? TransactWriteItems rate and memory over many payments.

Each "payment" is written the way the hub writes one, through its own ``Transaction`` (boto3 over HTTP to the
moto server of ``infra/local/moto.py``, in this process, as in ``make run`` and the tests):

* create: the payment record, the merchant-order dedupe key and an outbox event, each ``put_new``;
* success: the payment updated under a condition on its status, an outbox event, two ledger lines;
* every 10th payment, its create is sent again and must be cancelled by the dedupe condition (the rollback
  path of a cancelled transaction runs too).

So a payment is 2.1 transactions and leaves 5 items behind. Two runs, each in a fresh process, one after the
other in the same invocation: moto **as released** (for ``--before`` payments: it slows as it goes, so it is
kept short) and moto **with infra/local/moto_patches.py** (for ``--payments``). At each checkpoint: the
transaction rate over the last stretch, the process's current RSS, and how many moto ``Item`` objects the
class-wide registry holds (the leak). A PutItem-only run of the released moto is the anchor that does not
slow down.

    python bench/moto_transactions.py [--payments 10000] [--before 200] [--put-anchor 2000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, fmt, table  # noqa: E402

CHECKPOINTS = (100, 300, 600, 1_000, 2_000, 5_000, 10_000, 20_000)


def rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def create_payment(state: str, payment_id: str, order: str, n: int) -> Any:
    """The create transaction: payment record, merchant-order dedupe key, outbox event."""
    from chalicelib.storage.transaction import Transaction

    tx = Transaction()
    tx.put_new("payment", state, {"pk": f"PAY#{payment_id}", "sk": "PAY", "status": "CREATED", "amount": 1000,
                                  "currency": "CNY", "merchant_id": "m_bench", "version": 1,
                                  "created_at": "2026-01-01T00:00:00Z"})
    tx.put_new("order", state, {"pk": order, "sk": "ORDER", "payment_id": payment_id})
    tx.put_new("event", state, {"pk": f"EVT#{uuid.uuid4().hex}", "sk": "EVT", "type": "created",
                                "outbox_shard": "0", "outbox_created_at": str(n)})
    return tx


def child(mode: str, payments: int) -> None:
    """Runs in its own process: start moto (fixed or not), write ``payments`` payments, print one JSON line per
    checkpoint."""
    os.environ["PAYHUB_STAGE"] = "local"
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.dynamodb.models.dynamo_type import Item

    from chalicelib.config.names import StageNames
    from chalicelib.storage.aws import client
    from chalicelib.storage.transaction import Transaction, TransactionConflict
    from infra.local.bootstrap import create_stage_resources
    from infra.local.moto import start_moto

    server, _ = start_moto(fix_dynamodb=mode == "fixed")
    create_stage_resources("local")
    names = StageNames("local")
    state, ledger = names.state_table, names.ledger_table
    dynamodb = client("dynamodb")
    checkpoints = [c for c in CHECKPOINTS if c < payments] + [payments]
    transactions = cancelled = 0
    window_started, window_tx, window_cpu = time.perf_counter(), 0, time.process_time()
    started = window_started

    def emit(done: int) -> None:
        nonlocal window_started, window_tx, window_cpu
        now, cpu = time.perf_counter(), time.process_time()
        print(json.dumps({"mode": mode, "payments": done, "tx": transactions, "cancelled": cancelled,
                          "rate": window_tx / (now - window_started), "cpu_ms": (cpu - window_cpu) * 1000 / window_tx,
                          "elapsed": now - started, "rss_mb": rss_mb(),
                          "tracked_items": len(Item.instances_tracked)}), flush=True)
        window_started, window_tx, window_cpu = now, 0, cpu

    for n in range(1, payments + 1):
        payment_id = f"pay_{uuid.uuid4().hex}"
        order = f"ORDER#m_bench#o{n}"
        if mode == "put-anchor":
            # The anchor: the same five items, each its own PutItem, no transaction.
            for pk, sk, table_name in ((f"PAY#{payment_id}", "PAY", state), (order, "ORDER", state),
                                       (f"EVT#{uuid.uuid4().hex}", "EVT", state),
                                       (f"ACCT#{n % 50}", f"J#{payment_id}#1", ledger),
                                       (f"ACCT#{n % 50}", f"J#{payment_id}#2", ledger)):
                dynamodb.put_item(TableName=table_name, Item={"pk": {"S": pk}, "sk": {"S": sk},
                                                              "amount": {"N": "1000"}, "payment": {"S": payment_id}})
                window_tx += 1
                transactions += 1
        else:
            create_payment(state, payment_id, order, n).commit()
            transactions += 1
            window_tx += 1
            if n % 10 == 0:
                try:
                    create_payment(state, payment_id, order, n).commit()
                except TransactionConflict as conflict:
                    if conflict.failed_labels != ["payment", "order"] and conflict.failed_labels != ["order"]:
                        raise
                    cancelled += 1
                else:
                    raise AssertionError("a duplicate create was not cancelled")
                transactions += 1
                window_tx += 1
            tx = Transaction()
            tx.update("payment", state, {"pk": f"PAY#{payment_id}", "sk": "PAY"}, {"status": "SUCCEEDED"},
                      condition="#status = :created", condition_values={":created": "CREATED"},
                      add_values={"version": 1})
            tx.put_new("event", state, {"pk": f"EVT#{uuid.uuid4().hex}", "sk": "EVT", "type": "succeeded"})
            tx.put_new("debit", ledger, {"pk": f"ACCT#{n % 50}", "sk": f"J#{payment_id}#1", "amount": -1000})
            tx.put_new("credit", ledger, {"pk": "ACCT#clearing", "sk": f"J#{payment_id}#2", "amount": 1000})
            tx.commit()
            transactions += 1
            window_tx += 1
        if n in checkpoints:
            emit(n)
    server.stop()


def run_child(mode: str, payments: int) -> list[dict[str, float]]:
    command = [sys.executable, os.path.abspath(__file__), "--child", mode, "--payments", str(payments)]
    output = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=10_000, help="payments through the fixed moto")
    parser.add_argument("--before", type=int, default=200,
                        help="payments through moto as released (slow: ~1 min and ~1 GB at 200)")
    parser.add_argument("--put-anchor", type=int, default=2_000, help="payments as plain PutItems, moto as released")
    parser.add_argument("--child", choices=("released", "fixed", "put-anchor"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.payments)
        return 0

    started = time.perf_counter()
    print("## moto TransactWriteItems as the tables grow (2.1 transactions and 5 items per payment)\n")
    runs = [("put-anchor", args.put_anchor), ("released", args.before), ("fixed", args.payments)]
    rows = []
    for mode, payments in runs:
        if payments <= 0:
            continue
        for point in run_child(mode, payments):
            rows.append([mode, f"{int(point['payments']):,}", f"{int(point['tx']):,}",
                         fmt(point["rate"]), fmt(point["cpu_ms"], 2), fmt(point["elapsed"]), fmt(point["rss_mb"]),
                         f"{int(point['tracked_items']):,}"])
    print(table(["moto", "payments", "writes", "writes/s since last", "CPU ms/write", "elapsed s", "RSS MB",
                 "tracked Items"],
                rows, align_left=1))
    print("\nput-anchor: 5 PutItems per payment (writes = PutItems), moto as released.\n"
          "released:   moto 5.2.5 as installed. fixed: with infra/local/moto_patches.py (what start_moto runs).\n"
          "writes/s is TransactWriteItems (or PutItems) per second over the stretch since the previous row, and\n"
          "CPU ms/write the process's CPU time (moto and client, all threads) per write over that stretch: on a\n"
          "shared machine the CPU figure is the one to read for flatness, wall-clock rates move with the load;\n"
          "RSS is the whole process (moto server thread + client), current, not peak.")
    print(f"\nmoto_transactions.py took {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
