"""``python -m sandbox.unionpay [--host 127.0.0.1] [--port 8103] [--retry-scale 1.0] [--refund-settle-s 0.5] [--test-cn]``"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .server import DEFAULT_PORT, UnionPaySandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.unionpay", description="Local UnionPay ACP 5.1.0 sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--retry-scale", type=float, default=1.0,
                        help="multiply the notify re-send intervals (0.01 turns 15 s into 0.15 s)")
    parser.add_argument("--refund-settle-s", type=float, default=0.5, help="seconds a refund stays processing")
    parser.add_argument("--test-cn", action="store_true", help="sign with the test environment name 00040000:SIGN")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)-5s %(name)s: %(message)s")
    sandbox = UnionPaySandbox(retry_scale=args.retry_scale, refund_settle_s=args.refund_settle_s, test_cn=args.test_cn)
    base_url = sandbox.start(args.host, args.port)
    logging.getLogger("sandbox.unionpay").info(
        "register a merchant: curl -X POST %s/_sandbox/merchants -d '{\"merchant_id\": ..., \"merchant_public_key\": ...}'",
        base_url)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        logging.getLogger("sandbox.unionpay").info("stopping")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
