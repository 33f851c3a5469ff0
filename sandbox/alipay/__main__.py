"""``python -m sandbox.alipay [--host 127.0.0.1] [--port 8102] [--retry-scale 1.0]``"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .server import DEFAULT_PORT, AlipaySandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.alipay", description="Local Alipay gateway sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--retry-scale", type=float, default=1.0,
                        help="multiply Alipay's notify re-send intervals (0.01 turns 4 min into 2.4 s)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)-5s %(name)s: %(message)s")
    sandbox = AlipaySandbox(retry_scale=args.retry_scale)
    base_url = sandbox.start(args.host, args.port)
    logging.getLogger("sandbox.alipay").info(
        "register an app: curl -X POST %s/_sandbox/merchants -d '{...}'  (Ctrl-C to stop)", base_url)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        logging.getLogger("sandbox.alipay").info("stopping")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
