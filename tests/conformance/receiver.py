"""A notify_url for the conformance tests: records each callback exactly as it arrived (headers with the case the
sender used, raw body bytes), so a channel SDK can be handed what a merchant's web framework would hand it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Callback:
    path: str
    headers: dict[str, str]  # as sent, names in the sender's case
    body: bytes


class Receiver:
    """Answers every POST with ``answer`` (status, body): each channel expects its own acknowledgement."""

    def __init__(self, answer: tuple[int, bytes] = (200, b"")) -> None:
        self.callbacks: list[Callback] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.callbacks.append(Callback(self.path, dict(self.headers.items()), body))
                status, reply = answer
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, predicate: Callable[[Callback], bool], *, count: int = 1, timeout_s: float = 10.0) -> list[Callback]:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                found = [c for c in self.callbacks if predicate(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} matching callback(s) within {timeout_s} s, got {len(found)}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
