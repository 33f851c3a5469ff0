"""The API on Chalice's local server, as `make run`, the tests and the benchmarks serve it.

Chalice's ``LocalDevServer`` (``http.server`` underneath) writes a response's headers and its body in two
sends; with Nagle's algorithm on, each kept-alive request then waited ~40 ms for the client's delayed ACK.
The server is given TCP_NODELAY on every connection it accepts (sandbox/common/nodelay.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from chalice.cli.factory import CLIFactory
from chalice.local import LocalDevServer, create_local_server

from sandbox.common.nodelay import disable_nagle

ROOT = Path(__file__).resolve().parents[2]


def create_api_server(host: str, port: int, *, nodelay: bool = True) -> LocalDevServer:
    """Load the app of this repository for the ``local`` stage and bind its server (not yet serving).

    ``nodelay=False`` keeps Chalice's server as it ships; only bench/local_http.py asks for it, as the anchor.
    """
    factory = CLIFactory(project_dir=str(ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name="local")
    server = create_local_server(factory.load_chalice_app(), config, host, port)
    if nodelay:
        disable_nagle(server.server)
    return server
