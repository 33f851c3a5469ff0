"""A tiny route table on top of the stdlib ``ThreadingHTTPServer``, run in a daemon thread.

Stdlib only, so a sandbox adds no dependency. Handlers receive the *raw* request target and body bytes because
channel signatures cover exactly what was on the wire (docs/design.md#rules-every-channel-follows).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.common.nodelay import NoDelayThreadingHTTPServer

_log = logging.getLogger("sandbox.http")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    raw_target: str  # path + "?" + query exactly as received (what WeChat-style signatures cover)
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes
    path_params: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else {}


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to hold the finished response before writing it; models a channel that did the work but
    # answered after the client gave up.
    delay_before_send_s: float = 0.0


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return Response(status, body, all_headers)


Handler = Callable[[Request], Response]


class Router:
    """Ordered (method, path pattern) -> handler table; ``{name}`` matches one path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for route_method, regex, handler in self._routes:
            match = regex.match(path)
            if match and route_method == method:
                return handler, {name: unquote(value) for name, value in match.groupdict().items()}
        return None


_QUERY = re.compile(r"\?[^\s'\"]+")  # a query string, up to where a request line or a repr ends it


def _make_handler_class(router: Router, not_found: Handler) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "PayhubSandbox/1.0"

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(split.query, keep_blank_values=True).items()}
            headers = {key.lower(): value for key, value in self.headers.items()}
            resolved = router.resolve(self.command, split.path)
            handler, params = resolved if resolved else (not_found, {})
            request = Request(self.command, self.path, split.path, query, headers, body, params)
            try:
                response = handler(request)
            except Exception:  # noqa: BLE001 - a sandbox bug must still answer, or the client hangs until its timeout
                _log.exception("handler crashed: %s %s", self.command, split.path)
                response = json_response(500, {"code": "SANDBOX_BUG", "message": "sandbox handler crashed"})
            self._send(response)

        def _send(self, response: Response) -> None:
            if response.delay_before_send_s > 0:
                threading.Event().wait(response.delay_before_send_s)
            try:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                # The client timed out and left; that is the point of the timeout fault, not an error.
                _log.info("client went away before the answer to %s %s", self.command, urlsplit(self.path).path)

        do_GET = do_POST = do_DELETE = do_PUT = _dispatch

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            # The request line's query can hold a secret (WeChat's code exchange sends the AppSecret in it): the
            # sandbox's request log, like the hub's, shows paths only.
            _log.info("%s %s", self.address_string(), _QUERY.sub("?<redacted>", format % args))

    return _Handler


class BackgroundHTTPServer:
    """Owns a ``ThreadingHTTPServer`` serving ``router`` from a daemon thread."""

    # TCP_NODELAY on every connection (sandbox/common/nodelay.py); bench/local_http.py swaps in the plain
    # stdlib class to measure what it saves.
    server_class: type[ThreadingHTTPServer] = NoDelayThreadingHTTPServer

    def __init__(self, router: Router, not_found: Handler) -> None:
        self._handler_class = _make_handler_class(router, not_found)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> str:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = self.server_class((host, port), self._handler_class)
        self._server.daemon_threads = True  # a held (timeout-fault) response must not block stop()
        # A short poll interval only bounds how long stop() waits; idle cost is negligible.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="sandbox-http",
                                        daemon=True)
        self._thread.start()
        bound_host, bound_port = self._server.server_address[:2]
        return f"http://{bound_host!s}:{bound_port}"

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
