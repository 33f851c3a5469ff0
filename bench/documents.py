"""``python bench/documents.py [--lines 3000] [--out DIR]``: what a bill and a month's statement cost to render.

Each figure is taken in a fresh ``python -I`` (as a new Lambda container renders its first document), in process
CPU time: the writer's import, the first bill, a second bill (the font is then read), and a statement of
``--lines`` ledger lines (landscape, many pages). ``--out DIR`` also writes the PDFs and every page as PNG
(pypdfium2, requirements-dev.txt), to look at them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A payment bill as the API answers it (its fee note is the hub's own text, added where the hub is imported); also
# what docs/images/render_bill.py draws.
SAMPLE_BILL = {"object": "bill", "kind": "payment", "id": "bill_pay_7q2kx4m9v3hbn5c8t6wzr1ya",
               "merchant": {"id": "mch_demo", "name": "茶馆 Tea House"}, "payment_id": "pay_7q2kx4m9v3hbn5c8t6wzr1ya",
               "merchant_order_no": "1001", "description": "绿茶 Green tea ×2", "method": "wechat.native",
               "channel": "wechatpay", "channel_transaction_id": "4200001234202603011234567890",
               "amount": 8888, "currency": "CNY", "amount_refunded": 888, "fee": None, "status": "succeeded",
               "created_at": "2026-03-01T02:14:05.120Z", "paid_at": "2026-03-01T02:14:31.502Z", "version": 4}

# Run in a fresh process: that bill, twice, and a merchant's month of payments and refunds.
SAMPLE = r'''
import sys, time, json
sys.modules.setdefault("numpy", None)  # not in the Lambda package (only the benches' pandas brings it)
cpu = time.process_time
SAMPLE_BILL = json.loads(SAMPLE_BILL_JSON)
t0 = cpu()
from chalicelib.bills import bills, statements
t1 = cpu()
BILL = dict(SAMPLE_BILL, fee_note=bills.FEE_NOTE)
bill = bills.render_bill(BILL)
t2 = cpu()
bills.render_bill(dict(BILL, merchant_order_no="1002", amount=1234))
t3 = cpu()
lines = []
for n in range(LINES):
    refund = n % 9 == 8
    day = 1 + n * 31 // max(LINES, 1)
    lines.append(statements.Line(
        value_day=f"2026-03-{day:02d}", booked_at=f"2026-03-{day:02d}T0{n % 10}:{n % 60:02d}:07.000Z",
        kind="refund" if refund else "payment", amount=(-(n % 500) - 1) if refund else 100 + n * 37 % 90000,
        currency="CNY", journal_id=f"jnl_{n:06d}", payment_id=f"pay_{n:06d}",
        merchant_order_no=f"订单-2026-{n:06d}" if n % 3 else f"ORDER-{n:06d}-LONG-REFERENCE-FROM-THE-SHOP-SYSTEM",
        refund_id=f"re_{n:06d}" if refund else "", channel=("wechatpay", "alipay", "unionpay")[n % 3],
        channel_transaction_id=f"42000012342026030{n:013d}"))
statement = statements.Statement("mch_demo", "茶馆 Tea House 福州五四路店", "2026-03", "CNY", tuple(lines),
                                 sum(x.amount for x in lines), "2026-04-01T07:00:00.000Z")
t4 = cpu()
month = statements.to_pdf(statement)
t5 = cpu()
if OUT:
    import os
    with open(os.path.join(OUT, "bill.pdf"), "wb") as f:
        f.write(bill)
    with open(os.path.join(OUT, "statement.pdf"), "wb") as f:
        f.write(month)
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_bill_ms": (t2 - t1) * 1e3, "second_bill_ms": (t3 - t2) * 1e3,
                  "statement_ms": (t5 - t4) * 1e3, "bill_bytes": len(bill), "statement_bytes": len(month)}))
'''


def _rasterise(out: str) -> list[str]:
    import pypdfium2

    written = []
    for name in ("bill", "statement"):
        document = pypdfium2.PdfDocument(os.path.join(out, f"{name}.pdf"))
        for index in range(len(document)):
            path = os.path.join(out, f"{name}-p{index + 1}.png")
            document[index].render(scale=110 / 72).to_pil().save(path)
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=3000, help="ledger lines in the statement")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", help="write bill.pdf, statement.pdf and their pages as PNG here")
    args = parser.parse_args()
    started = time.perf_counter()
    env = {"PATH": os.environ.get("PATH", ""), "PAYHUB_STAGE": "local", "AWS_DEFAULT_REGION": "ap-east-1",
           "PYTHONPATH": ROOT}
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    out = repr(os.path.abspath(args.out)) if args.out else "''"
    code = (SAMPLE.replace("LINES", str(args.lines)).replace("OUT", out)
            .replace("SAMPLE_BILL_JSON", repr(json.dumps(SAMPLE_BILL, ensure_ascii=False))))
    subprocess.run([sys.executable, "-c", "import chalicelib.bills.bills"], check=True, env=env, cwd=ROOT)  # .pyc
    results = []
    for _ in range(args.runs):
        done = subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, capture_output=True,
                              text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"# Documents: median of {args.runs} fresh processes, CPU ms; statement of {args.lines} lines; "
          f"load average {os.getloadavg()[0]:.2f}")
    for key in ("import_ms", "first_bill_ms", "second_bill_ms", "statement_ms", "bill_bytes", "statement_bytes"):
        values = sorted(r[key] for r in results)
        print(f"{key:>16}: {values[len(values) // 2]:10.1f}   (min {values[0]:.1f}, max {values[-1]:.1f})")
    if args.out:
        for path in _rasterise(args.out):
            print("wrote", os.path.relpath(path, ROOT))
    print(f"took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
