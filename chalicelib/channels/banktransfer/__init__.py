"""Bank transfer (对公转账) into the reserve account: the payer's business pays an order's virtual sub-account (or
the main account, quoting the order's remittance code); see docs/channels/banktransfer.md."""

from chalicelib.channels.banktransfer.adapter import BankTransferAdapter

__all__ = ["BankTransferAdapter"]
