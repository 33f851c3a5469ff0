"""China Merchants Bank cloud direct connect (招商银行 云直联, "CDC"): the hub's accounts at CMB (docs/banks/cmb.md)."""
