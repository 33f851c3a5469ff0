"""``payhub listing backfill``: give payments and refunds written before the listing index their place in it
(chalicelib/bills/listing_backfill.py). Resumable: ``--cursor`` or a ``--cursor-file`` saved after every page."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def backfill(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.bills import listing_backfill

    cursor = args.cursor
    saved = Path(args.cursor_file) if args.cursor_file else None
    if cursor is None and saved is not None and saved.exists():
        cursor = saved.read_text(encoding="utf-8").strip() or None

    def progress(report: listing_backfill.Report) -> None:
        if saved is not None and report.cursor is not None:
            partial = saved.with_name(saved.name + ".tmp")
            partial.write_text(report.cursor, encoding="utf-8")
            os.replace(partial, saved)  # a run stopped at any moment leaves the last whole cursor
        print(f"listing backfill: scanned {report.scanned}, added {report.payments_added} payments and "
              f"{report.refunds_added} refunds", file=sys.stderr)

    report = listing_backfill.run(segments=args.segments, cursor=cursor, max_pages=args.max_pages,
                                  on_page=progress)
    if saved is not None and report.cursor is None and saved.exists():
        saved.unlink()  # finished: a later run starts from the beginning (and finds nothing left to add)
    return report.public()


def register(groups: Any) -> None:
    group = groups.add_parser("listing", help="the payments and refunds listing index")
    commands = group.add_subparsers(dest="command", required=True)
    run = commands.add_parser("backfill", help="add listing keys to payments and refunds written without them")
    run.add_argument("--segments", type=int, default=4, help="parallel Scan segments (1-64)")
    run.add_argument("--cursor", help="go on from the cursor a stopped run printed")
    run.add_argument("--cursor-file", help="resume from this file if it exists; the cursor is saved there after "
                                           "every page and the file removed when the backfill completes")
    run.add_argument("--max-pages", type=int, help="stop after this many Scan pages per segment (prints a cursor)")
    run.set_defaults(run=backfill)
