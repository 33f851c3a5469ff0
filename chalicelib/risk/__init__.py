"""Risk control: rules written in CEL over features of the payment and its payer, decided on every create, confirm
and refund (docs/risk.md)."""
