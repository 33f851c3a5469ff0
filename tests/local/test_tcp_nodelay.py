"""Every HTTP server the project runs locally accepts connections with TCP_NODELAY (sandbox/common/nodelay.py).

Not a timing test: each server's accepting code is driven by hand on a connection from a plain socket, and the
accepted socket's option is read back. How much it saves is printed by bench/local_http.py.
"""

from __future__ import annotations

import socket
import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sandbox.common.nodelay import NoDelayThreadingHTTPServer, disable_nagle


def nodelay_of_next_connection(server: socketserver.TCPServer) -> int:
    """Connect to ``server`` and accept that connection the way its serve loop would; the option's value."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=5):
        conn, _ = server.get_request()
        try:
            return conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            conn.close()


def test_a_plain_stdlib_server_leaves_nagle_on() -> None:
    # The premise: without the fix the accepted socket has Nagle's algorithm on.
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        assert nodelay_of_next_connection(server) == 0
    finally:
        server.server_close()


def test_the_nodelay_server_and_the_wrapper_turn_it_off() -> None:
    server = NoDelayThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    wrapped = disable_nagle(ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))
    try:
        assert nodelay_of_next_connection(server) != 0
        assert nodelay_of_next_connection(wrapped) != 0
    finally:
        server.server_close()
        wrapped.server_close()


def test_every_channel_sandbox_server() -> None:
    from infra.local.provision import LOCAL_CHANNELS

    for name, local in LOCAL_CHANNELS.items():
        box = local.new_sandbox()
        # Built, bound and listening exactly as start() does, without its serve thread taking the connection.
        server = box._http.server_class(("127.0.0.1", 0), BaseHTTPRequestHandler)
        try:
            assert nodelay_of_next_connection(server) != 0, name
        finally:
            server.server_close()


def test_the_merchant_webhook_receiver() -> None:
    from infra.local.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver()
    receiver.start()
    try:
        assert receiver._server is not None
        receiver._server.shutdown()  # stop its serve loop so the connection below is accepted here
        assert nodelay_of_next_connection(receiver._server) != 0
    finally:
        receiver.stop()


def test_the_api_server() -> None:
    from infra.local.api_server import create_api_server
    from infra.local.moto import free_port

    api = create_api_server("127.0.0.1", free_port())
    try:
        assert nodelay_of_next_connection(api.server) != 0
    finally:
        api.server.server_close()


def test_the_moto_server() -> None:
    from moto.server import MotoRequestHandler
    from werkzeug.serving import ThreadedWSGIServer

    from infra.local.moto import SerializedMotoServer

    # werkzeug closes its socket when its serve loop stops, so the server is built as _server_entry builds it.
    server = SerializedMotoServer.wsgi_server_class("127.0.0.1", 0, lambda environ, start: [], MotoRequestHandler)
    plain = ThreadedWSGIServer("127.0.0.1", 0, lambda environ, start: [], MotoRequestHandler)
    try:
        assert nodelay_of_next_connection(server) != 0
        assert nodelay_of_next_connection(plain) == 0  # werkzeug as shipped
    finally:
        server.server_close()
        plain.server_close()
