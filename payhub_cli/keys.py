"""`payhub api-key ...`, `payhub merchant suspend|reactivate|rotate-webhook-secret`, `payhub audit list`:
the lifecycle of what lets a merchant in, and the trail of every operator action.

The CLI acts as the person running it (``PAYHUB_OPERATOR``, else the login name): that is who the audit
records. New keys and secrets are printed once, on stdout, and nowhere else.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``24h``, ``7d`` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError("expected a duration such as 3600, 15m, 24h or 7d")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def actor() -> Any:
    from chalicelib.service.audit import Actor

    return Actor.cli()


def api_key_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.service import api_keys

    return api_keys.list_keys(args.merchant)


def api_key_create(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import api_keys

    created = api_keys.create_key(actor(), args.merchant, name=args.name)
    return {**created.key, "api_key": created.api_key}


def api_key_rotate(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import api_keys

    created, old = api_keys.rotate_key(actor(), args.merchant, args.key_id, overlap_s=args.overlap, name=args.name)
    return {**created.key, "api_key": created.api_key, "rotated": old}


def api_key_revoke(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import api_keys

    return api_keys.revoke_key(actor(), args.merchant, args.key_id)


def merchant_suspend(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import merchants

    return merchants.set_status(actor(), args.merchant_id, "suspended")


def merchant_reactivate(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import merchants

    return merchants.set_status(actor(), args.merchant_id, "active")


def merchant_rotate_webhook_secret(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import merchants

    return merchants.rotate_webhook_secret(actor(), args.merchant_id, overlap_s=args.overlap)


def audit_list(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service import audit

    data, after = audit.list_records(limit=args.limit, starting_after=args.starting_after, action=args.action,
                                     target=args.target)
    return {"data": data, "next_starting_after": after}


def register(groups: Any, merchant: Any) -> None:
    """Adds the ``api-key`` and ``audit`` groups, and the lifecycle commands under ``merchant``."""
    keys = groups.add_parser("api-key", help="merchant API keys").add_subparsers(dest="command", required=True)
    listing = keys.add_parser("list", help="a merchant's keys (ids and status, never the keys)")
    listing.add_argument("--merchant", required=True)
    listing.set_defaults(run=api_key_list)
    create = keys.add_parser("create", help="an additional key for a merchant; printed once")
    create.add_argument("--merchant", required=True)
    create.add_argument("--name")
    create.set_defaults(run=api_key_create)
    rotate = keys.add_parser("rotate", help="a new key now; the old one keeps working for --overlap, then stops")
    rotate.add_argument("key_id")
    rotate.add_argument("--merchant", required=True)
    rotate.add_argument("--overlap", type=duration, required=True, help="e.g. 24h, 7d, 0 (old key ends now)")
    rotate.add_argument("--name")
    rotate.set_defaults(run=api_key_rotate)
    revoke = keys.add_parser("revoke", help="end a key now (refused everywhere within seconds)")
    revoke.add_argument("key_id")
    revoke.add_argument("--merchant", required=True)
    revoke.set_defaults(run=api_key_revoke)

    suspend = merchant.add_parser("suspend", help="refuse every key of the merchant (within seconds)")
    suspend.add_argument("merchant_id")
    suspend.set_defaults(run=merchant_suspend)
    reactivate = merchant.add_parser("reactivate", help="undo a suspension")
    reactivate.add_argument("merchant_id")
    reactivate.set_defaults(run=merchant_reactivate)
    rotate_secret = merchant.add_parser("rotate-webhook-secret",
                                        help="a new webhook secret, printed once; both sign during --overlap")
    rotate_secret.add_argument("merchant_id")
    rotate_secret.add_argument("--overlap", type=duration, required=True, help="e.g. 24h, 7d")
    rotate_secret.set_defaults(run=merchant_rotate_webhook_secret)

    audit = groups.add_parser("audit", help="operator audit trail").add_subparsers(dest="command", required=True)
    trail = audit.add_parser("list", help="operator actions, newest first")
    trail.add_argument("--action", help="prefix of the action, e.g. api_key. or merchant.suspend")
    trail.add_argument("--target", help="the merchant, account or key acted on")
    trail.add_argument("--limit", type=int, default=50)
    trail.add_argument("--starting-after", help="the last id of the previous page")
    trail.set_defaults(run=audit_list)
