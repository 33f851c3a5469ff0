"""`payhub`: the operator's command line."""
