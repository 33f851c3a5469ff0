"""`make run`: the whole local stack in one foreground process.

moto (AWS) → tables, queues, KMS from infra/resources.py → one sandbox per channel (WeChat Pay, Alipay,
UnionPay, e-CNY, Stripe, PayPal) → a channel account with fresh keys on each → the reserve's bank (CMB direct
connect sandbox, :8120) with the bank account rsv-cmb-1 → demo merchant (credentials in
.local/demo-merchant.json), set up for e-invoices on the Nuonuo sandbox (:8110) → a merchant webhook endpoint that
verifies signatures → the API on http://127.0.0.1:8000 → SQS consumers and schedules. Ctrl-C stops it all.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from infra.local.provision import LOCAL_CHANNELS

ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = ROOT / ".local"


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the payment hub locally")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--moto-port", type=int, default=4566)
    parser.add_argument("--channels", default=",".join(LOCAL_CHANNELS),
                        help="comma-separated channels whose sandbox to start (default: all)")
    parser.add_argument("--webhook-port", type=int, default=8200)
    args = parser.parse_args()

    os.environ["PAYHUB_STAGE"] = "local"
    # The demo merchant's webhook receiver listens on 127.0.0.1: say so explicitly (refused in any other stage).
    os.environ["PAYHUB_WEBHOOK_ALLOW_LOOPBACK"] = "true"
    os.environ["PAYHUB_LOG_FORMAT"] = "text"
    os.environ["PAYHUB_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{args.port}"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("werkzeug", "botocore", "urllib3", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger("local.stack")  # not "payhub": the Chalice app owns that logger

    from infra.local.moto import start_moto

    moto, endpoint = start_moto(args.moto_port)
    log.info("moto (AWS) on %s", endpoint)

    from infra.local.api_server import create_api_server
    from infra.local.bootstrap import create_stage_resources
    from infra.local.demo import create_demo_merchant
    from infra.local.webhook_receiver import WebhookReceiver
    from infra.local.workers import WorkerLoop

    create_stage_resources("local")
    sandboxes = []
    for name in args.channels.split(","):
        if name not in LOCAL_CHANNELS:
            parser.error(f"unknown channel {name!r} (known: {', '.join(LOCAL_CHANNELS)})")
        local = LOCAL_CHANNELS[name]
        sandbox = local.new_sandbox(retry_scale=0.05)
        sandbox_url = sandbox.start(port=local.port)
        sandboxes.append(sandbox)
        account = local.provision(sandbox_url)
        log.info("%s sandbox on %s; channel account %s (%s) ready", name, sandbox_url, account.account_id,
                 ", ".join(account.methods))

    # The reserve account's bank (CMB direct connect) beside the channels: rsv-cmb-1, docs/banks/cmb.md.
    from infra.local.provision import cmbbank as bank_provision
    from sandbox.cmbbank.server import CMBBankSandbox

    bank_box = CMBBankSandbox()
    sandboxes.append(bank_box)
    bank_account = bank_provision.provision(bank_box.start(port=bank_provision.PORT))
    log.info("CMB bank sandbox on %s; reserve account %s (%s)", bank_box.api_url, bank_account.reserve_id,
             bank_account.account_no)
    from infra.local.provision import banktransfer as transfer_provision

    transfers = transfer_provision.provision(reserve_id=bank_account.reserve_id)
    log.info("bank transfers (bank.transfer) into %s: channel account %s", bank_account.reserve_id,
             transfers.account_id)

    from infra.local.provision import risk as risk_provision
    from sandbox.riskproviders.server import RiskProvidersSandbox

    risk_box = RiskProvidersSandbox()  # Sift, Aliyun SMS and Tencent FaceID in one sandbox (docs/risk.md)
    sandboxes.append(risk_box)
    version = risk_provision.provision(risk_box) if risk_box.start(port=risk_provision.PORT) else 0
    log.info("risk providers sandbox on %s; rules version %d (all in shadow mode)", risk_box.url, version)

    receiver = WebhookReceiver()
    receiver.start(port=args.webhook_port)
    webhook_url = receiver.endpoint("demo")
    demo = create_demo_merchant(webhook_url)
    receiver.trust(webhook_url, demo.webhook_secret)
    # The invoice provider's sandbox (Nuonuo), with the demo merchant set up to issue e-invoices on it.
    from infra.local.invoicing import provision as provision_invoicing
    from sandbox.nuonuo.server import DEFAULT_PORT as NUONUO_PORT
    from sandbox.nuonuo.server import NuonuoSandbox

    nuonuo = NuonuoSandbox(retry_scale=0.05)
    sandboxes.append(nuonuo)
    provision_invoicing(demo.merchant.merchant_id, nuonuo.start(port=NUONUO_PORT))
    log.info("Nuonuo invoice sandbox on %s; the demo merchant issues e-invoices there", nuonuo.base_url)
    credentials = {"merchant_id": demo.merchant.merchant_id, "api_key": demo.api_key,
                   "webhook_secret": demo.webhook_secret, "webhook_url": webhook_url,
                   "api": f"http://127.0.0.1:{args.port}"}
    LOCAL_DIR.mkdir(exist_ok=True)
    creds_path = LOCAL_DIR / "demo-merchant.json"
    creds_path.write_text(json.dumps(credentials, indent=2))
    creds_path.chmod(0o600)
    (LOCAL_DIR / "stack.json").write_text(json.dumps({"aws_endpoint_url": endpoint, "stage": "local"}))

    workers = WorkerLoop(schedule_every_s=3.0)
    workers.start()

    server = create_api_server("127.0.0.1", args.port)
    checkout_url = demo_checkout_url(demo.merchant, args.channels.split(","))
    print(f"\nPayment hub is up: API http://127.0.0.1:{args.port}\n"
          f"A hosted checkout for the demo merchant (valid 2 h; pay QR codes with `payhub sandbox pay`):\n"
          f"  {checkout_url}\n"
          f"Demo merchant credentials ({creds_path.relative_to(ROOT)}):\n{json.dumps(credentials, indent=2)}\n"
          f"Merchant webhooks arrive at {webhook_url} and are logged below. Ctrl-C stops everything.\n", flush=True)

    stopping = threading.Event()

    def shutdown(signum: int, frame: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("stopping")
        threading.Thread(target=server.server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    try:
        server.serve_forever()
    finally:
        workers.stop()
        receiver.stop()
        for sandbox in sandboxes:
            sandbox.stop()
        moto.stop()
        log.info("stopped cleanly")
    return 0


def demo_checkout_url(merchant: object, channels: list[str]) -> str:
    """A checkout session of the demo merchant offering every page method of the channels started (CNY)."""
    import uuid

    from chalicelib.channels.registry import channel_for_method
    from chalicelib.checkout.inputs import CreateCheckoutSessionInput
    from chalicelib.checkout.methods import PAGE_METHODS
    from chalicelib.checkout.sessions import create_session

    methods = [m for m in PAGE_METHODS if channel_for_method(m) in channels and m not in ("paypal.wallet", "wechat.h5")]
    body = CreateCheckoutSessionInput.model_validate({
        "merchant_order_no": f"demo{uuid.uuid4().hex[:16]}", "amount": 8888, "currency": "CNY",
        "description": "Green tea", "allowed_methods": methods, "return_url": "https://shop.example/thanks",
        "cancel_url": "https://shop.example/cart", "expires_in_seconds": 7200, "payer": {"user_id": "demo-payer"},
        "support_contact": {"email": "help@shop.example"}})
    return str(create_session(merchant, body)["url"])  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
