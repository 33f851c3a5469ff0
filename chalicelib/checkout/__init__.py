"""Hosted checkout (收银台): sessions a merchant creates through the API, and the page the hub serves the payer.

A session is one payment that can hold several attempts (retry, switch method; ``service.next_attempt``). The page
is plain server-rendered HTML with one small script for live status; card numbers are typed into the hub's own
page and go straight to the card vault, so the merchant's servers never see them.
"""
