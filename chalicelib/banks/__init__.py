"""Bank-direct (银企直连): the hub's own accounts at a bank, reached over the bank's signed message protocol."""
