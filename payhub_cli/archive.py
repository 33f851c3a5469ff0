"""``payhub archive ...``: find a record by id wherever it is kept (DynamoDB while hot, the archive after), and
run the archival sweep by hand."""

from __future__ import annotations

import argparse
from typing import Any


class NotKept(Exception):
    """No record under that id, hot or archived."""


def archive_get(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.retention import archive
    from chalicelib.storage import state_repo

    table = state_repo.state_table()
    if args.audit:
        return {"object_id": args.id, "audit": archive.audit_trail(table, args.id)}
    found = archive.find_by_id(table, args.id)
    if found is None:
        raise NotKept(f"no record {args.id} (never existed, or its retention has ended)")
    where = {"stored": "archive", "archive": {k: found.archived[k] for k in (
        "archive_key", "archived_at", "retain_until")}} if found.archived else {"stored": "hot"}
    return {**where, "record": found.item}


def archive_sweep(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.retention import policy, sweep
    from chalicelib.storage import state_repo

    result = sweep.run(state_repo.state_table(), policy.current(), segment=args.segment, segments=args.segments,
                       budget_s=args.budget)
    return {"scanned": result.scanned, "archived": dict(result.archived), "kept_changed": result.kept_changed,
            "finished_pass": result.finished_pass}


def register(groups: Any) -> None:
    archive = groups.add_parser("archive", help="records past the hot window").add_subparsers(dest="command",
                                                                                              required=True)
    get = archive.add_parser("get", help="a payment, attempt, refund or event by id, hot or archived")
    get.add_argument("id", help="pay_…, att_…, re_… or evt_… (with --audit: any object id)")
    get.add_argument("--audit", action="store_true", help="the object's audit trail instead, hot and archived")
    get.set_defaults(run=archive_get)
    sweep = archive.add_parser("sweep", help="archive settled records older than the hot window now")
    sweep.add_argument("--segment", type=int, default=0)
    sweep.add_argument("--segments", type=int, default=1)
    sweep.add_argument("--budget", type=float, default=600.0, help="seconds before stopping (resumes next time)")
    sweep.set_defaults(run=archive_sweep)
