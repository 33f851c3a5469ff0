"""Routing: which channel account takes a payment, as per-merchant configuration (rules.py), methods that exist
only as configuration (methods.py), gray release (gray.py), the decision and its explanation (decide.py),
account health and the circuit breaker (health.py), and what the checkout may offer (offers.py).

Only the service layer calls in here; nothing here imports a web framework.
"""
