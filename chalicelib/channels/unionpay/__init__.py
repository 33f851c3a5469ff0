"""UnionPay online gateway, ACP 5.1.0 (signMethod 01): gateway form, QuickPass ``tn``, card quick pay with SMS."""

from chalicelib.channels.unionpay.adapter import UnionPayAdapter

__all__ = ["UnionPayAdapter"]
