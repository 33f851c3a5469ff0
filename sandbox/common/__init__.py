"""Pieces every channel sandbox needs: a threaded HTTP server and a callback delivery engine."""
