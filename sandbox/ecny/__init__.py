"""A partner bank's e-CNY merchant gateway (modelled): ``ECNYSandbox().start()`` or ``python -m sandbox.ecny``."""

from .server import DEFAULT_PORT, ECNYSandbox

__all__ = ["DEFAULT_PORT", "ECNYSandbox"]
