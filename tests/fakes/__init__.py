"""In-memory twins of what the hub talks to, for tests: a KMS, and a payment channel with confirmation steps."""
