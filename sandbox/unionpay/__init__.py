"""UnionPay ACP 5.1.0 sandbox: ``UnionPaySandbox().start()`` or ``python -m sandbox.unionpay``."""

from .server import DEFAULT_PORT, UnionPaySandbox

__all__ = ["DEFAULT_PORT", "UnionPaySandbox"]
