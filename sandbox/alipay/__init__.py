"""Alipay Open Platform gateway sandbox: ``AlipaySandbox().start()`` or ``python -m sandbox.alipay``."""

from .server import DEFAULT_PORT, AlipaySandbox

__all__ = ["DEFAULT_PORT", "AlipaySandbox"]
