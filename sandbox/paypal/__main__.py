"""``python -m sandbox.paypal [--host 127.0.0.1] [--port 8106] [--retry-scale 1.0] [--refund-settle-s 0]``"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .server import DEFAULT_PORT, PayPalSandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.paypal", description="Local PayPal REST sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--retry-scale", type=float, default=1.0,
                        help="multiply the webhook retry intervals (0.01 turns 30 s into 0.3 s)")
    parser.add_argument("--refund-settle-s", type=float, default=0.0,
                        help="seconds a refund stays PENDING before it completes (0: completes at once)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)-5s %(name)s: %(message)s")
    sandbox = PayPalSandbox(retry_scale=args.retry_scale, refund_settle_s=args.refund_settle_s)
    base_url = sandbox.start(args.host, args.port)
    logging.getLogger("sandbox.paypal").info(
        "register an app: curl -X POST %s/_sandbox/merchants -d '{}'  (Ctrl-C to stop)", base_url)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        logging.getLogger("sandbox.paypal").info("stopping")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
