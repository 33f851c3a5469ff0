"""``python -m sandbox.nuonuo [--host 127.0.0.1] [--port 8110] [--retry-scale 1.0]``"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .server import DEFAULT_PORT, NuonuoSandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.nuonuo", description="Local Nuonuo invoice sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--retry-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)-5s %(name)s: %(message)s")
    sandbox = NuonuoSandbox(retry_scale=args.retry_scale)
    sandbox.start(args.host, args.port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
