"""WeChat Pay API v3 sandbox: ``WeChatPaySandbox().start()`` or ``python -m sandbox.wechatpay``."""

from .server import DEFAULT_PORT, WeChatPaySandbox

__all__ = ["DEFAULT_PORT", "WeChatPaySandbox"]
