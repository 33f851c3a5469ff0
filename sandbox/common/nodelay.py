"""TCP_NODELAY on every connection a local HTTP server accepts.

Python's HTTP servers (``http.server``, and werkzeug and Chalice's local server on top of it) write a response's
headers and its body in two ``send`` calls. With Nagle's algorithm on, the kernel holds the second, small
segment until the first is acknowledged, and the client acknowledges late on purpose (delayed ACK, 40 ms on
Linux). So every request on a kept-alive connection waited ~40 ms for nothing: the local API answered ~22
GETs a second instead of ~190 (bench/local_http.py). Disabling Nagle on the accepted socket sends both writes
at once. Stdlib only, so a sandbox still adds no dependency.
"""

from __future__ import annotations

import socket
import socketserver
from http.server import ThreadingHTTPServer
from typing import Any


def set_nodelay(sock: socket.socket) -> socket.socket:
    """Disable Nagle's algorithm on a TCP socket (a no-op for other address families, e.g. a Unix socket)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class NoDelayMixin:
    """For a ``socketserver.TCPServer`` subclass: each accepted connection gets TCP_NODELAY.

    List it before the server class (``class S(NoDelayMixin, ThreadingHTTPServer)``) so its ``get_request``
    wraps the server's own ``accept``.
    """

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()  # type: ignore[misc]
        return set_nodelay(conn), address


class NoDelayThreadingHTTPServer(NoDelayMixin, ThreadingHTTPServer):
    """``http.server.ThreadingHTTPServer`` whose connections answer without the delayed-ACK stall."""


def disable_nagle(server: socketserver.TCPServer) -> socketserver.TCPServer:
    """Give a server that a library built and bound (Chalice's local server) TCP_NODELAY on every connection it
    accepts from now on, by wrapping that one instance's ``get_request``."""
    accept = server.get_request

    def get_request() -> tuple[socket.socket, Any]:
        conn, address = accept()
        return set_nodelay(conn), address

    server.get_request = get_request  # type: ignore[method-assign]
    return server
