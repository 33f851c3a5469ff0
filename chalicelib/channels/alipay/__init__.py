"""Alipay Open Platform gateway (direct merchant): RSA2 or SM2 signatures, form-encoded notifies, ZIP bills."""

from chalicelib.channels.alipay.adapter import AlipayAdapter

__all__ = ["AlipayAdapter"]
