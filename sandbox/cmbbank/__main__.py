"""``python -m sandbox.cmbbank [--host 127.0.0.1] [--port 8120] [--settle-s 0] [--page-size 50]``"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .server import DEFAULT_PORT, CMBBankSandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.cmbbank",
                                     description="Local China Merchants Bank direct-connect (云直联) endpoint")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--settle-s", type=float, default=0.0, help="seconds a payment stays at the bank (BNK)")
    parser.add_argument("--page-size", type=int, default=50, help="rows per statement page")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)-5s %(name)s: %(message)s")
    sandbox = CMBBankSandbox(settle_s=args.settle_s, page_size=args.page_size)
    sandbox.start(args.host, args.port)
    logging.getLogger("sandbox.cmbbank").info(
        "onboard a user: curl -X POST %s/_sandbox/users -d '{...}'  (Ctrl-C to stop)", sandbox.base_url)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        logging.getLogger("sandbox.cmbbank").info("stopping")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
