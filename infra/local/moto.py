"""moto in server mode: the local AWS, reached over HTTP so boto3 takes its real wire path.

moto's backends are not thread-safe (two concurrent TransactWriteItems can corrupt its table copy), while
DynamoDB itself applies each request atomically. So requests are accepted concurrently but handed to
moto's backend one at a time: races between our writers still happen, at the HTTP layer and in our code,
and are decided by DynamoDB-style conditions, as in AWS.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, MotoRequestHandler, ThreadedMotoServer, create_backend_app
from werkzeug.serving import ThreadedWSGIServer

from infra.local import moto_patches
from sandbox.common.nodelay import NoDelayMixin

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "ap-east-1", "AWS_REGION": "ap-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _OneAtATime:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class _NoDelayWSGIServer(NoDelayMixin, ThreadedWSGIServer):
    """werkzeug's threaded server (what moto's own uses) with TCP_NODELAY: werkzeug writes headers and body
    separately, so without it every kept-alive boto3 call waited on a delayed ACK (sandbox/common/nodelay.py)."""


class SerializedMotoServer(ThreadedMotoServer):
    wsgi_server_class: type[ThreadedWSGIServer] = _NoDelayWSGIServer

    def _server_entry(self) -> None:
        app = _OneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = self.wsgi_server_class(self._ip_address, self._port, app, MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def start_moto(port: int | None = None, *, fix_dynamodb: bool = True) -> tuple[ThreadedMotoServer, str]:
    """Start moto and point this process's boto3 at it. Returns the server and its endpoint URL.

    ``fix_dynamodb`` applies infra/local/moto_patches.py (transactions that stay fast, memory that stays flat
    and GSI queries that read one partition as tables grow); only bench/moto_transactions.py turns it off,
    to measure moto as released."""
    if fix_dynamodb:
        moto_patches.apply()
    port = port or free_port()
    server = SerializedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    return server, endpoint
