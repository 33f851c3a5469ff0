"""The card vault: card numbers encrypted under per-card data keys from KMS, fingerprinted with a KMS HMAC key.

See docs/cards-and-confirmation.md. ``keys`` talks to KMS, ``envelope`` encrypts with the data key, ``cards``
turns a card into the record the payment transaction writes and back.
"""
