"""E-invoices (电子发票, 数电票): requested by merchants for paid orders, issued and reversed through an invoice
provider (docs/invoices.md)."""
