"""Step-up verification of the payer when risk control asks for it: SMS one-time codes, face verification and
device biometrics (WebAuthn); docs/risk.md#step-up."""
