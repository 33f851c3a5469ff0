"""A local China Merchants Bank cloud direct connect (云直联) endpoint: signed, encrypted funcodes over one form
post, accounts with balances and sub-accounts (记账子单元), payments out, day statements (docs/banks/cmb.md)."""
