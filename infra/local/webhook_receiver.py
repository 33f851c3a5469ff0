"""A merchant's webhook endpoint for the local stack and tests: verifies Standard Webhooks signatures the way
a merchant should, keeps what it received, and can be told to fail the next N deliveries."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sandbox.common.nodelay import NoDelayThreadingHTTPServer

log = logging.getLogger("merchant.webhooks")


class WebhookReceiver:
    def __init__(self) -> None:
        self.base_url = ""
        self.secrets: dict[str, str] = {}  # path -> the merchant's webhook secret
        self.received: list[dict[str, Any]] = []  # verified events, in arrival order
        self.rejected = 0
        self.raw: list[dict[str, Any]] = []  # every request as it arrived (path, headers, body), verified or not
        self.failures_left: dict[str, int] = {}  # path -> deliveries to answer with 503
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        # TCP_NODELAY: the hub's webhook worker keeps connections alive (sandbox/common/nodelay.py).
        self._server = NoDelayThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="webhook-receiver").start()
        self.base_url = f"http://{host}:{self._server.server_address[1]}"
        return self.base_url

    def endpoint(self, name: str) -> str:
        """The URL one merchant's webhooks go to; call ``trust`` with its secret once the merchant exists."""
        return f"{self.base_url}/webhooks/{name}"

    def fail_next(self, url: str, count: int) -> None:
        """Answer the next ``count`` deliveries to ``url`` with 503, as a merchant outage would."""
        with self._lock:
            self.failures_left[url.removeprefix(self.base_url)] = count

    def trust(self, url: str, secret: str) -> None:
        self.secrets[url.removeprefix(self.base_url)] = secret

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.raw.append({"path": path, "headers": headers, "body": body})
            if self.failures_left.get(path, 0) > 0:
                self.failures_left[path] -= 1
                return 503
        try:
            if path not in self.secrets:
                raise WebhookVerificationError(f"no merchant endpoint at {path}")
            event = Webhook(self.secrets[path]).verify(body.decode(), headers)
        except WebhookVerificationError as exc:
            with self._lock:
                self.rejected += 1
            log.warning("merchant endpoint rejected a webhook: %s", exc)
            return 400
        with self._lock:
            self.received.append({"id": headers.get("webhook-id"), **event})
        log.info("merchant received %s for %s", event["type"], event["data"].get("id"),
                 extra={"webhook_id": headers.get("webhook-id")})
        return 204

    def types_for(self, object_id: str) -> list[str]:
        with self._lock:
            return [e["type"] for e in self.received if e["data"].get("id") == object_id]

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def pretty(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, indent=2)
