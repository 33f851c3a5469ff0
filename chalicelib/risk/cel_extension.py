"""The CEL interpreter's compiled extension (``cel.cel``), loaded without the rest of its package.

``import cel`` runs the package's ``__init__``, which imports its interactive command-line tool (``cel.cli``: typer,
rich, prompt_toolkit, pygments) and a pure-Python function library the hub does not register: ~95 ms of CPU that
every create and refund paid on its first risk decision (docs/cold-start.md). The hub calls ``compile`` and
``Context`` only, and both live in the extension, so this loads the extension by itself, under the name the
package gives it; an ``import cel`` afterwards (the ``cel`` command, a test) finds it there and does not
initialise the extension twice, which a PyO3 module refuses.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from types import ModuleType

_NAME = "cel.cel"


def _load() -> ModuleType:
    loaded = sys.modules.get(_NAME)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("cel")  # locates the package without running its __init__
    if package is None or not package.submodule_search_locations:
        raise ImportError("the common-expression-language package is not installed")
    found = importlib.machinery.PathFinder.find_spec("cel", list(package.submodule_search_locations))
    if found is None or not isinstance(found.loader, importlib.machinery.ExtensionFileLoader) or not found.origin:
        raise ImportError("the cel package holds no compiled extension")
    spec = importlib.util.spec_from_file_location(_NAME, found.origin)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {found.origin}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_NAME]
        raise
    return module


cel = _load()
