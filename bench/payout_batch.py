"""A 10,000-item payout batch: validated, then submitted through the merchant API, then (a slice of it) sent to the
bank sandbox.

Starts, in this process, what the batch needs: moto (over its HTTP wire), the stage's tables and queues, the CMB
bank sandbox with a provisioned reserve account, the API server, and a merchant owed enough. Prints:

- validation alone (``chalicelib.domain.payouts.validate`` on 10,000 rows): time and peak Python memory;
- the submit (``POST /v1/payout_batches``, a 2-3 MB body): the request's wall time (validation, 10,000 items
  written to DynamoDB, the funds reserved in one transaction, 100 queue messages) and the peak of the process;
- sending: the payout worker's time per item against the bank sandbox over the signed protocol, on the first
  ``--send`` items (the sandbox signs in pure Python, so this is the sandbox's speed as much as the hub's).

    python bench/payout_batch.py [--items 10000] [--send 300]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import secrets
import threading
import time
import tracemalloc
import uuid
from datetime import timedelta

from _common import fmt, table


def rows(count: int) -> list[dict[str, object]]:
    return [{"item_ref": f"sup-{n}", "amount": 100 + n % 900, "payee_account_no": f"6214{n:012d}",
             "payee_name": f"供应商{n}", "payee_bank_name": "中国工商银行福州分行", "payee_bank_code": "102391000017",
             "purpose": "货款"} for n in range(1, count + 1)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--send", type=int, default=300, help="items sent to the bank sandbox (timed)")
    args = parser.parse_args()
    os.environ["PAYHUB_STAGE"] = "local"
    for noisy in ("werkzeug", "botocore", "urllib3", "moto", "sandbox", "chalicelib", "payhub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from infra.local.moto import free_port

    api_port = free_port()
    os.environ["PAYHUB_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{api_port}"
    import requests

    from chalicelib.domain import ledger
    from chalicelib.domain.clock import beijing_today
    from chalicelib.domain.money import Money
    from chalicelib.domain.payouts import validate
    from chalicelib.service import audit, payouts, settlement
    from chalicelib.storage import ledger_repo
    from chalicelib.storage.transaction import Transaction
    from infra.local.api_server import create_api_server
    from infra.local.bootstrap import create_stage_resources
    from infra.local.demo import create_demo_merchant
    from infra.local.moto import start_moto
    from infra.local.provision.cmbbank import provision
    from sandbox.cmbbank.server import CMBBankSandbox

    moto, _ = start_moto()
    create_stage_resources("local")
    bank = CMBBankSandbox(settle_s=0.0)
    bank.start()
    provision(bank.base_url, reserve_id="rsv-bench", opening_balance="100000000.00")
    demo = create_demo_merchant(None)
    server = create_api_server("127.0.0.1", api_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    operator = audit.Actor("cli", "bench", "bench")
    settlement.set_terms(operator, demo.merchant.merchant_id, {"delay_days": 0, "minimum_minor": 0, "fee_bps": 0,
                                                      "reserve_id": "rsv-bench"})
    payouts.set_policy(operator, demo.merchant.merchant_id, {"single_threshold_minor": 10**12, "batch_threshold_minor": 10**12,
                                                    "daily_limit_minor": 10**13})
    # The merchant is owed money captured a week ago (posted as a capture journal, as the state machine would).
    funded = ledger.payment_captured(f"att_bench{uuid.uuid4().hex[:12]}", "wechat-demo", demo.merchant.merchant_id,
                                     Money(10**10, "CNY"))
    tx = Transaction()
    ledger_repo.add_journal(tx, funded, now="2026-01-01T00:00:00.000Z",
                            value_day=(beijing_today() - timedelta(days=7)).isoformat())
    tx.commit()

    body = {"merchant_batch_no": f"bench-{secrets.token_hex(4)}", "currency": "CNY", "items": rows(args.items)}
    raw = json.dumps(body).encode()
    tracemalloc.start()
    started = time.perf_counter()
    _, report = validate(body["items"], "CNY")  # type: ignore[arg-type]
    validate_s = time.perf_counter() - started
    _, validate_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.ok

    started = time.perf_counter()
    answer = requests.post(f"http://127.0.0.1:{api_port}/v1/payout_batches", data=raw, timeout=600, headers={
        "Authorization": f"Bearer {demo.api_key}", "Idempotency-Key": uuid.uuid4().hex,
        "Content-Type": "application/json"})
    submit_s = time.perf_counter() - started
    answer.raise_for_status()
    batch = answer.json()

    from chalicelib.banks.accounts import bank_for

    connection = bank_for("rsv-bench")
    started = time.perf_counter()
    counts = payouts.process(batch["id"], 1, args.send, connection)
    send_s = time.perf_counter() - started
    assert counts.get("succeeded") == args.send, counts

    print(f"payout batch: {args.items:,} items, body {len(raw) / 1e6:.2f} MB")
    print(table(["step", "wall", "per item", "memory"], [
        ["validate (domain)", f"{fmt(validate_s, 2)} s", f"{fmt(validate_s / args.items * 1e6, 1)} µs",
         f"{fmt(validate_peak / 1e6, 1)} MB peak (Python)"],
        ["submit (API: validate + write + reserve + queue)", f"{fmt(submit_s, 2)} s",
         f"{fmt(submit_s / args.items * 1e3, 2)} ms", f"{fmt(peak_rss_mb(), 0)} MB peak RSS (process, moto in it)"],
        [f"send {args.send} to the bank sandbox (worker)", f"{fmt(send_s, 2)} s",
         f"{fmt(send_s / args.send * 1e3, 1)} ms", ""],
    ]))
    print(f"batch {batch['id']}: state {batch['state']}, total {batch['total']:,} fen reserved")
    server.shutdown()
    bank.stop()
    moto.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
