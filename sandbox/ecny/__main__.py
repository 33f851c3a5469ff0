"""``python -m sandbox.ecny [--host 127.0.0.1] [--port 8104] [--retry-scale 1.0] [--refund-settle-s 0.2]``"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .server import DEFAULT_PORT, ECNYSandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.ecny", description="Local partner-bank e-CNY gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--retry-scale", type=float, default=1.0,
                        help="multiply the notification retry intervals (0.01 turns 10 s into 0.1 s)")
    parser.add_argument("--refund-settle-s", type=float, default=0.2,
                        help="seconds a refund stays PROCESSING before it succeeds")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)-5s %(name)s: %(message)s")

    sandbox = ECNYSandbox(retry_scale=args.retry_scale, refund_settle_s=args.refund_settle_s)
    base_url = sandbox.start(args.host, args.port)
    logging.getLogger("sandbox.ecny").info(
        "register a merchant: curl -X POST %s/_sandbox/merchants -d '{...}'  (Ctrl-C to stop)", base_url)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        logging.getLogger("sandbox.ecny").info("stopping")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
