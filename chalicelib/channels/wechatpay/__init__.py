"""WeChat Pay API v3 (direct merchant): RSA or SM2 signatures, AES-GCM or SM4-GCM resources."""

from chalicelib.channels.wechatpay.adapter import WeChatPayAdapter

__all__ = ["WeChatPayAdapter"]
