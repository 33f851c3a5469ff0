"""The API served locally over HTTP (`make run`, the tests, the benchmarks), as Chalice's local server does, with
differences that make it answer as the deployed API does, and answer quickly:

- a request that no route takes is answered like API Gateway's gateway responses (``infra.gateway_responses``,
  the hub's error shape), and any HTTP method reaches the routing (the standard library's server answers an HTML
  501 for methods it has no ``do_*`` for, such as TRACE);
- TCP_NODELAY on every accepted connection: Chalice's ``LocalDevServer`` (``http.server`` underneath) writes a
  response's headers and its body in two sends, and with Nagle's algorithm on each kept-alive request waited
  ~40 ms for the client's delayed ACK (sandbox/common/nodelay.py);
- request lines are logged without their query: a payer's return from WeChat's authorisation carries its one-time
  ``code`` and ``state`` there, and nothing the hub logs shows a query (chalicelib/channels/log_redaction.py).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    ForbiddenError,
    LocalChalice,
    LocalDevServer,
    LocalGatewayException,
)

from chalicelib.channels.log_redaction import redact_queries
from infra.gateway_responses import ANSWERS, body
from sandbox.common.nodelay import disable_nagle

ROOT = Path(__file__).resolve().parents[2]


class _HubShapedHandler(ChaliceRequestHandler):
    def _send_error_response(self, error: LocalGatewayException) -> None:
        kind = "MISSING_AUTHENTICATION_TOKEN" if isinstance(error, ForbiddenError) else "DEFAULT_4XX"
        answer = ANSWERS[kind]
        request_id = f"req_{uuid.uuid4().hex[:20]}"
        payload = json.dumps(body(answer, request_id)).encode()
        self._send_http_response(answer.status or error.CODE, {"Content-Type": "application/json",
                                                               "X-Request-Id": request_id}, payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's signature
        super().log_message("%s", redact_queries(format % args))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # TRACE, CONNECT, PROPFIND, ...: routed like any other method
            return self._generic_handle
        raise AttributeError(name)


def create_server(app: Any, config: Any, host: str, port: int) -> LocalDevServer:
    """``chalice.local.create_local_server`` with the handler above. A process may serve the same app object
    twice (a test after the stack): it is wrapped once, or its class would become its own base."""
    if app.__class__ is not CustomLocalChalice:
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)  # what create_local_server does to the app
        app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=_HubShapedHandler)


def create_api_server(host: str, port: int, *, nodelay: bool = True) -> LocalDevServer:
    """Load the app of this repository for the ``local`` stage and bind its server (not yet serving).

    ``nodelay=False`` keeps the socket as Chalice ships it; only bench/local_http.py asks for it, as the anchor.
    """
    from chalice.cli.factory import CLIFactory

    factory = CLIFactory(project_dir=str(ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name="local")
    server = create_server(factory.load_chalice_app(), config, host, port)
    if nodelay:
        disable_nagle(server.server)
    return server
