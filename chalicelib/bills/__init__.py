"""E-bills: merchants' lists of payments and refunds, a bill per payment and refund (JSON and PDF), payer links
that expire, and monthly statements that add up with the ledger. Documents are rendered by chalicelib/documents.
"""
