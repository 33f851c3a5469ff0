"""The toy protocol's sandbox: an in-process HTTP server holding orders and refunds, answering signed, and
calling the hub back signed when a payer pays (``pay``)."""

from __future__ import annotations

import json
import secrets
import threading
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from toy_channel.wire import sign, verify


class ToySandbox:
    def __init__(self, merchant_id: str, signing_key: str) -> None:
        self.merchant_id, self.key = merchant_id, signing_key
        self.orders: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: the test's own output matters
                return

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("x-toy-signature", sign(raw, sandbox.key))
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if not verify(raw, sandbox.key, self.headers.get("x-toy-signature")) \
                        or self.headers.get("x-toy-merchant") != sandbox.merchant_id:
                    self._answer(401, {"error": "UNAUTHENTICATED"})
                    return
                status, body = sandbox.handle(method, self.path, json.loads(raw) if raw else {})
                self._answer(status, body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        self.server.shutdown()

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        with self.lock:
            if method == "POST" and parts == ["orders"]:
                held = self.orders.get(body["order_id"])
                if held is None:
                    held = self.orders[body["order_id"]] = {
                        **body, "status": "created", "token": f"toy_{secrets.token_hex(6)}",
                        "pay_url": f"toy://pay/{body['order_id']}", "paid_at": None}
                elif held["amount"] != body["amount"]:
                    return 400, {"error": "ORDER_NO_REUSED"}
                return 200, dict(held)
            if parts[0] == "orders" and len(parts) >= 2:
                order = self.orders.get(parts[1])
                if order is None:
                    return 404, {"error": "NOT_FOUND"}
                if method == "POST" and parts[2:] == ["close"] and order["status"] == "created":
                    order["status"] = "closed"
                return 200, dict(order)
            if method == "POST" and parts == ["refunds"]:
                order = self.orders.get(body["order_id"])
                if order is None or order["status"] != "paid":
                    return 400, {"error": "NOT_PAID"}
                refund = self.refunds.setdefault(body["refund_id"], {**body, "status": "succeeded"})
                return 200, dict(refund)
            if parts[0] == "refunds" and len(parts) == 2:
                found = self.refunds.get(parts[1])
                return (200, dict(found)) if found else (404, {"error": "NOT_FOUND"})
        return 404, {"error": "NO_ROUTE"}

    def pay(self, order_id: str) -> int:
        """The payer pays; the sandbox tells the hub (signed) and returns the hub's HTTP status."""
        with self.lock:
            order = self.orders[order_id]
            if order["status"] != "created":
                raise ValueError(f"order {order_id} is {order['status']}")
            order.update(status="paid", paid_at=datetime.now(UTC).isoformat())
            body = json.dumps({**order, "event_id": f"ev_{secrets.token_hex(6)}",
                               "merchant_id": self.merchant_id}).encode()
        request = urllib.request.Request(order["notify_url"], data=body, method="POST", headers={
            "content-type": "application/json", "x-toy-signature": sign(body, self.key)})
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback in tests
            return int(answer.status)
