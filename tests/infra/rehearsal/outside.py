"""Run a module of the outside world (a channel's sandbox, the operator's CLI) on the rehearsal's network:
``python outside.py HOSTS_JSON CA_FILE -m module [args...]``. Its names reach the rehearsal's TLS sites."""

from __future__ import annotations

import importlib.util
import json
import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    spec = importlib.util.spec_from_file_location("_rehearsal_runtime", Path(__file__).with_name("runtime.py"))
    assert spec is not None and spec.loader is not None
    runtime = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runtime)
    sys.path[0] = str(Path(__file__).resolve().parents[3])  # the repository, not this directory
    hosts, ca_file, flag, module, *rest = sys.argv[1:]
    assert flag == "-m"
    runtime.install_network(json.loads(Path(hosts).read_text()), ca_file)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
