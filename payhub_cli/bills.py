"""``payhub payments|refunds list|export``, ``payhub bill``, ``payhub statements run|get``: a merchant's records
by time, their bills and the monthly statements, read through the same code the API uses (as that merchant)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from chalicelib.domain.models import Merchant

# An export stops this far before "now" unless told otherwise: a payment whose create transaction is still in
# flight (or whose index entry is still replicating) when the export passes its time would be missed.
EXPORT_SETTLE_S = 5
PAYMENT_COLUMNS = ("id", "created_at", "merchant_order_no", "status", "method", "amount", "amount_captured",
                   "amount_refunded", "currency", "description")
REFUND_COLUMNS = ("id", "created_at", "payment_id", "merchant_refund_no", "status", "amount", "currency", "reason",
                  "automatic")


class NoSuchMerchant(Exception):
    pass


def _merchant(merchant_id: str) -> Merchant:
    from chalicelib.storage import config_repo

    found = config_repo.load_merchant(merchant_id)
    if found is None:
        raise NoSuchMerchant(f"no merchant {merchant_id}")
    return found


def _params(args: argparse.Namespace, kind: str) -> dict[str, str]:
    names = {"created_from": args.created_from, "created_to": args.created_to, "status": args.status,
             "channel": args.channel, "merchant_order_no": args.order}
    if kind == "payment":
        names["method"] = args.method
    else:
        names["payment_id"] = args.payment
    return {k: v for k, v in names.items() if v is not None}


def list_page(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.bills import listing

    params = _params(args, args.kind)
    params["limit"] = str(args.limit)
    if args.cursor:
        params["cursor"] = args.cursor
    return listing.list_page(_merchant(args.merchant), args.kind, params).public()


def export(args: argparse.Namespace) -> dict[str, Any]:
    """Every page, newest first, to ``--output`` as CSV or JSON lines; progress on stderr."""
    from chalicelib.bills import listing
    from chalicelib.domain.clock import iso, utcnow

    merchant = _merchant(args.merchant)
    params = _params(args, args.kind)
    params.setdefault("created_to", iso(utcnow() - timedelta(seconds=EXPORT_SETTLE_S)))
    columns = PAYMENT_COLUMNS if args.kind == "payment" else REFUND_COLUMNS
    rows = 0
    cursor: str | None = None
    with Path(args.output).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out) if args.format == "csv" else None
        if writer:
            writer.writerow(columns)
        while True:
            page = listing.list_page(merchant, args.kind, {**params, "limit": "100",
                                                           **({"cursor": cursor} if cursor else {})})
            for obj in page.data:
                if writer:
                    writer.writerow([obj.get(c) for c in columns])
                else:
                    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            rows += len(page.data)
            print(f"{rows} {args.kind}s", file=sys.stderr)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return {"kind": args.kind, "rows": rows, "file": args.output, "created_to": params["created_to"]}


def bill(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.bills import bills, links

    kind = "refund" if args.id.startswith("re_") else "payment"
    view = bills.merchant_view(_merchant(args.merchant), kind, args.id, link_ttl_s=links.ttl(args.link_expires_in))
    if args.pdf:
        Path(args.pdf).write_bytes(bills.render_bill(view))
        view["pdf_file"] = args.pdf
    return view


def statements_run(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.bills import statements
    from chalicelib.storage import config_repo

    statements.parse_month(args.month)
    merchants = [_merchant(args.merchant)] if args.merchant else [
        m for m in config_repo.list_merchants() if m.status == "active"]
    done = statements.run_month(merchants, args.month, statements.currencies())
    return {"month": args.month, "published": done}


def statements_get(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.bills import statements, store

    summary = statements.published(args.merchant, args.month, args.currency)
    if summary is None:
        raise NoSuchMerchant(f"no statement of {args.merchant} for {args.month} in {args.currency}")
    if args.output_dir:
        folder = Path(args.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for ext in ("pdf", "csv"):
            data = store.get(store.statement_key(args.merchant, args.month, f"{args.currency}.{ext}"))
            if data is not None:
                (folder / f"statement-{args.month}-{args.currency}.{ext}").write_bytes(data)
    return summary


def _filters(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument("--merchant", required=True, help="merchant id (mch_…)")
    parser.add_argument("--from", dest="created_from", help="created at or after (ISO 8601 with a zone)")
    parser.add_argument("--to", dest="created_to", help="created before (ISO 8601 with a zone)")
    parser.add_argument("--status")
    parser.add_argument("--channel")
    parser.add_argument("--order", help="merchant_order_no")
    if kind == "payment":
        parser.add_argument("--method")
    else:
        parser.add_argument("--payment", help="refunds of one payment (pay_…)")


def register(groups: Any) -> None:
    for kind in ("payment", "refund"):
        sub = groups.add_parser(f"{kind}s", help=f"a merchant's {kind}s by time").add_subparsers(
            dest="command", required=True)
        page = sub.add_parser("list", help="one page, newest first (next_cursor for the next)")
        _filters(page, kind)
        page.add_argument("--limit", type=int, default=20)
        page.add_argument("--cursor")
        page.set_defaults(run=list_page, kind=kind)
        out = sub.add_parser("export", help="every matching record to a file (CSV or JSON lines)")
        _filters(out, kind)
        out.add_argument("--output", required=True)
        out.add_argument("--format", choices=("csv", "jsonl"), default="csv")
        out.set_defaults(run=export, kind=kind)
    one = groups.add_parser("bill", help="a payment's or refund's bill (JSON; --pdf FILE writes the PDF)")
    one.add_argument("id", help="pay_… or re_…")
    one.add_argument("--merchant", required=True)
    one.add_argument("--pdf")
    one.add_argument("--link-expires-in", dest="link_expires_in")
    one.set_defaults(run=bill)
    stmts = groups.add_parser("statements", help="monthly merchant statements").add_subparsers(
        dest="command", required=True)
    run = stmts.add_parser("run", help="publish a month's missing statements now (all merchants, or one)")
    run.add_argument("--month", required=True, help="YYYY-MM")
    run.add_argument("--merchant")
    run.set_defaults(run=statements_run)
    get = stmts.add_parser("get", help="a published statement's summary (--output-dir: also its PDF and CSV)")
    get.add_argument("--merchant", required=True)
    get.add_argument("--month", required=True)
    get.add_argument("--currency", default="CNY")
    get.add_argument("--output-dir")
    get.set_defaults(run=statements_get)
