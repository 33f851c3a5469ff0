"""`payhub` — operator commands. Each talks to the stage's AWS resources directly (moto when local).

Errors are one clear line on stderr and a non-zero exit; secrets are never echoed except the credentials
`merchant create` exists to hand out once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import urllib3
from pydantic import ValidationError

from payhub_cli import archive as archive_cli
from payhub_cli import bills as bills_cli
from payhub_cli import checkout as checkout_cli
from payhub_cli import fx as fx_cli
from payhub_cli import instalments as instalments_cli
from payhub_cli import invoices as invoices_cli
from payhub_cli import keys as keys_cli
from payhub_cli import listing as listing_cli
from payhub_cli import payouts as payouts_cli
from payhub_cli import recon as recon_cli
from payhub_cli import risk as risk_cli
from payhub_cli import routing as routing_cli
from payhub_cli import settlement as settlement_cli
from payhub_cli import transfers as transfers_cli

ROOT = Path(__file__).resolve().parents[1]


class CliError(Exception):
    """Shown to the operator as one line."""


def _use_local_stack() -> None:
    """When the local stack is running and nothing else is configured, point at its moto."""
    stack = ROOT / ".local" / "stack.json"
    if os.environ.get("PAYHUB_STAGE", "local") == "local" and "AWS_ENDPOINT_URL" not in os.environ and stack.exists():
        from infra.local.moto import FAKE_CREDENTIALS

        for key, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        os.environ["AWS_ENDPOINT_URL"] = json.loads(stack.read_text())["aws_endpoint_url"]
    os.environ.setdefault("PAYHUB_STAGE", "local")


def merchant_create(args: argparse.Namespace) -> dict[str, Any]:
    from chalicelib.service.merchants import create_merchant

    created = create_merchant(args.name, webhook_url=args.webhook_url, late_success_policy=args.late_success,
                              actor=keys_cli.actor())
    return {"merchant_id": created.merchant.merchant_id, "api_key": created.api_key,
            "webhook_secret": created.webhook_secret}


def merchant_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.storage import config_repo

    return [{"merchant_id": m.merchant_id, "name": m.name, "late_success_policy": m.late_success_policy,
             "webhook_url": m.webhook_url, "status": m.status} for m in config_repo.list_merchants()]


def channel_put(args: argparse.Namespace) -> dict[str, Any]:
    """FILE is JSON: {"account": {...config document...}, "secrets": {...} (optional: keeps current secrets)}."""
    from chalicelib.channels import registry
    from chalicelib.config.accounts import ChannelAccountConfig
    from chalicelib.service import audit
    from chalicelib.storage import config_repo

    try:
        document = json.loads(Path(args.file).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from exc
    if not isinstance(document, dict) or "account" not in document:
        raise CliError(f"{args.file}: expected an object with 'account' (and optionally 'secrets')")
    try:
        config = ChannelAccountConfig.model_validate(document["account"])
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CliError(f"{args.file}: account.{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    if not registry.is_channel(config.channel):
        raise CliError(f"{args.file}: account.channel: unknown channel {config.channel!r} "
                       f"(known: {sorted(registry.channels())})")
    secrets = document.get("secrets")
    if secrets is not None and not isinstance(secrets, dict):
        raise CliError(f"{args.file}: secrets must be an object")
    before = config_repo.channel_account_document(config.account_id)
    after = json.loads(config.model_dump_json())
    change = {"document": after, "secrets_updated": secrets is not None,
              "secret_fields": sorted(secrets) if secrets is not None else None}
    config_repo.put_channel_account(config, secrets, audit_item=lambda tx: audit.add(
        tx, keys_cli.actor(), "channel_account.put", config.account_id,
        before={"document": before} if before is not None else None, after=change))
    return {"account_id": config.account_id, "channel": config.channel, "secrets_updated": secrets is not None}


def channel_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chalicelib.storage import config_repo

    return [{"account_id": c.account_id, "channel": c.channel, "enabled": c.enabled, "priority": c.priority,
             "methods": list(c.methods), "merchant_ids": list(c.merchant_ids), "api_base_url": c.api_base_url}
            for c in config_repo.list_channel_accounts()]


def _sandbox_call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        response = urllib3.request(method, url, json=body, timeout=10.0, retries=False)
    except urllib3.exceptions.HTTPError as exc:
        raise CliError(f"sandbox at {url} is not reachable: {type(exc).__name__}") from exc
    if response.status != 200:
        raise CliError(f"sandbox refused: HTTP {response.status} {response.data.decode(errors='replace')[:200]}")
    answer: dict[str, Any] = json.loads(response.data)
    return answer


def sandbox_pay(args: argparse.Namespace) -> dict[str, Any]:
    """Play the payer at the channel's sandbox, every step included: the SMS code the channel sent (typed into
    the merchant's page, so it goes through the hub's confirm step), then the channel's own pages (cashier,
    3-D Secure challenge, PayPal approval). The channel then calls the hub back. If the payment is still open
    after that, the hub looks at the attempt at once, as its status sync would a little later (and as a
    merchant's return page does): that is when a PayPal approval is captured or a Stripe intent confirmed."""
    import time

    from chalicelib.domain.states import PaymentState
    from chalicelib.service import status_sync
    from chalicelib.service.confirmation import confirm_payment
    from chalicelib.service.inputs import ConfirmPaymentInput
    from chalicelib.storage import config_repo, state_repo

    payment = state_repo.get_payment(args.payment_id)
    if payment is None or not payment.current_attempt_id:
        raise CliError(f"no payment {args.payment_id}")
    attempt = state_repo.get_attempt(payment.current_attempt_id)
    account = config_repo.channel_account(attempt.account_id) if attempt else None
    if attempt is None or account is None:
        raise CliError(f"payment {args.payment_id} has no channel account configured")
    base, steps = account.config.api_base_url, []
    if (payment.action or {}).get("type") == "sms_verification":
        code = _sandbox_call("GET", f"{base}/_sandbox/sms/{attempt.attempt_id}")["code"]
        merchant = config_repo.get_merchant(payment.merchant_id)
        if merchant is None:
            raise CliError(f"payment {args.payment_id} has no merchant")
        confirm_payment(merchant, payment.payment_id, ConfirmPaymentInput(sms_code=code, cvv=args.cvv))
        steps.append("sms_code_confirmed")
    # The action is what the payer's device was handed (a signed cashier URL, an app order string): sandboxes
    # whose channel only learns of an order when the payer opens it follow it, checking its signature.
    body: dict[str, Any] = {"out_trade_no": attempt.attempt_id, "result": "fail" if args.fail else "success",
                            "action": payment.action}
    if "mchid" in account.config.settings:
        body["mchid"] = account.config.settings["mchid"]
    answer = _sandbox_call("POST", f"{base}/_sandbox/pay", body)
    steps.append("paid_at_channel" if not args.fail else "failed_at_channel")
    deadline = time.monotonic() + args.wait
    while (current := state_repo.get_payment(payment.payment_id)) is not None and \
            current.status in (PaymentState.PENDING, PaymentState.PROCESSING) and time.monotonic() < deadline:
        time.sleep(0.2)
    if current is not None and current.status in (PaymentState.PENDING, PaymentState.PROCESSING):
        steps.append(f"status_sync:{status_sync.sync_attempt(attempt.attempt_id)}")
        current = state_repo.get_payment(payment.payment_id)
    return {"payment_id": payment.payment_id, "attempt_id": attempt.attempt_id, "channel": attempt.channel,
            "steps": steps, "status": str(current.status) if current else None, "sandbox": answer}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payhub", description="Payment hub operator commands")
    groups = parser.add_subparsers(dest="group", required=True)

    merchant = groups.add_parser("merchant", help="merchants").add_subparsers(dest="command", required=True)
    create = merchant.add_parser("create", help="create a merchant; prints its API key and webhook secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--webhook-url")
    create.add_argument("--late-success", choices=("refund", "accept"), default="refund",
                        help="what to do when money arrives after a payment was closed")
    create.set_defaults(run=merchant_create)
    merchant.add_parser("list", help="list merchants").set_defaults(run=merchant_list)
    keys_cli.register(groups, merchant)

    channel = groups.add_parser("channel", help="channel accounts").add_subparsers(dest="command", required=True)
    put = channel.add_parser("put", help="create or update a channel account from a JSON file")
    put.add_argument("file")
    put.set_defaults(run=channel_put)
    channel.add_parser("list", help="list channel accounts").set_defaults(run=channel_list)

    sandbox = groups.add_parser("sandbox", help="channel sandboxes").add_subparsers(dest="command", required=True)
    pay = sandbox.add_parser("pay", help="complete a payment at its channel sandbox (sends the signed callback)")
    pay.add_argument("payment_id")
    pay.add_argument("--fail", action="store_true", help="the payer's payment fails instead")
    pay.add_argument("--cvv", help="card payments: the CVV the payer types with the SMS code (credit cards)")
    pay.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the channel's callback")
    pay.set_defaults(run=sandbox_pay)
    recon_cli.register(groups)
    checkout_cli.register(groups)
    archive_cli.register(groups)
    routing_cli.register(groups)
    bills_cli.register(groups)
    invoices_cli.register(groups)
    risk_cli.register(groups)
    listing_cli.register(groups)
    settlement_cli.register(groups)
    instalments_cli.register(groups)
    payouts_cli.register(groups)
    transfers_cli.register(groups)
    fx_cli.register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _use_local_stack()
    # stdout is the command's JSON answer, and the operator sees each outcome directly: the metrics that page
    # are those of the deployed functions, so the CLI's own go to the debug log.
    from chalicelib import observability

    observability.set_metric_sink(lambda line: logging.getLogger("payhub.metrics").debug("%s", line))
    try:
        result = args.run(args)
    except (CliError, recon_cli.ReconFailed, archive_cli.NotKept, routing_cli.RouteError, bills_cli.NoSuchMerchant,
            invoices_cli.InvoiceCliError, ValueError) as exc:
        print(f"payhub: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the operator gets one line, not a traceback
        from chalicelib.domain.errors import HubError

        message = exc.message if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}"
        print(f"payhub: {message}", file=sys.stderr)
        return 1
    if result is not None:  # a command that writes a file's text itself (payouts result) returns nothing
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
