"""Digital RMB (e-CNY) through a partner bank's merchant gateway (modelled; see docs/channels/ecny.md)."""

from chalicelib.channels.ecny.adapter import ECNYAdapter

__all__ = ["ECNYAdapter"]
